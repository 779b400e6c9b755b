"""Where the sign-in poller stands in each sign-in log, so that overlapping polls, late sign-ins
and restarts neither miss nor repeat a sign-in.

Microsoft Graph lists sign-ins newest first, a page at a time, and Entra ID delivers some of
them minutes late. Each poll therefore asks for ``createdDateTime ge floor``, the floor being
``cursor - overlap``, and the cursor the newest createdDateTime of the last poll whose pages
were ALL handed to the engine. A poll cut short (an error, a crash, a restart) leaves the
cursor where it was: moving it after the first, newest page would lose the older pages behind
it. Every sign-in handed since the floor is remembered by id, so the overlap and a poll that is
started again hand nothing twice; an id older than the floor cannot come back (no later query
reaches below the floor, and what a query already under way brings from below it was handed
before) and is forgotten. The cursor and the ids live in the state snapshot beside the engine
state they produced, so a restart resumes exactly there.

Owned by the main thread; the poller thread only calls :meth:`SigninCursors.query_start`.
"""

import hashlib
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import msgspec

from parsers.timestamps import parse_iso8601

# Ids remembered per table: the sign-ins of one overlap (30 min by default) of a busy tenant,
# at about 200 bytes each (20 MB). Past it the oldest are forgotten (and counted): one of them
# seen again would be handed again, which AlertId and suppression make harmless; a cap that
# dropped sign-ins instead would miss them.
MAX_REMEMBERED = 100_000


def signin_key(item: Any) -> str:
    """What tells two copies of a sign-in apart from two sign-ins: Graph's ``id``, or for an
    item without one, a digest of the item itself."""
    record_id = item.get("id") if isinstance(item, dict) else None
    if isinstance(record_id, str) and record_id:
        return record_id
    return "sha256:" + hashlib.sha256(msgspec.json.encode(item)).hexdigest()


def signin_time(item: Any) -> Optional[float]:
    """An item's createdDateTime in seconds, or None when it has no readable one."""
    created = item.get("createdDateTime") if isinstance(item, dict) else None
    return parse_iso8601(created) if isinstance(created, str) else None


class SigninCursors:
    """The cursor and the remembered ids of each polled table, and the counts that come with
    them (sign-ins handed, copies skipped, newest createdDateTime handed)."""

    def __init__(self, tables: Sequence[str], overlap: float, look_back: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._overlap = overlap
        self._look_back = look_back
        self._clock = clock
        self._cursors: Dict[str, Optional[float]] = {table: None for table in tables}
        self._seen: Dict[str, Dict[str, float]] = {table: {} for table in tables}
        self.received = {table: 0 for table in tables}
        self.duplicates = {table: 0 for table in tables}
        self.newest: Dict[str, Optional[float]] = {table: None for table in tables}
        self.forgotten = 0
        self.changes = 0  # moves when what a snapshot holds changes

    def floor(self, table: str) -> Optional[float]:
        """Below this createdDateTime a sign-in is behind the poller (None: no poll done yet)."""
        cursor = self._cursors[table]
        return None if cursor is None else cursor - self._overlap

    def query_start(self, table: str) -> float:
        """Where the next poll of ``table`` starts reading: the floor, or, before the first
        complete poll, ``look_back`` before now."""
        floor = self.floor(table)
        return self._clock() - self._look_back if floor is None else floor

    def admit(self, table: str, key: str, when: Optional[float]) -> bool:
        """Whether a fetched sign-in is new; a new one is remembered as handed (the caller hands
        it to the engine before the next snapshot can be taken)."""
        seen = self._seen[table]
        floor = self.floor(table)
        if key in seen or (floor is not None and when is not None and when < floor):
            self.duplicates[table] += 1
            return False
        seen[key] = self._clock() if when is None else when
        self.received[table] += 1
        self.changes += 1
        if when is not None and (self.newest[table] is None or when > self.newest[table]):
            self.newest[table] = when
        if len(seen) > MAX_REMEMBERED:
            self._keep_newest(table, MAX_REMEMBERED * 9 // 10)
        return True

    def take(self, batch: Any) -> Iterator[Any]:
        """The new sign-ins of a fetched page (a poller Batch), each remembered as it is
        handed out; after the last page of a poll, the cursor moves."""
        for key, when, item in batch.items:
            if self.admit(batch.table, key, when):
                yield item
        if batch.last:
            self.poll_completed(batch.table, batch.poll_newest)

    def poll_completed(self, table: str, newest: Optional[float]) -> None:
        """Every page of a poll was handed: the cursor moves to its newest createdDateTime (never
        past now, so one sign-in stamped in the future cannot blind the poller) and the ids
        below the new floor are forgotten."""
        if newest is None:
            return
        cursor = self._cursors[table]
        self._cursors[table] = max(min(newest, self._clock()), cursor if cursor is not None else float("-inf"))
        floor = self.floor(table)
        seen = self._seen[table]
        for key in [key for key, when in seen.items() if when < floor]:
            del seen[key]
        self.changes += 1

    def _keep_newest(self, table: str, count: int) -> None:
        seen = self._seen[table]
        oldest_first = sorted(seen.items(), key=lambda pair: pair[1])
        self.forgotten += len(oldest_first) - count
        self._seen[table] = dict(oldest_first[-count:])

    def remembered(self) -> int:
        return sum(len(seen) for seen in self._seen.values())

    # -- the state snapshot (plugin/state.py) -------------------------------------------------

    def cursor_rows(self) -> List[list]:
        return [[table, cursor] for table, cursor in self._cursors.items()]

    def id_count(self) -> int:
        return self.remembered()

    def id_rows(self) -> Iterator[list]:
        for table, seen in self._seen.items():
            for key, when in seen.items():
                yield [table, key, when]

    def restore(self, cursor_rows: List[Any], id_rows: List[Any]) -> None:
        """Take the place saved by a snapshot; rows of tables not polled now, or of no
        sensible shape, are left out."""
        for row in cursor_rows:
            if _row_fits(row, 2) and row[0] in self._cursors and isinstance(row[1], (int, float)):
                self._cursors[row[0]] = self.newest[row[0]] = float(row[1])
        for row in id_rows:
            if _row_fits(row, 3) and row[0] in self._seen and isinstance(row[1], str) \
                    and isinstance(row[2], (int, float)):
                self._seen[row[0]][row[1]] = float(row[2])
        for table in self._seen:
            floor = self.floor(table)
            if floor is not None:
                self._seen[table] = {key: when for key, when in self._seen[table].items() if when >= floor}


def _row_fits(row: Any, size: int) -> bool:
    return isinstance(row, list) and len(row) == size and isinstance(row[0], str)
