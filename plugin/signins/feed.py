"""The main thread's side of the poller: starts and stops it, takes the pages it queued (only
sign-ins not handed before; the caller feeds each to the reader), and reports the health
figures."""

import queue
import time
from typing import Any, Callable, Dict, Iterator, Tuple

from ..config import Config
from ..logs import LOG
from .credentials import load_credential
from .cursors import SigninCursors
from .graph import GraphClient
from .poller import Batch, PollFigures, Poller

# Pages waiting for the main thread. A page of 1,000 decoded sign-ins takes some megabytes; a
# full queue makes the poller wait, not grow.
QUEUED_PAGES = 4


class GraphSignins:
    """Sign-ins polled from Microsoft Graph (``--signins graph``). ConfigError at construction
    when the app registration's settings are missing or unreadable."""

    def __init__(self, config: Config) -> None:
        credential = load_credential(config)
        self.tables = config.signin_tables
        self.cursors = SigninCursors(self.tables, config.signins_overlap,
                                     config.window if config.signins_since == "" else config.signins_since)
        client = GraphClient(config.graph_url, config.login_url, config.tenant_id, config.client_id,
                             credential, config.ca_file)
        self._batches: "queue.Queue[Batch]" = queue.Queue(maxsize=QUEUED_PAGES)
        self._figures = PollFigures(self.tables)
        self._poller = Poller(client, self.tables, self.cursors.query_start, config.poll_interval,
                              self._batches, self._figures)
        self._interval = config.poll_interval
        self._handed = 0

    def start(self, wake: Callable[[], None]) -> None:
        """Start polling; ``wake`` is called (from the poller thread) when a page is waiting."""
        self._poller.wake = wake
        self._poller.start()
        LOG.info("polling Microsoft Graph for %s every %g s", ", ".join(self.tables), self._interval)

    def stop(self) -> None:
        """Stop polling. Pages still queued are dropped: their cursor has not moved, so the
        next run (with --state) fetches them again."""
        self._poller.stop()

    @property
    def waiting(self) -> bool:
        return not self._batches.empty()

    def new_signins(self) -> Iterator[Tuple[int, Any]]:
        """The queued sign-ins not handed before, each with its number (for notices); the
        caller hands each to the engine before asking for the next. A table's cursor moves
        once the last page of a poll is through."""
        while True:
            try:
                batch = self._batches.get_nowait()
            except queue.Empty:
                return
            for item in self.cursors.take(batch):
                self._handed += 1
                yield self._handed, item

    @property
    def changes(self) -> int:
        return self.cursors.changes

    def figures(self) -> Dict[str, Any]:
        """The health figures of the poller: polls, sign-ins handed and skipped as copies,
        how far behind the newest createdDateTime handed is, errors by kind."""
        polls, last_poll_ages, errors = self._figures.read()
        cursors = self.cursors
        now = time.time()
        return {
            "signin_polls": polls,
            "signin_poll_age_seconds": last_poll_ages,
            "signins_received": dict(cursors.received),
            "signins_duplicate": dict(cursors.duplicates),
            "signin_lag_seconds": {table: None if newest is None else round(now - newest, 3)
                                   for table, newest in cursors.newest.items()},
            "signin_errors": errors,
            "signin_ids_remembered": cursors.remembered(),
            "signin_ids_forgotten": cursors.forgotten,
        }
