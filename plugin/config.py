"""Settings: one table of options, read from the TOML config and overridden by the command line.

Every option has one entry in :data:`OPTIONS` (name, kind, default, help); the command line,
the config file and ``conf/fail2entra.toml`` all follow it, so they cannot drift apart.
"""

import re
import sys
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from .tiers.shards import Shard, parse_shard

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9 / 3.10
    import tomli as tomllib

from parsers.event import SIGNIN_TABLES


class ConfigError(ValueError):
    """A bad option or config value; the CLI prints it on one line and exits with status 2."""


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: Any) -> float:
    """``30s``, ``5m``, ``1h``, ``1d``, ``0`` or a number of seconds, to seconds.

    >>> parse_duration("1d"), parse_duration("90s"), parse_duration(0)
    (86400.0, 90.0, 0.0)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool) and text >= 0:
        return float(text)
    match = _DURATION.fullmatch(str(text).strip())
    if match is None:
        raise ConfigError(f"{text!r} is not a duration (like 30s, 5m, 1h, 1d or 0)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _count(text: Any) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{text!r} is not a whole number") from None
    if value < 0 or isinstance(text, bool):
        raise ConfigError(f"{text!r} must be a whole number of 0 or more")
    return value


def _positive_count(text: Any) -> int:
    value = _count(text)
    if value == 0:
        raise ConfigError(f"{text!r} must be 1 or more")
    return value


def _positive_duration(text: Any) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ConfigError(f"{text!r} must be longer than 0")
    return value


def _text(text: Any) -> str:
    if not isinstance(text, str):
        raise ConfigError(f"{text!r} is not a string")
    return text


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{value!r} is not true or false")
    return value


def _duration_or_empty(text: Any) -> Any:
    """A duration, or ``""`` for "the default" (which the caller works out)."""
    return "" if text == "" else parse_duration(text)


def _https_url(text: Any) -> str:
    """An ``https://`` URL without its trailing slash (tokens never travel in clear text)."""
    url = _text(text).rstrip("/")
    if not re.fullmatch(r"https://[^/\s?#]+(/[^\s?#]*)?", url):
        raise ConfigError(f"{text!r} is not an https:// URL")
    return url


def _names(*allowed: str) -> Callable[[Any], tuple]:
    """A comma-separated selection from ``allowed``, at least one."""
    def check(value: Any) -> tuple:
        names = tuple(name.strip() for name in _text(value).split(","))
        if any(name not in allowed for name in names):
            raise ConfigError(f"{value!r}: give one or more of {', '.join(allowed)}, separated by commas")
        return tuple(dict.fromkeys(names))
    return check


def _choice(*allowed: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in allowed:
            raise ConfigError(f"{value!r} is not one of {', '.join(allowed)}")
        return value
    check.choices = allowed  # type: ignore[attr-defined]
    return check


def _shard(text: Any) -> Optional[Shard]:
    try:
        return parse_shard(_text(text))
    except ValueError as error:
        raise ConfigError(str(error)) from None


class Option(NamedTuple):
    """One setting: its name (``--max-ips`` on the command line, ``max_ips`` in the config)."""

    name: str
    convert: Callable[[Any], Any]
    default: Any
    help: str
    metavar: Optional[str] = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: Sequence[Option] = (
    Option("profile", _choice("hardened", "kql"), "hardened",
           "what counts: 'hardened' (default) or 'kql', the Sentinel rule exactly"),
    Option("threshold", _count, 5, "alert when an IP has MORE than N failures in one source", "N"),
    Option("window", _positive_duration, "1d", "failures within this time before or after a sign-in count", "DURATION"),
    Option("suppress", parse_duration, "1h", "at most one alert per (IP, UPN) per period; 0 = every matching sign-in", "DURATION"),
    Option("future_skew", parse_duration, "10m", "event times further ahead of the wall clock do not move the engine's clock", "DURATION"),
    Option("input", _choice("auto", "json", "msgpack"), "auto",
           "auto: each line recognised by itself; json: one JSON object per line; msgpack: Fluentd exec_filter stream"),
    Option("facility", _text, "auth", "facility of syslog lines without <PRI>", "NAME"),
    Option("timezone", _text, "local", "zone of RFC 3164 timestamps (local, UTC, +02:00, Europe/Paris)", "ZONE"),
    Option("time_key", _text, "time", "record key holding the event time injected by Fluentd's <inject>", "KEY"),
    Option("tag_key", _text, "tag", "record key holding the tag injected by Fluentd's <inject> (named in notices about bad records)", "KEY"),
    Option("output", _choice("json", "msgpack"), "json", "what stdout carries: JSON lines or a msgpack stream"),
    Option("record_tag_key", _text, "", "put each record's tag in this key (for Fluentd's <extract> tag_key)", "KEY"),
    Option("tag", _text, "security.alert.fail2entra", "tag of alert records", "TAG"),
    Option("stats_tag", _text, "security.stats.fail2entra", "tag of health records", "TAG"),
    Option("forward", _text, "", "send alerts to a Fluentd / Fluent Bit forward input (HOST:PORT or unix:///path)", "ADDRESS"),
    Option("spool", _text, "", "file keeping alerts until the forward receiver acknowledges them", "PATH"),
    Option("spool_max_bytes", _positive_count, 64 * 1024 * 1024, "size bound of the spool", "BYTES"),
    Option("log_file", _text, "", "diagnostics to this file, or 'syslog' (default: stderr)", "PATH"),
    Option("stats", _flag, False, "print the health figures on stderr at exit"),
    Option("stats_interval", parse_duration, "0", "emit health figures every DURATION (record on the stats tag, or the log); 0 = off", "DURATION"),
    Option("explain", _flag, False, "show, for each input line, how it was read and whether it counts"),
    Option("state", _text, "", "snapshot file: the engine's state survives restarts", "PATH"),
    Option("snapshot_interval", _positive_duration, "10s", "how often the state snapshot is written", "DURATION"),
    Option("max_ips", _positive_count, 1_000_000, "cap on tracked IPs over all sources; the least important are evicted", "N"),
    Option("max_signins", _positive_count, 100_000, "cap on successes retained while waiting for late failures", "N"),
    Option("max_record_bytes", _positive_count, 1024 * 1024, "longer lines or records are skipped and reported", "BYTES"),
    # sign-ins fetched by fail2entra itself (docs/signins.md); the client secret is never an
    # option value: it comes from --client-secret-file or FAIL2ENTRA_CLIENT_SECRET
    Option("signins", _choice("none", "graph"), "none",
           "none: sign-ins come with the input; graph: also poll them from Microsoft Graph"),
    Option("signin_tables", _names(*SIGNIN_TABLES), ",".join(SIGNIN_TABLES),
           "which sign-in logs to poll, separated by commas", "TABLES"),
    Option("poll_interval", _positive_duration, "60s", "how often Microsoft Graph is asked for new sign-ins", "DURATION"),
    Option("signins_overlap", parse_duration, "30m",
           "each poll re-reads this far back before the newest sign-in seen (Entra ID delivers sign-ins late)", "DURATION"),
    Option("signins_since", _duration_or_empty, "",
           "how far back the first poll reads (empty: --window)", "DURATION"),
    Option("tenant_id", _text, "", "Entra ID tenant (directory) id or domain", "TENANT"),
    Option("client_id", _text, "", "application (client) id of the app registration", "ID"),
    Option("client_secret_file", _text, "",
           "file holding the app's client secret (or set FAIL2ENTRA_CLIENT_SECRET)", "PATH"),
    Option("client_certificate", _text, "",
           "PEM file with the app's certificate and its unencrypted private key, instead of a secret", "PATH"),
    Option("graph_url", _https_url, "https://graph.microsoft.com", "Microsoft Graph root (national clouds)", "URL"),
    Option("login_url", _https_url, "https://login.microsoftonline.com", "Entra ID token service root (national clouds)", "URL"),
    Option("ca_file", _text, "", "extra trusted CA certificates (PEM) for Graph and the token service", "PATH"),
    # two tiers (docs/edge.md)
    Option("edge", _flag, False, "edge collector: emit failure summaries for a central instead of alerts"),
    Option("edge_name", _text, "", "the edge's name in its summaries (default: this host's name)", "NAME"),
    Option("flush_interval", _positive_duration, "1s", "an edge emits what it summarised at least this often", "DURATION"),
    Option("summary_tag", _text, "security.summary.fail2entra", "tag of an edge's summary records (.shard.K appended with --shards)", "TAG"),
    Option("shards", _positive_count, 1, "an edge splits its summaries among N shards by IP (tag suffix .shard.K)", "N"),
    Option("shard", _shard, "", "a central owns shard K of N: the IPs whose hash is K modulo N", "K/N"),
    Option("accept_summaries", _flag, False, "a central merges edge summaries (from a trusted path only)"),
    Option("forward_tls", _flag, False, "--forward over TLS (the server's certificate is checked)"),
    Option("forward_ca_file", _text, "", "CA certificates for --forward-tls (default: the system's)", "PATH"),
    Option("forward_cert_file", _text, "", "client certificate for --forward-tls (with --forward-key-file)", "PATH"),
    Option("forward_key_file", _text, "", "private key of the client certificate", "PATH"),
    Option("forward_shared_key_file", _text, "", "file holding the forward shared key (<security> shared_key)", "PATH"),
    Option("forward_username", _text, "", "user for the forward handshake (<security> user_auth)", "NAME"),
    Option("forward_password_file", _text, "", "file holding that user's password", "PATH"),
    Option("forward_compress", _choice("none", "gzip"), "none", "compress forwarded chunks (gzip: CompressedPackedForward)"),
)
OPTIONS_BY_NAME: Dict[str, Option] = {option.name: option for option in OPTIONS}
CONFIG_ONLY_KEYS = ("exclusion",)


class Config:
    """The resolved settings: attribute per option, plus ``exclusion`` entries from the file."""

    def __init__(self, values: Dict[str, Any], exclusions: List[dict]) -> None:
        self.__dict__.update(values)
        self.exclusion = exclusions


def read_config_file(path: str) -> Dict[str, Any]:
    """The TOML file's table, with unknown keys refused (a typo must not be silently ignored)."""
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path}: {error}") from None
    unknown = sorted(set(table) - set(OPTIONS_BY_NAME) - set(CONFIG_ONLY_KEYS))
    if unknown:
        raise ConfigError(f"config {path}: unknown key {unknown[0]!r}")
    return table


def resolve(file_values: Dict[str, Any], command_line: Dict[str, Any]) -> Config:
    """Defaults, then the config file, then the command line; every value checked."""
    values = {}
    for option in OPTIONS:
        raw = command_line.get(option.name)
        where = option.flag
        if raw is None:
            raw, where = file_values.get(option.name, option.default), f"config key {option.name!r}"
        try:
            values[option.name] = option.convert(raw)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    exclusions = file_values.get("exclusion", [])
    if not isinstance(exclusions, list):
        raise ConfigError("config key 'exclusion' must be a list of tables ([[exclusion]])")
    return Config(values, exclusions)
