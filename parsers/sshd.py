"""OpenSSH sshd messages, read by template: the ``hardened`` profile's view of an sshd line.

The rule takes the first dotted quad anywhere in an sshd message, so a client steers it with a
username such as ``x from 10.9.8.7 port 22`` and hides its lines with a username such as
``Accepted``. Here the message body (what follows ``sshd[pid]: ``) is matched whole, anchored
at both ends, against a closed set of templates, one per format string sshd writes (older
OpenSSH wordings included), and the address is taken only from the template's fixed slot.

Text the client chooses is opaque: usernames (``%.100s``, spaces allowed), identification
strings, method info (certificate key IDs, hostbased client names), disconnect reasons, PAM
``ruser=``/``user=`` values. Nothing inside them is read as an address or a keyword. sshd passes
every message through ``strnvis()``, so the body holds no control characters or newlines.

A message can still have two readings when an opaque span sits on each side of the address
slot (``Failed publickey for <user> from A port N ssh2: <info>``): the slot may follow any
occurrence of the marker (`` from ``) that leaves a valid reading. Such a message is
``ambiguous`` and never counts, whatever the readings put in the slot (sshd writes
``UNKNOWN`` there when it is not on a socket). Where the text after the slot is fixed and anchored to the end
(``Invalid user <user> from A port N``) the tail cannot contain its own marker, so there is
only one reading whatever the username holds, and one regex finds it. The all-readings check
(one head and one tail regex per occurrence of the marker, each costing only its fixed text,
so linear in the body) runs only for a form whose tail holds client text, and only when the
marker occurs more than once.
"""

import re
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

from parsers.address import canonical_ip

# sshd formats a message into a 1024-byte buffer (log.c MSGBUFSIZ, so at most 1023 characters,
# " [preauth]" included) and hands syslog() at most 500 of them; rsyslog's repeat wrapper adds
# at most 40. A longer body is not sshd's, and refusing it bounds the cost of any line.
MAX_MESSAGE_LENGTH = 1100

# The programs sshd logs under: the listener, and since OpenSSH 9.8 / 10 the per-connection
# session and authentication processes.
SSHD_PROGRAMS = frozenset(("sshd", "sshd-session", "sshd-auth"))
PREAUTH = " [preauth]"  # appended by the monitor to what the pre-authentication child logged
LEVELS = frozenset(("error:", "fatal:"))  # log.c prefixes messages logged at these levels


class SshdMessage(NamedTuple):
    """What one sshd message says to the hardened profile."""

    template: str  # name of the matched template, e.g. "failed-auth", "invalid-user"
    counts: bool  # a counted failure, with an IP address in the slot, and not ambiguous
    address: str  # canonical_ip() of the fixed address slot; '' when no slot or not an IP
    user: str  # username slot as written ('' when none, or when readings disagree)
    repeat: int  # N for rsyslog "message repeated N times: [ <msg>]", else 1
    ambiguous: bool  # the message can be read with two different addresses: never counts


class Form(NamedTuple):
    """One wording of a template, compiled; built by :func:`_form`.

    ``whole`` matches the entire body. A form whose address slot follows an opaque span also
    keeps the regex split at ``marker`` (the fixed text that starts the tail), so that every
    occurrence of the marker can be tried as the place the fixed text really starts.
    """

    key: str  # the body's first word: how a body is dispatched to its forms
    whole: "re.Pattern[str]"
    head: "Optional[re.Pattern[str]]"  # the body up to the marker
    tail: "Optional[re.Pattern[str]]"  # the body from the marker to the end
    marker: str  # '' when the slot is reached through fixed text only (one reading)
    tail_opaque: bool  # the tail holds client text, so the marker may recur after the slot
    has_addr: bool  # the form has an address slot (group "addr")
    has_user: bool  # the form has a username slot (group "user")


class Template(NamedTuple):
    """One sshd message: its name, whether the hardened profile counts it, its wordings."""

    name: str
    counts: bool  # a failed logon the profile counts (without " [preauth]")
    forms: Tuple[Form, ...]
    example: str  # a real body, checked against the forms when the module loads


def _literal_prefix(regex: str) -> str:
    """The fixed text a regex starts with (``r" \\((?P<addr>"`` starts with ``" ("``)."""
    text = []
    index = 0
    while index < len(regex):
        escaped = regex[index] == "\\" and index + 1 < len(regex) and not regex[index + 1].isalnum()
        if not escaped and regex[index] in ".^$*+?{}[]|()\\":
            break
        step = 2 if escaped else 1
        if regex[index + step : index + step + 1] in ("*", "+", "?", "{"):
            break  # a quantified character is not fixed text
        text.append(regex[index + step - 1])
        index += step
    return "".join(text)


def _form(head: str, tail: str = "", tail_opaque: bool = False) -> Form:
    """Compile one wording: ``head`` alone when the slot is reached through fixed text only,
    else ``head`` up to the marker and ``tail`` from it; the marker is the fixed text ``tail``
    starts with, and the key is the first word of ``head``.

    Opaque spans are compiled greedy and DOTALL: ``.*`` then jumps to the end of the text in
    one step and backs off to the fixed text that follows, where a lazy ``.*?`` would creep
    forward through the span trying the tail at every occurrence of its marker. Each split of
    the all-readings check then costs its fixed text only, which keeps that check linear in
    the body. Where a form has one reading, greedy and lazy find the same one; bodies never
    hold a newline (read_sshd_message refuses them), so DOTALL changes nothing else."""
    key, space, _ = _literal_prefix(head).partition(" ")
    marker = _literal_prefix(tail)
    if not space or (tail and not marker.strip()):
        raise ValueError(f"form {head!r} {tail!r}: no fixed first word or no fixed marker")
    head = head.replace(".*?", ".*")  # greedy: with a fixed, anchored tail the split is the same
    whole = re.compile(head + tail, re.ASCII | re.DOTALL)
    has_addr, has_user = "addr" in whole.groupindex, "user" in whole.groupindex
    if not tail:
        return Form(key, whole, None, None, "", False, has_addr, has_user)
    split = re.compile(head, re.ASCII | re.DOTALL), re.compile(tail, re.ASCII | re.DOTALL)
    return Form(key, whole, split[0], split[1], marker, tail_opaque, has_addr, has_user)


# The regexes below are written out whole, one per format string, flat and anchored (they are
# used with fullmatch). Opaque spans are ".*?" (lazy: the username is usually short and the
# rest long); the address slot is "(?P<addr>\S+)", validated afterwards by canonical_ip().
# Named groups: "addr" (the slot), "user" (the username). OpenSSH sources: auth.c auth_log(),
# getpwnamallow(), allowed_user(), auth_root_allowed(), auth_maxtries_exceeded(); auth2.c;
# auth-pam.c; packet.c sshpkt_vfatal() and ssh_packet_disconnect() (whose connection id is
# "[authenticating |invalid ]user U " before "A port N" since 7.5); kex.c; sshd.c; session.c;
# serverloop.c.
TEMPLATES: Tuple[Template, ...] = (
    # --- failures the hardened profile counts -------------------------------------------------
    Template("failed-auth", True, (
        # password, none, keyboard-interactive and challenge-response never carry method info,
        # so the text after the slot is fixed: a username cannot make these lines ambiguous.
        _form(r"Failed (?:password|none|keyboard-interactive(?:/[a-z]+)?|challenge-response) for (?:(?:invalid|illegal) user )?(?P<user>.*?)",
              r" from (?P<addr>\S+) port [0-9]+(?: ssh[12])?"),
        # publickey (key type, fingerprint, certificate key ID), hostbased (client user and
        # host) and GSSAPI (principal) append ": <method info>", which the client partly writes.
        _form(r"Failed (?:publickey|hostbased|gssapi-with-mic|gssapi-keyex|rsa|rhosts-rsa) for (?:(?:invalid|illegal) user )?(?P<user>.*?)",
              r" from (?P<addr>\S+) port [0-9]+(?: ssh[12])?(?:: .*)?", tail_opaque=True),
    ), "Failed password for invalid user admin from 203.0.113.5 port 52211 ssh2"),
    Template("invalid-user", True, (
        # " port N" since OpenSSH 7.4; "Illegal user" before 3.9.
        _form(r"Invalid user (?P<user>.*?)", r" from (?P<addr>\S+)(?: port [0-9]+)?"),
        _form(r"Illegal user (?P<user>.*?)", r" from (?P<addr>\S+)(?: port [0-9]+)?"),
    ), "Invalid user test from 198.51.100.7 port 40022"),
    Template("user-not-allowed", True, (
        # AllowUsers/DenyUsers/AllowGroups/DenyGroups; the slot is a hostname under UseDNS yes.
        _form(r"User (?P<user>.*?)", r" from (?P<addr>\S+) not allowed because (?:listed in DenyUsers|not listed in AllowUsers|not in any group"
              r"|a group is listed in DenyGroups|none of user's groups are listed in AllowGroups)"),
    ), "User root from 198.51.100.7 not allowed because not listed in AllowUsers"),
    Template("no-identification", True, (
        # sshd.c before OpenSSH 8.0 (" port N" since 7.4 or so).
        _form(r"Did not receive identification string from (?P<addr>\S+)(?: port [0-9]+)?"),
    ), "Did not receive identification string from 203.0.113.5 port 35836"),
    Template("bad-protocol-version", True, (
        # sshd.c before OpenSSH 8.0; the quoted identification string is the client's.
        _form(r"Bad protocol version identification '.*?'", r" from (?P<addr>\S+)(?: port [0-9]+)?"),
    ), "Bad protocol version identification 'GET / HTTP/1.1' from 203.0.113.5 port 31778"),
    Template("banner-exchange", True, (
        # OpenSSH 8.0+: kex_exchange_identification() failed, sshpkt_fatal(ssh, r, "banner exchange").
        _form(r"banner exchange: Connection from (?P<addr>\S+) port [0-9]+: .*"),
    ), "banner exchange: Connection from 203.0.113.5 port 34388: invalid format"),
    Template("pam-auth-failure", True, (
        # auth-pam.c sshpam_query() (UsePAM yes, keyboard-interactive); some builds say "invalid".
        # macOS writes "PAM: authentication error for U from H via L" (L: the local host).
        _form(r"PAM: [A-Za-z][^:]*? for (?:(?:illegal|invalid) user )?(?P<user>.*?)", r" from (?P<addr>\S+)(?: via \S+)?"),
    ), "PAM: Authentication failure for illegal user admin from 203.0.113.5"),
    Template("root-login-refused", True, (
        # PermitRootLogin no / prohibit-password; " port N" since OpenSSH 6.x.
        _form(r"ROOT LOGIN REFUSED FROM (?P<addr>\S+)(?: port [0-9]+)?"),
    ), "ROOT LOGIN REFUSED FROM 203.0.113.5 port 22154"),
    # --- recognised, not counted --------------------------------------------------------------
    Template("accepted-auth", False, (
        _form(r"Accepted [a-z0-9/-]+ for (?P<user>.*?)", r" from (?P<addr>\S+) port [0-9]+(?: ssh[12])?(?:: .*)?", tail_opaque=True),
    ), "Accepted publickey for alice from 198.51.100.7 port 56296 ssh2: ED25519 SHA256:1M4RzhMyWuFS/86uPY/ce2prh/dVTHW7iD2RhpquOZA"),
    Template("partial-auth", False, (
        # One method of AuthenticationMethods "a,b" succeeded; another is still required.
        _form(r"Partial [a-z0-9/-]+ for (?P<user>.*?)", r" from (?P<addr>\S+) port [0-9]+(?: ssh[12])?(?:: .*)?", tail_opaque=True),
    ), "Partial publickey for alice from 198.51.100.7 port 56296 ssh2: ED25519 SHA256:1M4RzhMyWuFS/86uPY/ce2prh/dVTHW7iD2RhpquOZA"),
    Template("postponed-auth", False, (
        # Logged by the pre-authentication child, so normally with " [preauth]".
        _form(r"Postponed [a-z0-9/-]+ for (?:(?:invalid|illegal) user )?(?P<user>.*?)", r" from (?P<addr>\S+) port [0-9]+(?: ssh[12])?(?:: .*)?", tail_opaque=True),
    ), "Postponed keyboard-interactive for root from 198.51.100.7 port 57904 ssh2 [preauth]"),
    Template("max-auth-attempts", False, (
        # OpenSSH 6.8+, at level error, from the pre-authentication child.
        _form(r"maximum authentication attempts exceeded for (?:(?:invalid|illegal) user )?(?P<user>.*?)", r" from (?P<addr>\S+) port [0-9]+ ssh[12]"),
    ), "maximum authentication attempts exceeded for root from 203.0.113.5 port 49940 ssh2 [preauth]"),
    Template("connection-from", False, (
        # LogLevel VERBOSE; " on B port M" since OpenSSH 7.x, " rdomain" since 7.6.
        _form(r'Connection from (?P<addr>\S+)(?: port [0-9]+(?: on \S+ port [0-9]+(?: rdomain "[^"]*")?)?)?'),
    ), "Connection from 203.0.113.5 port 39678 on 192.0.2.9 port 22"),
    Template("connection-closed", False, (
        _form(r"Connection closed by (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)", r" port [0-9]+"),
        _form(r"Connection closed by (?P<addr>\S+)"),  # before OpenSSH 7.0: no port
    ), "Connection closed by authenticating user root 203.0.113.5 port 45362 [preauth]"),
    Template("connection-reset", False, (
        _form(r"Connection reset by (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)", r" port [0-9]+"),
    ), "Connection reset by invalid user admin 203.0.113.5 port 49115 [preauth]"),
    Template("disconnected", False, (
        _form(r"Disconnected from (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)", r" port [0-9]+"),
    ), "Disconnected from invalid user ftp 203.0.113.5 port 26138 [preauth]"),
    Template("received-disconnect", False, (
        # The reason after the code is the client's; at level error unless the code is 11.
        _form(r"Received disconnect from (?P<addr>\S+) port [0-9]+:[0-9]+: .*"),
        _form(r"Received disconnect from (?P<addr>\S+): [0-9]+: .*"),  # before OpenSSH 7.4
    ), "Received disconnect from 203.0.113.5 port 59366:11: Bye Bye [preauth]"),
    Template("disconnecting", False, (
        # ssh_packet_disconnect(); the reason may quote usernames ("Change of username ...").
        _form(r"Disconnecting (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)", r" port [0-9]+: .*", tail_opaque=True),
        _form(r"Disconnecting: .*"),  # before OpenSSH 7.5: no connection id
    ), "Disconnecting invalid user admin 203.0.113.5 port 44004: Too many authentication failures [preauth]"),
    Template("pam-unix-auth-failure", False, (
        # pam_unix (Linux-PAM) logs through sshd's syslog ident; rhost is PAM_RHOST (a
        # hostname under UseDNS yes), "  user=" only when the user is known. Not counted: the
        # same attempt also gives "Failed password".
        _form(r"pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=[0-9]+ euid=[0-9]+ tty=\S* ruser=.*?",
              r" rhost=(?P<addr>\S*)(?: {1,2}user=(?P<user>.*)| )?", tail_opaque=True),
    ), "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root"),
    Template("pam-more-failures", False, (
        # pam_unix when PAM ends after several failures in one connection.
        _form(r"PAM [0-9]+ more authentication failures?; logname=\S* uid=[0-9]+ euid=[0-9]+ tty=\S* ruser=.*?",
              r" rhost=(?P<addr>\S*)(?: {1,2}user=(?P<user>.*)| )?", tail_opaque=True),
    ), "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root"),
    Template("auth-timeout", False, (
        # LoginGraceTime: "fatal: ..." from sshd before 9.8 (" port N" since 7.x) ...
        _form(r"Timeout before authentication for (?P<addr>\S+)(?: port [0-9]+)?"),
        # ... and from the listener since 9.8.
        _form(r"Timeout before authentication for connection from (?P<addr>[^\s,]+)(?: to [^\s,]+)?, pid = [0-9]+(?: \(early\))?"),
    ), "Timeout before authentication for 203.0.113.5 port 47056"),
    Template("unable-to-negotiate", False, (
        _form(r"Unable to negotiate with (?P<addr>\S+) port [0-9]+: .*"),
    ), "Unable to negotiate with 203.0.113.5 port 45626: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]"),
    Template("close-session", False, (
        # session.c, LogLevel VERBOSE.
        _form(r"Close session: user (?P<user>.*?)", r" from (?P<addr>\S+) port [0-9]+ id [0-9]+"),
    ), "Close session: user ansible from 198.51.100.7 port 34928 id 0"),
    Template("start-session", False, (
        # session.c, LogLevel VERBOSE: "shell on pts/0", "command", "subsystem 'sftp'", ...;
        # the user is the authenticated account.
        _form(r"Starting session: .* for (?P<user>\S+)", r" from (?P<addr>\S+) port [0-9]+ id [0-9]+"),
    ), "Starting session: shell on pts/0 for ansible from 198.51.100.7 port 34928 id 0"),
    Template("drop-connection", False, (
        # MaxStartups / PerSourceMaxStartups (8.5+) / PerSourcePenalties (9.8+), in the listener.
        _form(r"drop connection #[0-9]+ from \[(?P<addr>[^\]]*)\]:[0-9]+ on \[[^\]]*\]:[0-9]+ .*"),
    ), "drop connection #10 from [203.0.113.5]:51344 on [192.0.2.9]:22 past MaxStartups"),
    Template("client-timeout", False, (
        # ClientAliveInterval/ClientAliveCountMax, after authentication.
        _form(r"Timeout, client not responding from (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)",
              r" port [0-9]+"),
        _form(r"Timeout, client not responding\."),  # before OpenSSH 7.5
    ), "Timeout, client not responding from user alice 198.51.100.7 port 46488"),
    Template("refused-connect", False, (
        # TCP wrappers (libwrap, distribution builds); the part before the address can hold
        # an ident (RFC 931) username.
        _form(r"refused connect from .*?", r" \((?P<addr>[^()\s]+)\)"),
        _form(r"refused connect from (?P<addr>\S+)"),
    ), "refused connect from host.example.com (203.0.113.5)"),
    Template("dispatch-fatal", False, (
        # A fatal protocol error after key exchange (MAC failure, bad packet, ...).
        _form(r"ssh_dispatch_run_fatal: Connection from (?:(?:authenticating |invalid )?user (?P<user>.*?) )?(?P<addr>\S+)",
              r" port [0-9]+: .*", tail_opaque=True),
    ), "ssh_dispatch_run_fatal: Connection from 203.0.113.5 port 48680: message authentication code incorrect [preauth]"),
    Template("read-error", False, (
        _form(r"Read error from remote host (?P<addr>\S+) port [0-9]+: .*"),  # serverloop.c, VERBOSE
        _form(r"Read from socket failed: .*"),  # packet.c before OpenSSH 6.8
    ), "Read error from remote host 198.51.100.7 port 52122: Connection reset by peer"),
    Template("dns-check-failed", False, (
        # canohost.c under UseDNS yes; "POSSIBLE BREAK-IN ATTEMPT!" until OpenSSH 7.x.
        _form(r"reverse mapping checking getaddrinfo for .*?", r" \[(?P<addr>[^\]\s]*)\] failed(?:\.| - POSSIBLE BREAK-IN ATTEMPT!)"),
        _form(r"Address (?P<addr>\S+) maps to .*, but this does not map back to the address(?:\.| - POSSIBLE BREAK-IN ATTEMPT!?)"),
    ), "reverse mapping checking getaddrinfo for host.example.com [203.0.113.5] failed."),
    Template("kex-identification", False, (
        # kex.c kex_exchange_identification(), OpenSSH 8.0+; the quoted line is the client's.
        _form(r"kex_exchange_identification: .*"),
    ), 'kex_exchange_identification: client sent invalid protocol identifier "GET / HTTP/1.1"'),
    Template("bad-remote-version", False, (
        _form(r"Bad remote protocol version identification: '.*'"),
    ), "Bad remote protocol version identification: 'SSH-2.0'"),
    Template("user-refused", False, (
        # allowed_user() and session.c on an existing account: locked, no shell, /etc/nologin.
        _form(r"User (?P<user>\S+) not allowed because (?:account is locked|shell .* does not exist|shell .* is not executable|\S+ exists)"),
    ), "User git not allowed because shell /usr/local/bin/git-shell does not exist"),
    Template("invalid-user-request", False, (
        _form(r"input_userauth_request: invalid user (?P<user>.*)"),  # before OpenSSH 7.x
    ), "input_userauth_request: invalid user admin [preauth]"),
    Template("pam-account-denied", False, (
        _form(r"Access denied for user (?P<user>.*) by PAM account configuration"),
    ), "Access denied for user root by PAM account configuration [preauth]"),
    Template("pam-unix-session", False, (
        _form(r"pam_unix\(sshd:session\): session (?:opened|closed) for user (?P<user>[^\s(]+)(?:\(uid=[0-9]+\))?(?: by .*)?"),
    ), "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)"),
    Template("server-listening", False, (
        _form(r"Server listening on \S+ port [0-9]+(?: rdomain \S+)?\."),
    ), "Server listening on 0.0.0.0 port 22."),
    Template("received-signal", False, (
        _form(r"Received signal [0-9]+; terminating\."),
        _form(r"Received SIGHUP; restarting\."),
    ), "Received signal 15; terminating."),
)

_REPEATED = re.compile(r"message repeated ([1-9][0-9]{0,8}) times: \[ ?(.*)\]", re.ASCII)  # rsyslog


def _build_dispatch() -> Dict[str, Tuple[Tuple[Template, Form], ...]]:
    """First word of a body -> the (template, form) pairs that can match it, in table order.

    Templates never overlap (each sample and generated message matches at most one, see
    tests/test_sshd_templates.py), so the first form that matches is the only one.
    """
    table: Dict[str, List[Tuple[Template, Form]]] = {}
    for template in TEMPLATES:
        for form in template.forms:
            table.setdefault(form.key, []).append((template, form))
    return {key: tuple(pairs) for key, pairs in table.items()}


def _check_examples() -> None:
    """Fail the import when a template's example is not read as that template."""
    for template in TEMPLATES:
        reading = read_sshd_message(template.example)
        if reading is None or reading.template != template.name:
            raise ValueError(f"template {template.name}: its example reads as {reading}")


Reading = Tuple[str, str]  # one way to split a body: (address slot as written, username)


def each_reading(form: Form, body: str) -> Iterator[Reading]:
    """Every way ``body`` reads as ``form``: one split per occurrence of the marker.

    Runtime: O(n) for a body of n characters, each split costing its fixed text only (_form).
    """
    head, tail, marker = form.head, form.tail, form.marker
    assert head is not None and tail is not None
    addr_in_head, user_in_head = "addr" in head.groupindex, "user" in head.groupindex
    position = body.find(marker)
    while position >= 0:
        before = head.fullmatch(body, 0, position)
        if before is not None:
            after = tail.fullmatch(body, position)
            if after is not None:
                slot = (before if addr_in_head else after)["addr"] if form.has_addr else ""
                user = (before if user_in_head else after)["user"] if form.has_user else ""
                yield slot or "", user or ""
        position = body.find(marker, position + 1)


def _resolve(readings: Iterator[Reading]) -> Tuple[int, str, str, bool]:
    """(readings seen, address, user, ambiguous) over the readings of one message.

    The message is ambiguous as soon as two readings put different text in the address slot,
    whatever that text is: sshd writes ``UNKNOWN`` there off a socket, and an attacker's
    reading must not win because the real one holds no address. A field is reported only
    when every reading agrees on it.
    """
    seen, slot, user, users_agree = 0, "", "", True
    for this_slot, this_user in readings:
        if not seen:
            slot, user = this_slot, this_user
        elif this_slot != slot and (canonical_ip(this_slot) or this_slot) != (canonical_ip(slot) or slot):
            return seen + 1, "", "", True
        else:
            users_agree = users_agree and this_user == user
        seen += 1
    return seen, canonical_ip(slot) or "", user if users_agree else "", False


def read_sshd_message(message: str) -> Optional[SshdMessage]:
    """Read an sshd message body by template; None when it is not one of TEMPLATES.

    ``counts`` is True only for a counted template, without " [preauth]", whose slot holds an
    IP address and which has a single reading. Runtime: a partition, a dict lookup and
    (usually) one anchored regex; O(n) in all cases.

    >>> read_sshd_message("Failed password for root from 2001:DB8::7 port 22 ssh2")
    SshdMessage(template='failed-auth', counts=True, address='2001:db8::7', user='root', repeat=1, ambiguous=False)
    """
    if len(message) > MAX_MESSAGE_LENGTH or "\n" in message:  # sshd escapes newlines (strnvis)
        return None
    message = message.rstrip()  # sshd writes none; copies, CRLF files and pam_unix may add some
    first, _, rest = message.partition(" ")
    repeat = 1
    if first == "message":
        wrapped = _REPEATED.fullmatch(message)
        if wrapped is None:
            return None
        repeat, message = int(wrapped.group(1)), wrapped.group(2).rstrip()
        first, _, rest = message.partition(" ")
    if first in LEVELS:
        message = rest
        first = message.partition(" ")[0]
    preauth = message.endswith(PREAUTH)
    if preauth:
        message = message[: -len(PREAUTH)]
    for template, form in _DISPATCH.get(first, ()):
        if form.tail_opaque and message.count(form.marker) > 1:
            found, address, user, ambiguous = _resolve(each_reading(form, message))
            if not found:
                continue
        else:
            matched = form.whole.fullmatch(message)
            if matched is None:
                continue
            slot = matched["addr"] if form.has_addr else None
            address = (canonical_ip(slot) or "") if slot else ""
            user = (matched["user"] or "") if form.has_user else ""
            ambiguous = False
        counts = template.counts and not preauth and not ambiguous and address != ""
        return SshdMessage._make((template.name, counts, address, user, repeat, ambiguous))
    return None


def block_pattern(form: Form, suffix: str) -> str:
    """``form``'s whole regex as one alternative of a regex over many lines (the block
    scanner's, which reads the syslog header in the same match): its groups renamed
    ``user<suffix>`` / ``addr<suffix>``, and its ASCII-only ``\\S`` spelt out, since the block
    regex is not compiled ASCII-only (the syslog header regexes are not)."""
    pattern = form.whole.pattern.replace("(?P<user>", f"(?P<user{suffix}>").replace("(?P<addr>", f"(?P<addr{suffix}>")
    return pattern.replace("\\S", "[^ \\t\\n\\r\\f\\v]")


_DISPATCH = _build_dispatch()
# The first words of the counted templates: a line holding none of them is no counted failure
# (a "message repeated" line holds its message's). The reader uses them to skip lines unparsed.
COUNTED_WORDS: Tuple[str, ...] = tuple(sorted({form.key for template in TEMPLATES if template.counts
                                                for form in template.forms}))
# Counted forms with one reading (no client text after the slot), in table order: the block
# scanner reads these together with the syslog header, in one match.
FAST_FORMS: Tuple[Tuple[Template, Form], ...] = tuple(
    (template, form) for template in TEMPLATES if template.counts for form in template.forms
    if form.has_addr and not form.tail_opaque)
_check_examples()
