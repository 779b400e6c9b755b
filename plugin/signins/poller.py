"""The poller thread: every --poll-interval it asks Microsoft Graph for the new sign-ins of each
polled log, follows @odata.nextLink to the last page, and queues each page, decoded, for the
main thread, which alone touches the engine (and is woken through a pipe, so a sign-in never
waits for host log traffic). Throttling (429) and unavailability (503, 504) wait as long as
Retry-After says; other failures back off from 1 s to 5 min. Every failure is counted by kind
and logged, rate-limited."""

import queue
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ..logs import LOG, RateLimitedLog
from .cursors import signin_key, signin_time
from .graph import ERROR_KINDS, GraphClient, GraphError

FIRST_BACK_OFF = 1.0
LONGEST_BACK_OFF = 300.0
HAND_WAIT = 0.5  # how often a poller blocked on a full queue looks whether it should stop


class Batch(NamedTuple):
    """One page of a table's sign-ins, with what the main thread needs to de-duplicate them
    and to move the cursor."""

    table: str
    items: List[Tuple[str, Optional[float], Any]]  # (de-duplication key, createdDateTime, decoded item)
    last: bool  # the poll's last page: once it is handed, the cursor may move
    poll_newest: Optional[float]  # the newest createdDateTime of the poll so far: on the last page, of it all


class PollFigures:
    """What the poller thread counts, for the main thread's health figures."""

    def __init__(self, tables: Sequence[str]) -> None:
        self._lock = threading.Lock()
        self._polls = {table: 0 for table in tables}
        self._last_poll: Dict[str, Optional[float]] = {table: None for table in tables}
        self._errors = {kind: 0 for kind in ERROR_KINDS}

    def polled(self, table: str) -> None:
        with self._lock:
            self._polls[table] += 1
            self._last_poll[table] = time.monotonic()

    def failed(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1

    def read(self) -> Tuple[Dict[str, int], Dict[str, Optional[float]], Dict[str, int]]:
        """Complete polls per table, seconds since each table's last one, errors per kind."""
        with self._lock:
            now = time.monotonic()
            ages = {table: None if when is None else round(now - when, 3) for table, when in self._last_poll.items()}
            return dict(self._polls), ages, dict(self._errors)


class Poller(threading.Thread):
    """Polls each table on its own schedule, so a log that keeps failing (the beta list in a
    cloud that lacks it) does not hold back the other."""

    def __init__(self, client: GraphClient, tables: Sequence[str], query_start: Callable[[str], float],
                 interval: float, batches: "queue.Queue[Batch]", figures: PollFigures) -> None:
        super().__init__(name="fail2entra-signins", daemon=True)
        self.wake: Callable[[], None] = lambda: None  # tells the main thread a batch is waiting
        self._client = client
        self._tables = tables
        self._query_start = query_start
        self._interval = interval
        self._batches = batches
        self._figures = figures
        self._stopping = threading.Event()
        self._notices = RateLimitedLog()  # this thread's own: RateLimitedLog is not thread-safe

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        due = {table: 0.0 for table in self._tables}  # monotonic times
        failures = {table: 0 for table in self._tables}
        while True:
            table = min(due, key=due.__getitem__)
            if self._stopping.wait(max(0.0, due[table] - time.monotonic())):
                return
            started = time.monotonic()
            try:
                self._poll(table)
            except Exception as error:  # noqa: BLE001 - a bug must not end the polling unseen
                kind = error.kind if isinstance(error, GraphError) else "unexpected"
                retry_after = error.retry_after if isinstance(error, GraphError) else None
                delay = retry_after if retry_after is not None else \
                    min(LONGEST_BACK_OFF, FIRST_BACK_OFF * 2 ** min(failures[table], 16))
                failures[table] += 1
                self._figures.failed(kind)
                what = str(error) if kind != "unexpected" else f"{type(error).__name__}: {error}"
                self._notices.warning(f"graph-{kind}", f"Graph sign-ins ({table}): {kind}: {what}; "
                                                       f"next try in {delay:g} s")
                due[table] = time.monotonic() + delay
            else:
                if failures[table]:
                    LOG.info("Graph sign-ins (%s): polled again after %d failed attempts", table, failures[table])
                failures[table] = 0
                due[table] = started + self._interval

    def _poll(self, table: str) -> None:
        """One poll, each page queued as it comes; GraphError ends it where it failed."""
        for batch in poll_batches(self._client, table, self._query_start(table)):
            if not self._hand(batch):
                return
        self._figures.polled(table)

    def _hand(self, batch: Batch) -> bool:
        """Queue ``batch`` (waiting while the queue is full); False when stopping first."""
        while not self._stopping.is_set():
            try:
                self._batches.put(batch, timeout=HAND_WAIT)
            except queue.Full:
                continue
            self.wake()
            return True
        return False


def poll_batches(client: GraphClient, table: str, since: float) -> Iterator[Batch]:
    """The pages of one poll of ``table`` from ``since`` on, as batches, newest first (as
    Graph lists them); the last carries the poll's newest createdDateTime. GraphError when a
    page cannot be had."""
    url: Optional[str] = client.first_url(table, since)
    newest: Optional[float] = None
    while url is not None:
        page = client.page(url)
        items = []
        for item in page.items:
            when = signin_time(item)
            items.append((signin_key(item), when, item))
            if when is not None and (newest is None or when > newest):
                newest = when
        url = page.next_link
        if items or url is None:  # Graph may send empty pages before the last
            yield Batch(table, items, url is None, newest)
