"""Builders of normalised events for engine tests (the parsers are tested on real text)."""

from parsers.event import Event

BASE = 1_795_788_000.0  # 2026-11-27T14:00:00Z


def sshd(address: str, at: float = 0.0, message: str = "", program: str = "sshd", facility: str = "auth",
         user: str = "root", host: str = "web1") -> Event:
    """An sshd line as syslog gives it; by default a failed password from ``address``."""
    text = message or f"Failed password for {user} from {address} port 40022 ssh2"
    return Event("Syslog", BASE + at, "syslog-rfc3164", computer=host, process_name=program,
                 facility=facility, process_id="1234", program=program, message=text)


def logon_failure(address: str, at: float = 0.0, logon_type=3, table: str = "SecurityEvent",
                  user: str = "administrator", event_id: int = 4625, host: str = "DC01") -> Event:
    """A Windows 4625 (or another EventID) as the XML parser gives it."""
    return Event(table, BASE + at, "windows-xml", address, host, event_id, logon_type, user)


def signin(address: str, at: float = 0.0, result: str = "0", upn: str = "bob@contoso.com",
           table: str = "SigninLogs", record_id: str = "") -> Event:
    """An Entra ID sign-in."""
    return Event(table, BASE + at, "eventhub", address, user_principal_name=upn, result_type=result,
                 record_id=record_id or f"{table}-{address}-{at}-{upn}")
