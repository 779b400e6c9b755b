"""The seed's false-positive scenarios, end to end through the installed command.

For each scenario of the seed (scheduled maintenance, Azure AD Connect, admins over RDP/SSH,
backup jobs, users mistyping a password): a day of raw logs (Windows 4625 as wevtutil prints
it, forwarded or not; sshd lines as rsyslog writes them; Entra ID sign-ins as Event Hub records
and Graph objects) in which the benign activity alerts without an exclusion; the scenario's
example of conf/exclusions.example.toml, copied verbatim into a temporary config, removes that
alert and ``--stats`` reports exactly how many events it removed; and an attacker in the same
data, with his own failures and a successful sign-in, still alerts. Each runs under both
profiles where the scenario's data means the same in both.

The rule correlates a host's view of an address with Entra ID's view of it, so the benign
machines use the examples' addresses on both sides (as where sign-ins report the internal
client address, or where exposed hosts see the same egress address as Entra ID).

Each test's data and runs are a ``plan_`` function beside it; the runs of every selected test
start ahead, a few processes at a time, which keeps the file fast.
"""

import os
import re
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple
from xml.sax.saxutils import escape

import pytest

from cli import COMMAND, alerts_of, per_kind, stats_summary
from parsers.windows import EVENT_DATA_NAMES
from scenario import iso, signin_json, syslog_line

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "conf" / "exclusions.example.toml"
PROFILES = ("hardened", "kql")
DAY = datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp()
ATTACKER = "192.0.2.66"  # guesses a password on the hosts, then signs in to Entra ID with it
WRONG_PASSWORD, NO_SUCH_USER = "0xC000006A", "0xC0000064"  # 4625 SubStatus

Pair = Tuple[str, str]  # (IPAddress, UserPrincipalName) of an alert


def at(hour: int, minute: int = 0, second: int = 0) -> float:
    return DAY + hour * 3600 + minute * 60 + second


# --- raw logs -----------------------------------------------------------------------------------


def event_4625(when: float, ip: str, user: str, computer: str, *, logon_type: int = 3,
               workstation: str = "-", process: str = "-", sub_status: str = WRONG_PASSWORD,
               forwarded: bool = False, port: int = 0) -> str:
    """A 4625 as ``wevtutil qe Security /f:xml`` prints it; ``forwarded`` adds the RenderingInfo
    of Windows Event Forwarding (Sentinel's WindowsEvent table)."""
    host = computer.split(".")[0]
    if logon_type == 10 or process != "-":  # a local process (svchost for RDP) asked for the logon
        subject = ("S-1-5-18", f"{host}$", "CONTOSO", "0x3e7")
        logon_process, package, process_id = "User32 ", "Negotiate", "0x1f4c"
        process = process if process != "-" else r"C:\Windows\System32\svchost.exe"
    else:  # a network logon (SMB, NLA): no local caller
        subject = ("S-1-0-0", "-", "-", "0x0")
        logon_process, package, process_id = "NtLmSsp ", "NTLM", "0x0"
    values = dict(zip(("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId"), subject))
    values.update(
        TargetUserSid="S-1-0-0", TargetUserName=user, TargetDomainName="CONTOSO", Status="0xC000006D",
        FailureReason="%%2313", SubStatus=sub_status, LogonType=str(logon_type), LogonProcessName=logon_process,
        AuthenticationPackageName=package, WorkstationName=workstation, TransmittedServices="-",
        LmPackageName="-", KeyLength="0", ProcessId=process_id, ProcessName=process, IpAddress=ip,
        IpPort=str(port),
    )
    data = "".join(f"<Data Name='{name}'>{escape(values[name])}</Data>" for name in EVENT_DATA_NAMES)
    rendering = ("<RenderingInfo Culture='en-US'><Message>An account failed to log on.</Message>"
                 "<Level>Information</Level><Task>Logon</Task><Keywords><Keyword>Audit Failure</Keyword>"
                 "</Keywords></RenderingInfo>") if forwarded else ""
    return (f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
            f"<Provider Name='Microsoft-Windows-Security-Auditing' Guid='{{54849625-5478-4994-a5ba-3e3b0328c30d}}'/>"
            f"<EventID>4625</EventID><Version>0</Version><Level>0</Level><Task>12544</Task>"
            f"<TimeCreated SystemTime='{iso(when)[:-1]}0Z'/><Channel>Security</Channel>"
            f"<Computer>{computer}</Computer></System><EventData>{data}</EventData>{rendering}</Event>")


class Logs:
    """One day of raw lines from every source, written in event-time order."""

    def __init__(self) -> None:
        self._lines: List[Tuple[float, str]] = []
        self._pid = 2000
        self._port = 40000
        self._signins = 0

    def port(self) -> int:
        self._port += 137
        return self._port

    def windows(self, when: float, ip: str, user: str, computer: str, **fields) -> None:
        self._lines.append((when, event_4625(when, ip, user, computer, port=self.port(), **fields)))

    def sshd(self, when: float, host: str, message: str, facility: str = "authpriv") -> None:
        self._pid += 1
        row = {"TimeGenerated": iso(when), "Facility": facility, "Computer": host, "ProcessName": "sshd",
               "ProcessID": str(self._pid), "SyslogMessage": message}
        self._lines.append((when, syslog_line(row)))

    def signin(self, when: float, upn: str, ip: str, app: str = "Office 365 Exchange Online",
               interactive: bool = True) -> None:
        """A successful sign-in; alternately an Event Hub record and a Graph signIn."""
        self._signins += 1
        row = {"Type": "SigninLogs" if interactive else "AADNonInteractiveUserSignInLogs",
               "TimeGenerated": iso(when), "Id": f"signin-{self._signins}", "IPAddress": ip,
               "UserPrincipalName": upn, "ResultType": "0", "AppDisplayName": app}
        self._lines.append((when, signin_json(row)))

    def write(self, path: Path) -> Path:
        path.write_text("".join(line + "\n" for _, line in sorted(self._lines, key=lambda item: item[0])))
        return path


# --- configs: the shipped examples, copied verbatim ---------------------------------------------

_EXAMPLE_TEXT = EXAMPLES.read_text()


def example_block(name: str) -> str:
    """The ``[[exclusion]]`` table of conf/exclusions.example.toml named ``name``, as written."""
    for block in _EXAMPLE_TEXT.split("[[exclusion]]")[1:]:
        if re.search(rf'^name = "{re.escape(name)}"$', block, re.MULTILINE):
            block = "[[exclusion]]" + block
            assert [entry["name"] for entry in tomllib.loads(block)["exclusion"]] == [name]
            return block
    raise KeyError(f"no example named {name!r} in {EXAMPLES}")


def config(tmp_path: Path, *names: str, text: str = "") -> Path:
    """A config holding the named examples (verbatim) and then ``text``."""
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.toml"
    path.write_text("\n".join(example_block(name) for name in names) + "\n" + text)
    return path


# --- running: every planned run of the file starts ahead, a few at a time -----------------------


class Result:
    """What one run printed: the alert records, the pairs they alert on, the --stats summary."""

    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        self.records = alerts_of(stdout)
        self.alerts = Counter((record["IPAddress"], record["UserPrincipalName"]) for record in self.records)
        lines = stderr.decode().splitlines()
        assert lines and lines[0] == "fail2entra summary", stderr.decode()
        self.summary: Dict[str, str] = stats_summary(stderr.decode())

    @property
    def excluded(self) -> Dict[str, int]:
        """The summary's ``excluded: name N, ...`` line, as a dict (empty for ``none``)."""
        return per_kind(self.summary["excluded"])


class Run(NamedTuple):
    """``fail2entra --stats --profile PROFILE [--config CONFIG] DATA``."""

    profile: str
    data: Path
    config: Optional[Path] = None

    def execute(self) -> Result:
        args = [COMMAND, "--stats", "--profile", self.profile]
        if self.config is not None:
            args += ["--config", str(self.config)]
        done = subprocess.run(args + [str(self.data)], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return Result(done.stdout, done.stderr)


# A plan writes a test's data and configs into a directory and returns its runs and whatever
# else its test checks; ``plan_x`` belongs to ``test_x`` (called with the test's profile).
PLANS: Dict[str, Callable[[Path, Optional[str]], Tuple[List[Run], Any]]] = {}


def plan(function: Callable) -> Callable:
    PLANS["test_" + function.__name__[len("plan_"):]] = function
    return function


def _profile_of(item) -> Optional[str]:
    return getattr(item, "callspec", None) and item.callspec.params.get("profile")


@pytest.fixture(scope="module")
def planned(request, tmp_path_factory):
    """Start the runs of every selected test of this file at once, a few processes at a time,
    so that later tests' processes run while earlier tests check theirs (the cost of a run is
    the interpreter's start). Returns ``get(name, profile) -> (results, context)``."""
    pending: Dict[Tuple[str, Optional[str]], Any] = {}
    with ThreadPoolExecutor(max_workers=2 * (os.cpu_count() or 2)) as pool:
        for item in request.session.items:
            key = (item.originalname, _profile_of(item))
            if item.module is request.module and key[0] in PLANS and key not in pending:
                try:
                    runs, context = PLANS[key[0]](tmp_path_factory.mktemp(key[0][5:40]), key[1])
                except Exception as error:  # a broken plan fails its own test only
                    pending[key] = error
                else:
                    pending[key] = ([pool.submit(run.execute) for run in runs], context)

        def get(name: str, profile: Optional[str]) -> Tuple[Tuple[Result, ...], Any]:
            if isinstance(pending[(name, profile)], Exception):
                raise pending[(name, profile)]
            futures, context = pending[(name, profile)]
            return tuple(future.result() for future in futures), context

        yield get


@pytest.fixture
def outcome(request, planned):
    """This test's results (one per planned run, in order) and its plan's context."""
    return planned(request.node.originalname, _profile_of(request.node))


def alerts(*pairs: Pair) -> Counter:
    """Exactly one alert per pair (the default suppression keeps one per IP and UPN)."""
    return Counter(pairs)


def evidence(result: Result, pair: Pair) -> Dict[str, int]:
    (record,) = [record for record in result.records if (record["IPAddress"], record["UserPrincipalName"]) == pair]
    return {entry["Source"]: entry["FailureCount"] for entry in record["Evidence"]}


def with_applies_to(name: str, applies_to: str) -> str:
    """The example ``name`` renamed and with another ``applies_to`` (to show what each half does)."""
    block = example_block(name)
    changed = re.sub(r'^applies_to = "\w+"$', f'applies_to = "{applies_to}"', block, count=1, flags=re.MULTILINE)
    changed = changed.replace(f'name = "{name}"', f'name = "{name}-{applies_to}"', 1)
    assert changed != block and tomllib.loads(changed)["exclusion"][0]["applies_to"] == applies_to
    return changed


def attacker_guesses(logs: Logs, upn: str, *, windows_user: str = "", ssh_user: str = "",
                     computer: str = "FS01.contoso.local", count: int = 8, **fields) -> Pair:
    """The attacker's own failures (over the threshold) and his successful sign-in as ``upn``."""
    for attempt in range(count):
        if windows_user:
            logs.windows(at(16, attempt), ATTACKER, windows_user, computer, **fields)
        if ssh_user:
            logs.sshd(at(16, attempt, 30), "bastion01",
                      f"Failed password for {ssh_user} from {ATTACKER} port {logs.port()} ssh2", facility="auth")
    logs.signin(at(16, 40), upn, ATTACKER)
    return ATTACKER, upn


# Every example of conf/exclusions.example.toml and the test that runs it end to end.
EXERCISED = {
    "maintenance-hosts": "test_scheduled_maintenance_tasks",
    "maintenance-task-accounts": "test_scheduled_maintenance_tasks",
    "aad-connect": "test_azure_ad_connect, test_an_exclusion_that_applies_to_both",
    "admin-jump-hosts": "test_admins_troubleshooting_from_the_jump_host",
    "admin-signins-from-vpn": "test_a_signins_exclusion_only_suppresses_alerts",
    "backup-servers": "test_backup_jobs",
    "backup-processes": "test_backup_jobs",
    "backup-job-accounts": "test_backup_jobs",
    "office-typos": "test_users_mistyping_behind_the_office_nat",
}


def test_every_shipped_example_is_exercised_end_to_end():
    shipped = [entry["name"] for entry in tomllib.loads(_EXAMPLE_TEXT)["exclusion"]]
    assert sorted(shipped) == sorted(EXERCISED)
    for name in shipped:
        example_block(name)  # each is found and copied whole
        for test in EXERCISED[name].split(", "):
            assert callable(globals().get(test)) and test in PLANS, f"{name}: no planned test named {test}"


# --- 1. Scheduled system maintenance tasks -----------------------------------------------------

MAINTENANCE_SERVERS = ("FS01", "FS02", "SQL01", "APP01", "APP02", "APP03")
SCHEDULER, PATCHER = "10.50.0.12", "10.60.1.15"  # MGMT-SCHED01; PATCH01 (cron + ansible)
TASK, PATCHING = (SCHEDULER, "svc-nightly-maint@contoso.com"), (PATCHER, "svc-patching@contoso.com")


def maintenance_day(logs: Logs) -> None:
    # 02:00: the nightly task on MGMT-SCHED01 still holds svc-nightly-maint's old password (it
    # was rotated in AD, not in the task); every server refuses it, and the task retries once.
    for index, server in enumerate(MAINTENANCE_SERVERS):
        for attempt in range(2):
            logs.windows(at(2, index, 10 + 30 * attempt), SCHEDULER, "svc-nightly-maint",
                         f"{server}.contoso.local", workstation="MGMT-SCHED01")
    # 03:00: the patch run from PATCH01 uses svc-patching's expired password on the web servers.
    for attempt in range(7):
        logs.sshd(at(3, attempt), f"web0{attempt % 4 + 1}",
                  f"Failed password for svc-patching from {PATCHER} port {logs.port()} ssh2")
    logs.signin(at(7, 30), TASK[1], SCHEDULER, "Microsoft Graph", interactive=False)
    logs.signin(at(7, 45), PATCHING[1], PATCHER, "Microsoft Intune", interactive=False)


@plan
def plan_scheduled_maintenance_tasks(tmp: Path, profile: str):
    logs = Logs()
    maintenance_day(logs)
    # The attacker guesses the task's own account, from his own machine.
    attacker = attacker_guesses(logs, TASK[1], windows_user="svc-nightly-maint", workstation="WIN-8HF3K2LQ")
    data = logs.write(tmp / "day.log")
    return [Run(profile, data), Run(profile, data, config(tmp, "maintenance-hosts")),
            Run(profile, data, config(tmp, "maintenance-task-accounts"))], attacker


@pytest.mark.parametrize("profile", PROFILES)
def test_scheduled_maintenance_tasks(outcome, profile):
    (baseline, by_hosts, by_task), attacker = outcome
    assert baseline.alerts == alerts(TASK, PATCHING, attacker)
    assert baseline.excluded == {}
    # by address: both the Windows task (12 failures) and the cron job (7 sshd lines)
    assert by_hosts.alerts == alerts(attacker)
    assert by_hosts.excluded == {"maintenance-hosts": 19}
    # by the task's account from its host: the Windows task only (sshd has no WorkstationName)
    assert by_task.alerts == alerts(PATCHING, attacker)
    assert by_task.excluded == {"maintenance-task-accounts": 12}
    assert by_task.summary["failures counted"] == "SecurityEvent 8, WindowsEvent 0, Syslog 7"


@plan
def plan_maintenance_task_accounts_example_does_not_trust_a_workstation_name_the_client_chooses(tmp, profile):
    logs = Logs()
    attacker = attacker_guesses(logs, PATCHING[1], windows_user="svc-patching", workstation="MGMT-SCHED01")
    return [Run("hardened", logs.write(tmp / "day.log"), config(tmp, "maintenance-task-accounts"))], attacker


def test_maintenance_task_accounts_example_does_not_trust_a_workstation_name_the_client_chooses(outcome):
    """NTLM's WorkstationName is whatever the client says (xfreerdp /client-hostname, smbclient
    --netbiosname): an attacker who names his machine MGMT-SCHED01 and guesses svc-patching from
    the internet must still be counted. docs/exclusions.md itself says to combine attacker-chosen
    columns with an address; this example combines two attacker-chosen columns."""
    (run,), attacker = outcome
    assert run.excluded == {"maintenance-task-accounts": 0}
    assert run.alerts == alerts(attacker)


# --- 2. Azure AD Connect -----------------------------------------------------------------------

AADC = "10.0.5.20"
MSOL = "MSOL_3f5a2b9c1d0e"
SYNC = "Sync_AADC01_3f5a2b9c1d0e@contoso.onmicrosoft.com"
MIISERVER = r"C:\Program Files\Microsoft Azure AD Sync\Bin\miiserver.exe"
MIISCLIENT = r"C:\Program Files\Microsoft Azure AD Sync\UIShell\miisclient.exe"
SYNC_APP = "Microsoft Azure Active Directory Connect"


@plan
def plan_azure_ad_connect(tmp: Path, profile: str):
    logs = Logs()
    # The AD DS connector account's password was reset in AD, not in the connector: every sync
    # cycle (30 minutes) the sync engine fails to bind to each domain controller.
    for cycle in range(3):
        for index, dc in enumerate(("DC01", "DC02", "DC03")):
            logs.windows(at(1, 30 * cycle, index), AADC, MSOL, f"{dc}.contoso.local", workstation="AADC01")
    # On AADC01 itself, the sync engine's service account and the console fail too.
    for cycle in range(3):
        logs.windows(at(1, 30 * cycle + 1), AADC, "ADSyncMSA7c1f2$", "AADC01.contoso.local", process=MIISERVER)
    logs.windows(at(2, 10), AADC, "adm-jsmith", "AADC01.contoso.local", process=MIISCLIENT)
    # The sync engine exports to Entra ID as its Sync_ account, from the same server.
    logs.signin(at(1, 35), SYNC, AADC, SYNC_APP, interactive=False)
    # The connector credentials were stolen from AADC01 and are tried from elsewhere, even with
    # the server's workstation name.
    attacker = attacker_guesses(logs, SYNC, windows_user=MSOL, computer="DC01.contoso.local", count=7,
                                workstation="AADC01")
    data = logs.write(tmp / "day.log")
    return [Run(profile, data), Run(profile, data, config(tmp, "aad-connect"))], attacker


@pytest.mark.parametrize("profile", PROFILES)
def test_azure_ad_connect(outcome, profile):
    (baseline, excluded), attacker = outcome
    assert baseline.alerts == alerts((AADC, SYNC), attacker)
    # 9 MSOL_ binds + 3 miiserver.exe + 1 miisclient.exe failures, and the Sync_ sign-in (both)
    assert excluded.alerts == alerts(attacker)
    assert excluded.excluded == {"aad-connect": 14}
    assert excluded.summary["failures counted"] == "SecurityEvent 7, WindowsEvent 0, Syslog 0"
    assert excluded.summary["successes"] == "1"  # the attacker's; the Sync_ one from AADC01 is excluded


@plan
def plan_an_exclusion_that_applies_to_both(tmp: Path, profile: None):
    logs = Logs()
    # Day 1: only the sync engine fails (MSOL_), and an admin of AADC01 signs in from it.
    for attempt in range(8):
        logs.windows(at(1, attempt), AADC, MSOL, "DC01.contoso.local", workstation="AADC01")
    logs.signin(at(9, 0), "adm-jsmith@contoso.com", AADC, "Azure Portal")
    # Day 4: the admin mistypes his own password from AADC01 (not excluded); both accounts sign in.
    later = 3 * 86400
    for attempt in range(6):
        logs.windows(later + at(9, attempt), AADC, "adm-jsmith", f"DC0{attempt % 2 + 1}.contoso.local",
                     workstation="AADC01")
    logs.signin(later + at(9, 30), SYNC, AADC, SYNC_APP, interactive=False)
    logs.signin(later + at(9, 31), "adm-jsmith@contoso.com", AADC, "Azure Portal")
    data = logs.write(tmp / "days.log")
    return [Run("hardened", data, config(tmp, "aad-connect")),
            Run("hardened", data, config(tmp, text=with_applies_to("aad-connect", "failures"))),
            Run("hardened", data, config(tmp, text=with_applies_to("aad-connect", "signins")))], None


def test_an_exclusion_that_applies_to_both(outcome):
    """aad-connect (applies_to = both): each half works on its own, and neither "failures" nor
    "signins" alone does what "both" does. Two days, three days apart (the window is one).
    Windows and sign-ins only, which both profiles read alike: run under the default one."""
    (both, failures, signins), _ = outcome
    admin, sync = (AADC, "adm-jsmith@contoso.com"), (AADC, SYNC)
    # both: day 1's MSOL_ failures are not counted (8) and day 4's Sync_ sign-in raises nothing (1);
    # the admin's own failures still count, so his day-4 sign-in alerts
    assert both.alerts == alerts(admin) and both.excluded == {"aad-connect": 9}
    assert both.summary["failures counted"] == "SecurityEvent 6, WindowsEvent 0, Syslog 0"
    # failures only: day 1 is quiet, but the Sync_ sign-in of day 4 alerts
    assert failures.alerts == alerts(admin, sync) and failures.excluded == {"aad-connect-failures": 8}
    # sign-ins only: the MSOL_ failures make the admin's day-1 sign-in an alert
    assert signins.alerts == Counter({admin: 2}) and signins.excluded == {"aad-connect-signins": 1}
    assert signins.summary["failures counted"] == "SecurityEvent 14, WindowsEvent 0, Syslog 0"


# --- 3. Admins troubleshooting over RDP or SSH --------------------------------------------------

JUMP = "10.99.0.14"  # JUMP01, in the admins' range 10.99.0.0/24
ADMIN_VPN = "198.51.100.5"  # the admins' VPN egress, in 198.51.100.0/28
ALICE = "alice.admin@contoso.com"


def rdp_outage(logs: Logs, logon_type: int) -> None:
    """alice.admin, from JUMP01, hops between three servers during an outage and mistypes her
    password on each (7 failures); then she opens the Azure portal on JUMP01."""
    servers = ("LEGACY01", "LEGACY02", "LEGACY03")
    for attempt in range(7):
        server = servers[attempt % 3]
        workstation = server if logon_type == 10 else "JUMP01"  # NLA: the client's name
        logs.windows(at(9, 5 * attempt), JUMP, "alice.admin", f"{server}.contoso.local",
                     logon_type=logon_type, workstation=workstation)
    logs.signin(at(9, 50), ALICE, JUMP, "Azure Portal")


@plan
def plan_admins_troubleshooting_from_the_jump_host(tmp: Path, profile: str):
    logs = Logs()
    rdp_outage(logs, logon_type=10)  # servers where NLA is off log RDP failures as LogonType 10
    removed = 7
    if profile == "hardened":  # kql gives sshd lines no account: see the kql test below
        for attempt in range(6):  # ...and as root over ssh on the database servers
            logs.sshd(at(10, attempt), f"db0{attempt % 2 + 1}",
                      f"Failed password for root from {JUMP} port {logs.port()} ssh2")
        removed += 6
    # The attacker guesses alice.admin (an excluded account) from outside the admins' range.
    attacker = attacker_guesses(logs, ALICE, windows_user="alice.admin", computer="LEGACY01.contoso.local",
                                logon_type=10, workstation="LEGACY01")
    data = logs.write(tmp / "day.log")
    return [Run(profile, data), Run(profile, data, config(tmp, "admin-jump-hosts"))], (attacker, removed)


@pytest.mark.parametrize("profile", PROFILES)
def test_admins_troubleshooting_from_the_jump_host(outcome, profile):
    (baseline, excluded), (attacker, removed) = outcome
    assert baseline.alerts == alerts((JUMP, ALICE), attacker)
    assert excluded.alerts == alerts(attacker)
    assert excluded.excluded == {"admin-jump-hosts": removed}
    assert excluded.summary["failures counted"] == "SecurityEvent 8, WindowsEvent 0, Syslog 0"


@plan
def plan_admin_jump_hosts_example_covers_failed_rdp_with_nla(tmp: Path, profile: None):
    logs = Logs()
    rdp_outage(logs, logon_type=3)
    return [Run("hardened", logs.write(tmp / "day.log"), config(tmp, "admin-jump-hosts"))], None


def test_admin_jump_hosts_example_covers_failed_rdp_with_nla(outcome):
    """With Network Level Authentication (the default since Windows Server 2012) the password is
    checked before the session exists, and a wrong one is logged as a network logon: 4625
    LogonType 3, NtLmSsp / NTLM, WorkstationName = the client. The example's comment promises
    RDP ("RDP: LogonType 10"), but ``LogonType == 10`` misses exactly these failures."""
    (run,), _ = outcome
    assert run.excluded == {"admin-jump-hosts": 7}
    assert run.alerts == alerts()


@plan
def plan_a_signins_exclusion_only_suppresses_alerts(tmp: Path, profile: str):
    logs = Logs()
    # alice.admin works through the VPN and mistypes her password on cloud VMs reachable by ssh.
    for attempt in range(7):
        logs.sshd(at(10, 2 * attempt), f"vm-web0{attempt % 3 + 1}",
                  f"Failed password for alice from {ADMIN_VPN} port {logs.port()} ssh2")
    logs.signin(at(10, 20), ALICE, ADMIN_VPN, "Azure Portal")
    logs.signin(at(15, 0), "carol@contoso.com", ADMIN_VPN)  # not an admin, same VPN egress
    attacker = attacker_guesses(logs, ALICE, ssh_user="alice")
    data = logs.write(tmp / "day.log")
    return [Run(profile, data), Run(profile, data, config(tmp, "admin-signins-from-vpn"))], attacker


@pytest.mark.parametrize("profile", PROFILES)
def test_a_signins_exclusion_only_suppresses_alerts(outcome, profile):
    """admin-signins-from-vpn (applies_to = signins): alice.admin's sign-in from the VPN raises
    nothing, but her failures still count, so another account signing in later from the same
    address alerts."""
    (baseline, excluded), attacker = outcome
    carol = (ADMIN_VPN, "carol@contoso.com")
    assert baseline.alerts == alerts((ADMIN_VPN, ALICE), carol, attacker)
    assert excluded.alerts == alerts(carol, attacker)
    assert excluded.excluded == {"admin-signins-from-vpn": 1}
    assert excluded.summary["failures counted"] == baseline.summary["failures counted"] == \
        "SecurityEvent 0, WindowsEvent 0, Syslog 15"
    assert evidence(excluded, carol) == {"Syslog": 7}


# --- 4. Backup jobs (Veeam, Commvault, rsync) ---------------------------------------------------

VBR01, VBR_PROXY_V6 = "10.20.30.15", "fd00:20:30::21"  # backup servers (10.20.30.0/24, fd00:20:30::/64)
VBR02, CV_MEDIA_AGENT = "10.20.40.9", "10.20.40.8"  # outside those ranges: by process
VBR03, NAS = "10.20.50.11", "10.20.60.4"  # by the job's account
VEEAM_SERVICE = r"C:\Program Files\Veeam\Backup and Replication\Backup\Veeam.Backup.Service.exe"
COMMVAULT_CVD = r"C:\Program Files\Commvault\ContentStore\Base\cvd.exe"
RSYNC_KEY = "ED25519 SHA256:Zq3Yb0mR6o6cQm0dYcL3m2kqk4x9n5m8u1v7w2a9bXs"
NAS_SYNC = (NAS, "svc-nas-sync@contoso.com")


def backup_day(logs: Logs, rsync: bool) -> Tuple[List[Pair], List[Pair], List[Pair]]:
    """The night's backups with stale credentials; the benign pairs that alert, by the example
    that should remove them (servers, processes, job accounts)."""
    # VBR01's guest-processing credential expired: each protected server refuses it twice
    # (collected by Windows Event Forwarding), and its IPv6 proxy's too.
    for index, server in enumerate(("SQL01", "EXCH01", "FS01", "FS02")):
        for attempt in range(2):
            logs.windows(at(22, 10 * index, attempt), VBR01, "svc-backup", f"{server}.contoso.local",
                         workstation="VBR01", forwarded=True)
    for attempt in range(6):
        logs.windows(at(22, 45, attempt), VBR_PROXY_V6, "svc-backup", f"APP0{attempt % 3 + 1}.contoso.local",
                     workstation="VBR-PROXY02")
    logs.signin(at(23, 0), "svc-vbo365@contoso.com", VBR01, "Veeam Backup for Microsoft 365", interactive=False)
    # Failures whose caller is the backup software on the host that logs them.
    for attempt in range(6):
        logs.windows(at(21, attempt), VBR02, "svc-vbr-repo", "VBR02.contoso.local", process=VEEAM_SERVICE)
        logs.windows(at(21, 10 + attempt), CV_MEDIA_AGENT, "svc-cv-restore", "FS03.contoso.local",
                     process=COMMVAULT_CVD)
    logs.signin(at(21, 30), "backupadmin@contoso.com", VBR02, "Azure Portal")
    logs.signin(at(21, 40), "svc-cv-m365@contoso.com", CV_MEDIA_AGENT, "Commvault Cloud", interactive=False)
    # A Veeam job's own guest account, and (Linux) the NAS's rsync job whose key was removed.
    for attempt in range(6):
        logs.windows(at(20, attempt), VBR03, "svc-veeam-job-7", "SQL02.contoso.local", workstation="VBR03")
    logs.signin(at(20, 30), "veeam.operator@contoso.com", VBR03, "Azure Portal")
    jobs = [(VBR03, "veeam.operator@contoso.com")]
    if rsync:
        rsync_failures(logs)
        jobs.append(NAS_SYNC)
    return ([(VBR01, "svc-vbo365@contoso.com")],
            [(VBR02, "backupadmin@contoso.com"), (CV_MEDIA_AGENT, "svc-cv-m365@contoso.com")], jobs)


def rsync_failures(logs: Logs) -> None:
    for attempt in range(6):
        logs.sshd(at(19, attempt), f"web0{attempt % 3 + 1}",
                  f"Failed publickey for rsync-backup from {NAS} port {logs.port()} ssh2: {RSYNC_KEY}")
    logs.signin(at(19, 30), NAS_SYNC[1], NAS, "OneDrive SyncEngine", interactive=False)


@plan
def plan_backup_jobs(tmp: Path, profile: str):
    logs = Logs()
    groups = backup_day(logs, rsync=profile == "hardened")  # kql gives sshd lines no account: see below
    # The attacker guesses a backup job's account and the rsync account from the internet.
    attacker = attacker_guesses(logs, "veeam.operator@contoso.com", windows_user="svc-veeam-job-7",
                                ssh_user="rsync-backup")
    data = logs.write(tmp / "day.log")
    runs = [Run(profile, data)] + [Run(profile, data, config(tmp, name)) for name in
                                   ("backup-servers", "backup-processes", "backup-job-accounts")]
    return runs, (groups, attacker)


@pytest.mark.parametrize("profile", PROFILES)
def test_backup_jobs(outcome, profile):
    (baseline, by_servers, by_process, by_job), ((servers, processes, jobs), attacker) = outcome
    assert baseline.alerts == alerts(*servers, *processes, *jobs, attacker)
    assert by_servers.alerts == alerts(*processes, *jobs, attacker)
    assert by_servers.excluded == {"backup-servers": 14}  # 8 forwarded IPv4 + 6 IPv6
    assert by_process.alerts == alerts(*servers, *jobs, attacker)
    assert by_process.excluded == {"backup-processes": 12}  # 6 Veeam + 6 Commvault
    assert by_job.alerts == alerts(*servers, *processes, attacker)
    assert by_job.excluded == {"backup-job-accounts": 12 if profile == "hardened" else 6}  # + rsync
    assert by_job.summary["failures counted"] == "SecurityEvent 26, WindowsEvent 8, Syslog 8"


# --- the sshd account under the kql profile ------------------------------------------------------


@plan
def plan_examples_on_the_sshd_account_work_under_the_kql_profile(tmp: Path, profile: None):
    logs = Logs()
    for attempt in range(6):
        logs.sshd(at(10, attempt), f"db0{attempt % 2 + 1}",
                  f"Failed password for root from {JUMP} port {logs.port()} ssh2")
    logs.signin(at(10, 30), ALICE, JUMP, "Azure Portal")
    rsync_failures(logs)  # the same lines as the rsync job of test_backup_jobs[hardened]
    data = logs.write(tmp / "day.log")
    return [Run("kql", data), Run("kql", data, config(tmp, "admin-jump-hosts", "backup-job-accounts"))], None


def test_examples_on_the_sshd_account_work_under_the_kql_profile(outcome):
    """docs/exclusions.md documents UserName / TargetUserName as "the sshd user", with no exception for a
    profile; the two examples that exclude an ssh account (root from the jump hosts, the NAS's
    rsync job) must then work under --profile kql as they do under hardened (where the scenario
    tests above run them on the same lines)."""
    (baseline, excluded), _ = outcome
    assert baseline.alerts == alerts((JUMP, ALICE), NAS_SYNC)
    assert excluded.excluded == {"admin-jump-hosts": 6, "backup-job-accounts": 6}
    assert excluded.alerts == alerts()


# --- 5. Legitimate users mistyping their password -----------------------------------------------
#
# What a SOC does: nothing for a lone user, since the rule's threshold (more than 5 failures per
# address) already absorbs a few typos. Where the whole office shares one NAT address, the typos
# of many users add up; the shipped example then stops counting wrong-password failures of
# existing accounts from that address only, and keeps counting unknown accounts (spraying).
# Excluding the sign-ins of the office's egress instead would blind the rule to a compromised
# office machine, which is why no sign-in exclusion is used.

OFFICE = "203.0.113.10"
OFFICE_USERS = ("jdoe", "asmith", "mlee", "pkumar", "jdoe", "asmith", "twu")


def office(*users: str) -> List[Pair]:
    return [(OFFICE, f"{user}@contoso.com") for user in users]


def office_day(logs: Logs) -> None:
    # The RDS farm is reached over its public address (NLA: LogonType 3); users mistype.
    for index, user in enumerate(OFFICE_USERS):
        logs.windows(at(8 + index, 3 * index), OFFICE, user, f"RDS0{index % 2 + 1}.contoso.com",
                     workstation=f"LT-{user.upper()}", sub_status=WRONG_PASSWORD)
    # The SFTP server (Ubuntu): six users each get their password wrong once.
    for index, user in enumerate(("jdoe", "asmith", "mlee", "twu", "rgarcia", "pkumar")):
        logs.sshd(at(9 + index, 15), "sftp01", f"Failed password for {user} from {OFFICE} port {logs.port()} ssh2",
                  facility="auth")
    logs.signin(at(8, 5), "jdoe@contoso.com", OFFICE)
    logs.signin(at(11, 20), "asmith@contoso.com", OFFICE, "Microsoft Teams")


@plan
def plan_users_mistyping_behind_the_office_nat(tmp: Path, profile: str):
    logs = Logs()
    office_day(logs)
    # From the internet: wrong passwords of an existing account (the same SubStatus and sshd
    # wording the example excludes from the office), then a good guess.
    attacker = attacker_guesses(logs, "jdoe@contoso.com", windows_user="jdoe", ssh_user="jdoe",
                                computer="RDS01.contoso.com", workstation="DESKTOP-Q1W2E3")
    data = logs.write(tmp / "day.log")
    return [Run(profile, data), Run(profile, data, config(tmp, "office-typos"))], attacker


@pytest.mark.parametrize("profile", PROFILES)
def test_users_mistyping_behind_the_office_nat(outcome, profile):
    (baseline, excluded), attacker = outcome
    assert baseline.alerts == alerts(*office("jdoe", "asmith"), attacker)
    assert excluded.alerts == alerts(attacker)
    assert excluded.excluded == {"office-typos": 13}  # 7 RDS + 6 SFTP
    assert evidence(excluded, attacker) == {"SecurityEvent": 8, "Syslog": 8}


@plan
def plan_office_typos_still_counts_spraying_from_the_office(tmp: Path, profile: str):
    logs = Logs()
    office_day(logs)
    for index, user in enumerate(("admin", "test", "scanner", "backup", "user1", "sql")):
        logs.windows(at(14, index), OFFICE, user, "RDS01.contoso.com", workstation="LT-JDOE", sub_status=NO_SUCH_USER)
        template = "Failed password for invalid user {user} from {ip} port {port} ssh2" if index % 2 \
            else "Invalid user {user} from {ip} port {port}"
        logs.sshd(at(14, index, 30), "sftp01", template.format(user=user, ip=OFFICE, port=logs.port()), facility="auth")
    logs.signin(at(15, 0), "mlee@contoso.com", OFFICE)  # after the spraying: its evidence is complete
    return [Run(profile, logs.write(tmp / "day.log"), config(tmp, "office-typos"))], None


@pytest.mark.parametrize("profile", PROFILES)
def test_office_typos_still_counts_spraying_from_the_office(outcome, profile):
    """A compromised office laptop sprays unknown accounts behind the same NAT address: those
    failures (SubStatus 0xC0000064, sshd "invalid user") still count, so the office's sign-ins
    alert even with the exclusion, on exactly the spraying's failures."""
    (run,), _ = outcome
    assert run.alerts == alerts(*office("jdoe", "asmith", "mlee"))
    assert run.excluded == {"office-typos": 13}
    assert evidence(run, office("mlee")[0]) == {"SecurityEvent": 6, "Syslog": 6}


@plan
def plan_a_few_typos_stay_under_the_threshold_without_any_exclusion(tmp: Path, profile: str):
    logs = Logs()
    for user, address, rdp, ssh in (("jdoe", "192.0.2.140", 5, 5), ("mlee", "192.0.2.141", 6, 0),
                                    ("twu", "192.0.2.142", 0, 5), ("rgarcia", "192.0.2.143", 0, 6)):
        for attempt in range(rdp):
            logs.windows(at(8, attempt), address, user, "RDS01.contoso.com", workstation=f"HOME-{user.upper()}")
        for attempt in range(ssh):
            logs.sshd(at(8, attempt, 30), "sftp01",
                      f"Failed password for {user} from {address} port {logs.port()} ssh2", facility="auth")
        logs.signin(at(8, 10), f"{user}@contoso.com", address)
    return [Run(profile, logs.write(tmp / "day.log"))], None


@pytest.mark.parametrize("profile", PROFILES)
def test_a_few_typos_stay_under_the_threshold_without_any_exclusion(outcome, profile):
    """The lone user needs no exclusion: 5 typos then a sign-in raise nothing, 6 alert (more
    than 5 failures from one address is the rule's line, and 6 is what a guess looks like).
    Over RDP and over ssh; and each source is counted on its own (the rule's lists are never
    summed), so 5 RDP typos and 5 ssh typos from one address stay under it too."""
    (run,), _ = outcome
    assert run.alerts == alerts(("192.0.2.141", "mlee@contoso.com"), ("192.0.2.143", "rgarcia@contoso.com"))
    assert run.summary["failures counted"] == "SecurityEvent 11, WindowsEvent 0, Syslog 16"


@plan
def plan_office_typos_example_covers_rsyslogs_repeated_lines(tmp: Path, profile: None):
    logs = Logs()
    for index, user in enumerate(("jdoe", "asmith", "mlee", "twu")):
        line = f"Failed password for {user} from {OFFICE} port {logs.port()} ssh2"
        logs.sshd(at(9 + index, 0), "sftp01", line, facility="auth")
        logs.sshd(at(9 + index, 0, 20), "sftp01", f"message repeated 2 times: [ {line}]", facility="auth")
    logs.signin(at(13, 0), "jdoe@contoso.com", OFFICE)
    data = logs.write(tmp / "day.log")
    return [Run("hardened", data), Run("hardened", data, config(tmp, "office-typos"))], None


def test_office_typos_example_covers_rsyslogs_repeated_lines(outcome):
    """rsyslog on Debian and Ubuntu compresses a repeated line ("message repeated 2 times: [
    Failed password for jdoe ...]"); the hardened profile counts it N times, so the example
    matches the wrapper as well as the plain line: the typos of four users who each try three
    times in one connection are all excluded (4 plain lines and 4 wrappers)."""
    (baseline, excluded), _ = outcome
    assert baseline.alerts == alerts(*office("jdoe"))
    assert excluded.excluded == {"office-typos": 8}
    assert excluded.alerts == alerts()


# --- invalid exclusions stop the start ----------------------------------------------------------

INVALID = [
    ("where = 'ipaddress == \"10.0.5.20\"'",
     "unknown field 'ipaddress' at column 1 (did you mean 'IpAddress'?)"),
    ("where = 'EventID == \"4625\"'",
     "cannot compare EventID (a number) with \"4625\" (a string) at column 9"
     " (KQL does not convert between types here)"),
    ("where = 'ipv4_is_in_range(IpAddress, \"10.0.0.0/33\")'",
     "bad IPv4 range '10.0.0.0/33' at column 29 (expected \"a.b.c.d/n\" or \"a.b.c.d\")"),
    ("where = '''\nIpAddress == \"10.0.5.20\"\n"
     "and (ProcessName has \"miiserver.exe\" or TargetUserName startswith MSOL_)\n'''",
     "unknown field 'MSOL_' at line 2, column 67"),
]


@pytest.mark.parametrize("where,message", INVALID, ids=["unknown-column", "type", "range", "multi-line"])
def test_an_invalid_exclusion_stops_the_start_before_reading_input(tmp_path, where, message):
    """Exit status 2 and one line naming the exclusion and the column, before anything is read:
    stdin is a pipe that holds a line and is never closed, and the line is still in it after
    the process has exited on its own."""
    bad = config(tmp_path, "maintenance-hosts",
                 text=f'[[exclusion]]\nname = "sync-typo"\napplies_to = "failures"\n{where}\n')
    pending = (syslog_line({"TimeGenerated": iso(at(3)), "Facility": "auth", "Computer": "web01",
                            "ProcessName": "sshd", "ProcessID": "1",
                            "SyslogMessage": f"Failed password for root from {ATTACKER} port 1 ssh2"}) + "\n").encode()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, pending)
        started = time.monotonic()
        process = subprocess.Popen([COMMAND, "--config", str(bad), "-"], stdin=read_end,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            stdout, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            pytest.fail("fail2entra waited on stdin instead of refusing the exclusion")
        elapsed = time.monotonic() - started
        os.set_blocking(read_end, False)
        left = os.read(read_end, 65536)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert process.returncode == 2
    assert stdout == b""
    assert stderr.decode().splitlines() == [f'fail2entra: error: exclusion "sync-typo": {message}']
    assert left == pending  # nothing was read from stdin
    assert elapsed < 10
