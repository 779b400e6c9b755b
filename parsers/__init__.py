"""Log parsers: input lines and records in, normalised :class:`~parsers.event.Event` out."""

# Every shape the parsers recognise (the ``kind`` of the events they return), with what it is.
# tests/test_parsers.py fails when a kind here has no annotated sample in tests/fixtures/.
KINDS = {
    "syslog-rfc3164": "syslog line as in /var/log/auth.log (RFC 3164), with or without <PRI>",
    "syslog-rfc3339": "rsyslog high-precision line (RFC 3339 timestamp), with or without <PRI>",
    "syslog-rfc5424": "RFC 5424 line, structured data '-' or [...]",
    "journald": "journalctl -o json entry",
    "windows-xml": "Windows event XML (wevtutil, Get-WinEvent, Event Viewer, forwarded events)",
    "sentinel-row": "Log Analytics / Sentinel row (Type names the table)",
    "eventhub": "Entra ID diagnostic record (Event Hub or storage), also in {\"records\": [...]}",
    "graph": "Microsoft Graph signIn, also in {\"value\": [...]}",
    "fluentd-syslog": "Fluentd in_tail + syslog parser record (host, ident, pid, message)",
    "fluentd-windows-eventlog2": "Fluentd in_windows_eventlog2 record (EventData list or parse_description keys)",
    "fluentbit-winevtlog": "Fluent Bit winevtlog record (StringInserts)",
    "winlogbeat": "Winlogbeat / ECS document (winlog.*, source.ip)",
    "fail2entra-summary": "failure summaries of a fail2entra edge (--edge), read with --accept-summaries",
}
