"""Random but realistic data for parity and order tests: Sentinel-shaped rows (what the rule
reads) and the same rows written in the raw shapes the product reads (syslog lines, Windows
XML, Event Hub and Graph sign-ins)."""

import json
import random
from datetime import datetime, timezone
from typing import List

START = datetime(2026, 11, 27, 0, 0, tzinfo=timezone.utc).timestamp()
FACILITY_PRI = {"auth": 4 * 8 + 6, "authpriv": 10 * 8 + 6, "daemon": 3 * 8 + 6, "user": 1 * 8 + 5}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _sshd_message(rng: random.Random, ip: str) -> str:
    port = rng.randint(1024, 65535)
    user = rng.choice(["root", "admin", "oracle", "test user", "Accepted", "10.9.8.7", "x from 192.0.2.99"])
    return rng.choice([
        f"Failed password for {user} from {ip} port {port} ssh2",
        f"Failed password for invalid user {user} from {ip} port {port} ssh2",
        f"Invalid user {user} from {ip} port {port}",
        f"Connection closed by invalid user {user} {ip} port {port} [preauth]",
        f"Received disconnect from {ip} port {port}:11: Bye Bye [preauth]",
        f"Accepted publickey for deploy from {ip} port {port} ssh2: ED25519 SHA256:abc",
        f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user=root",
        f"Connection from {ip} port {port} on 192.0.2.1 port 22",
        f"message repeated 3 times: [ Failed password for root from {ip} port {port} ssh2]",
        f"Did not receive identification string from {ip} port {port}",
    ])


def random_rows(rng: random.Random, ip_count: int = 5, failures: int = 160, signins: int = 40,
                span: float = 23 * 3600) -> List[dict]:
    """Rows of all five tables over ``span`` seconds (under a day), attackers near the threshold."""
    ips = [f"203.0.113.{index}" for index in range(1, ip_count + 1)] + ["2001:db8::5", "127.0.0.1"]
    rows: List[dict] = []
    for number in range(failures):
        ip, when = rng.choice(ips), START + rng.uniform(0, span)
        table = rng.choice(["SecurityEvent", "WindowsEvent", "Syslog", "Syslog"])
        if table == "Syslog":
            program = rng.choice(["sshd", "sshd", "sshd", "sshd-session", "sudo"])
            rows.append({"Type": "Syslog", "TimeGenerated": iso(when), "Computer": f"web{number % 3}",
                         "Facility": rng.choice(["auth", "authpriv", "authpriv", "daemon"]),
                         "ProcessName": program, "ProcessID": str(1000 + number),
                         "SyslogMessage": _sshd_message(rng, ip)})
        else:
            logon_type = rng.choice([3, 3, 10, 7, 2])
            address = rng.choice([ip, ip, ip, "-"])
            row = {"Type": table, "TimeGenerated": iso(when), "EventID": 4625, "Computer": f"DC{number % 2}"}
            if table == "SecurityEvent":
                row.update(LogonType=logon_type, IpAddress=address, TargetUserName="administrator")
            else:
                row["EventData"] = {"LogonType": str(logon_type), "IpAddress": address, "TargetUserName": "admin"}
            rows.append(row)
    for number in range(signins):
        ip = rng.choice(ips + ["198.51.100.1"])
        rows.append({"Type": rng.choice(["SigninLogs", "AADNonInteractiveUserSignInLogs"]),
                     "TimeGenerated": iso(START + rng.uniform(0, span)), "Id": f"signin-{number}",
                     "IPAddress": ip, "UserPrincipalName": rng.choice(["bob@contoso.com", "eve@contoso.com", "svc"]),
                     "ResultType": rng.choice(["0", "0", "50125", "50140", "50126"]), "AppDisplayName": "Office 365"})
    rng.shuffle(rows)
    return rows


_DATA_NAMES = ("SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "TargetUserSid",
               "TargetUserName", "TargetDomainName", "Status", "FailureReason", "SubStatus", "LogonType",
               "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
               "LmPackageName", "KeyLength", "ProcessId", "ProcessName", "IpAddress", "IpPort")


def windows_xml(row: dict) -> str:
    """A 4625 row as wevtutil prints it (WindowsEvent rows get RenderingInfo, as forwarded)."""
    data = row["EventData"] if row["Type"] == "WindowsEvent" else row
    values = {name: "-" for name in _DATA_NAMES}
    values.update(TargetUserName=str(data.get("TargetUserName", "")), LogonType=str(data["LogonType"]),
                  IpAddress=str(data["IpAddress"]))
    items = "".join(f"<Data Name='{name}'>{values[name]}</Data>" for name in _DATA_NAMES)
    rendering = "<RenderingInfo Culture='en-US'><Message>An account failed to log on.</Message></RenderingInfo>" \
        if row["Type"] == "WindowsEvent" else ""
    return (f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
            f"<EventID>4625</EventID><TimeCreated SystemTime='{row['TimeGenerated'][:-1]}0Z'/>"
            f"<Channel>Security</Channel><Computer>{row['Computer']}</Computer></System>"
            f"<EventData>{items}</EventData>{rendering}</Event>")


def syslog_line(row: dict) -> str:
    """A Syslog row as an rsyslog line with priority (so the facility travels with it)."""
    stamp = row["TimeGenerated"][:-1] + "+00:00"
    return (f"<{FACILITY_PRI[row['Facility']]}>{stamp} {row['Computer']} {row['ProcessName']}"
            f"[{row['ProcessID']}]: {row['SyslogMessage']}")


def signin_json(row: dict) -> str:
    """A sign-in row as an Event Hub record or a Graph signIn (alternately)."""
    interactive = row["Type"] == "SigninLogs"
    if int(row["Id"].rsplit("-", 1)[1]) % 2:
        return json.dumps({"id": row["Id"], "createdDateTime": row["TimeGenerated"], "isInteractive": interactive,
                           "userPrincipalName": row["UserPrincipalName"], "ipAddress": row["IPAddress"],
                           "status": {"errorCode": int(row["ResultType"])}, "appDisplayName": row["AppDisplayName"]})
    return json.dumps({"time": row["TimeGenerated"], "category": "SignInLogs" if interactive else "NonInteractiveUserSignInLogs",
                       "resultType": row["ResultType"], "callerIpAddress": row["IPAddress"],
                       "properties": {"id": row["Id"], "userPrincipalName": row["UserPrincipalName"],
                                      "ipAddress": row["IPAddress"], "appDisplayName": row["AppDisplayName"]}})


def raw_line(row: dict) -> str:
    """The row in the raw shape a host or Entra ID would give."""
    if row["Type"] == "Syslog":
        return syslog_line(row)
    if row["Type"] in ("SecurityEvent", "WindowsEvent"):
        return windows_xml(row)
    return signin_json(row)
