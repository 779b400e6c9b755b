"""The alert record: the rule's output row (the sign-in plus the rule's columns), flat and
Sentinel-like, with the evidence that made it and an id that survives re-sending."""

import uuid
from typing import Dict, List, Tuple

from parsers.event import Event
from parsers.timestamps import format_iso8601

from .counter import Evidence
from .encodable import encodable, encodable_record

RULE_ID = "1ce5e766-26ab-4616-b7c8-3b33ae321e80"
ALERT_NAME = "Failed host logons but success logon to AzureAD"
REASON = "Multiple failed host logins from IP address with successful Azure AD login"
SEVERITY = "Medium"
TACTICS = ("InitialAccess", "CredentialAccess")
TECHNIQUES = ("T1078", "T1110")
_ALERT_ID_NAMESPACE = uuid.UUID(RULE_ID)


def account_parts(upn: str) -> Tuple[str, str]:
    """KQL's ``split(UserPrincipalName, "@")[0]`` and ``[1]`` (``""`` past the end)."""
    parts = upn.split("@")
    return parts[0], parts[1] if len(parts) > 1 else ""


def alert_id(signin: Event) -> str:
    """Stable for the same sign-in and IP, so a receiver can recognise a re-sent alert."""
    identity = signin.record_id or f"{signin.time!r}\x00{signin.user_principal_name}"
    return str(uuid.uuid5(_ALERT_ID_NAMESPACE, encodable(f"{signin.table}\x00{identity}\x00{signin.ip}")))


def build_alert(signin: Event, evidence: Dict[str, Evidence], late: bool) -> dict:
    """The alert for ``signin``; ``evidence`` maps each failure source to what it holds. Its
    text is encodable whatever the input held (see encodable.py), so that no output fails on it."""
    account_name, upn_suffix = account_parts(signin.user_principal_name)
    when = format_iso8601(signin.time)
    return encodable_record({
        "TimeGenerated": when,
        "timestamp": when,
        "Type": signin.table,
        "Id": signin.record_id,
        "IPAddress": signin.ip,
        "UserPrincipalName": signin.user_principal_name,
        "ResultType": signin.result_type,
        "AccountName": account_name,
        "AccountUPNSuffix": upn_suffix,
        "Reason": REASON,
        "AlertName": ALERT_NAME,
        "RuleId": RULE_ID,
        "Severity": SEVERITY,
        "Tactics": list(TACTICS),
        "Techniques": list(TECHNIQUES),
        "Entities": [
            {"Type": "account", "Name": account_name, "UPNSuffix": upn_suffix},
            {"Type": "ip", "Address": signin.ip},
        ],
        "Evidence": _evidence_entries(evidence),
        "Late": late,
        "AlertId": alert_id(signin),
    })


def _evidence_entries(evidence: Dict[str, Evidence]) -> List[dict]:
    return [
        {
            "Source": source,
            "FailureCount": found.count,
            "FirstFailure": format_iso8601(found.first),
            "LastFailure": format_iso8601(found.last),
            "Hosts": [host for host in found.hosts if host],
            "Users": [user for user in found.users if user],
        }
        for source, found in evidence.items()
    ]
