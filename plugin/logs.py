"""Diagnostics: to stderr, a log file or syslog (exec_filter discards the child's stderr),
never to stdout, with repeated notices rate-limited so a flood of bad input cannot flood the log."""

import logging
import logging.handlers
import sys
import time
from typing import Dict, Optional

from .encodable import encodable

LOG = logging.getLogger("fail2entra")


class EncodableText(logging.Filter):
    """Notices quote input, which may hold a lone surrogate: the syslog handler encodes to
    UTF-8 strictly and would drop the notice with a "Logging error" traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = encodable(message)
        if safe is not message:
            record.msg, record.args = safe, None
        return True


def configure_logging(target: Optional[str]) -> None:
    """Send diagnostics to ``target``: None for stderr, ``syslog`` for the local syslog socket,
    anything else is a file path (opened for append)."""
    if target == "syslog":
        address = "/dev/log" if sys.platform.startswith("linux") else ("localhost", 514)
        handler: logging.Handler = logging.handlers.SysLogHandler(address=address)
        handler.setFormatter(logging.Formatter("fail2entra[%(process)d]: %(levelname)s %(message)s"))
    elif target:
        handler = logging.FileHandler(target, encoding="utf-8", errors="backslashreplace")
        handler.setFormatter(logging.Formatter("%(asctime)s fail2entra[%(process)d] %(levelname)s %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("fail2entra: %(levelname)s: %(message)s"))
    handler.addFilter(EncodableText())
    LOG.handlers[:] = [handler]
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


class RateLimitedLog:
    """Logs the first ``burst`` notices of each category, then one summary per ``period``."""

    def __init__(self, burst: int = 10, period: float = 60.0, clock=time.monotonic) -> None:
        self._burst = burst
        self._period = period
        self._clock = clock
        self._seen: Dict[str, int] = {}
        self._held: Dict[str, int] = {}
        self._last_summary: Dict[str, float] = {}

    def warning(self, category: str, message: str) -> None:
        seen = self._seen[category] = self._seen.get(category, 0) + 1
        if seen <= self._burst:
            LOG.warning("%s", message)
            if seen == self._burst:
                LOG.warning("%s: further notices of this kind are summarised once a minute", category)
            return
        self._held[category] = self._held.get(category, 0) + 1
        now = self._clock()
        if now - self._last_summary.get(category, 0.0) >= self._period:
            self._last_summary[category] = now
            LOG.warning("%s: %d more since the last notice (latest: %s)", category, self._held.pop(category), message)

    def flush(self) -> None:
        """Say how many notices were held back (at exit)."""
        for category, held in self._held.items():
            LOG.warning("%s: %d more not shown", category, held)
        self._held.clear()
