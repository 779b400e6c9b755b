"""The Sentinel rule evaluated the batch way, as its KQL reads, over Sentinel-shaped rows.

Written independently of the engine (no shared code) so that the CLI can be checked against
it: lists of IPs with more than ``threshold`` qualifying failures per table over the whole
data, then every successful sign-in whose IPAddress is on a list.
"""

import re
from collections import Counter
from typing import Iterable, List, Set, Tuple

_TERM_CHARS = re.compile(r"[A-Za-z0-9]+")
_DOTTED_QUAD = re.compile(r"(([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.(([0-9]{1,3})))")


def kql_has(text: str, term: str) -> bool:
    """``has`` for an alphanumeric term: one of the text's maximal alphanumeric runs, any case."""
    return term.lower() in {run.lower() for run in _TERM_CHARS.findall(text)}


def kql_has_preauth(text: str) -> bool:
    lowered = text.lower()
    return "[preauth]" in lowered


def nix_key(row: dict) -> str:
    """The Syslog list key of a row, or '' when the row does not qualify."""
    if "auth" not in row.get("Facility", "").lower() or row.get("ProcessName") == "sudo":
        return ""
    message = row.get("SyslogMessage", "")
    if not kql_has(message, "from"):
        return ""
    if any(kql_has(message, word) for word in ("Disconnecting", "Disconnected", "Accepted", "disconnect")):
        return ""
    if kql_has_preauth(message):
        return ""
    found = _DOTTED_QUAD.search(message)
    source = found.group(1) if found else ""
    return "" if source in ("", "127.0.0.1") else source


def rule_rows(rows: Iterable[dict], threshold: int = 5) -> List[Tuple[str, str]]:
    """(Type, Id) of every row the rule returns, with repeats, sorted."""
    rows = list(rows)
    win: Counter = Counter()
    wef: Counter = Counter()
    nix: Counter = Counter()
    for row in rows:
        kind = row["Type"]
        if kind == "SecurityEvent" and int(row["EventID"]) == 4625 and row.get("LogonType") in (10, 7, 3) \
                and row.get("IpAddress", "") != "-":
            win[row.get("IpAddress", "")] += 1
        elif kind == "WindowsEvent" and int(row["EventID"]) == 4625:
            data = row["EventData"]
            if str(data.get("LogonType")) in ("10", "7", "3") and str(data.get("IpAddress", "")) != "-":
                wef[str(data.get("IpAddress", ""))] += 1
        elif kind == "Syslog":
            key = nix_key(row)
            if key:
                nix[key] += 1
    lists: Set[str] = {ip for counts in (win, wef, nix) for ip, count in counts.items() if count > threshold}
    return sorted(
        (row["Type"], row["Id"]) for row in rows
        if row["Type"] in ("SigninLogs", "AADNonInteractiveUserSignInLogs")
        and row["ResultType"] in ("0", "50125", "50140") and row["IPAddress"] in lists
    )
