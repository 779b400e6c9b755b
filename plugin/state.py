"""Durable state: a versioned msgpack snapshot of everything the engine needs, so that a
restart (Fluentd respawns its exec_filter child on every reload and crash; edge hosts reboot)
forgets nothing of a one-day window.

The file is a stream of msgpack objects, written and read one object at a time so that a
million-IP snapshot never exists twice in memory:

    {"format": "fail2entra-state", "version": 1, "profile", "bucket_seconds", "newest", "next_expiry", "written"}
    ["counter", source, n_tallies, n_buckets]  then n_tallies × [ip, total, first, last, hosts, users]
                                               then n_buckets × [bucket number, [ip, count, ...]]
    ... one "counter" section per failure source ...
    ["retained", n]    then n × [list key, sign-in Event as a list]
    ["suppression", n] then n × [ip, upn, sign-in time]
    ["signin-cursors", n] then n × [table, cursor]       (version 2: the Graph poller's place,
    ["signin-ids", n]     then n × [table, id, time]      plugin/signins/cursors.py)
    ["end", objects written before it]

A version 1 snapshot (before the sign-in sections) is read as one without a poller's place.

It is written atomically (temporary file, fsync, rename, fsync of the directory), so a kill -9
at any point leaves the previous snapshot or the new one, never a torn file, and one process
at a time holds it (a lock beside it), so two runs cannot overwrite each other's snapshots. A file that cannot
be read (truncated, corrupt, another version or profile) is moved aside with a loud warning and
the run starts empty; it never stops the process.
"""

import os
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import msgpack

from parsers.event import FAILURE_TABLES, Event

from .counter import FailureCounter
from .engine import Engine
from .files import lock_beside, replace_atomically
from .logs import LOG

FORMAT = "fail2entra-state"
LOCK_WAIT_SECONDS = 10.0  # a respawned child waits this long for the old one to let go
VERSION = 2
READABLE_VERSIONS = (1, VERSION)
_READ_SIZE = 1024 * 1024


class SnapshotError(ValueError):
    """The snapshot cannot be used; the message says why (shown in the warning)."""


class StateFile:
    """Loads the engine's state at start and saves it periodically and at exit.

    ``save`` never raises: a failure (disk full, no permission) is logged and counted, and the
    run goes on with the previous snapshot in place.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:  # one process per state file, for its life (FileInUseError goes to the caller)
            self._lock: Optional[int] = lock_beside(path, "state snapshot", wait=LOCK_WAIT_SECONDS)
        except OSError as error:  # the directory cannot be written: saving will fail and say so
            LOG.error("cannot lock the state snapshot %s: %s", path, error.strerror or error)
            self._lock = None
        self.saved_at: Optional[float] = None  # wall time of the last good save (or load)
        self.last_save_seconds = 0.0
        self.last_size = 0
        self.failures = 0

    # -- save ------------------------------------------------------------------------------

    def save(self, engine: Engine, signins: Optional[Any] = None) -> None:
        """Write the engine's state, and the sign-in poller's place when ``signins`` is given
        (an object with ``cursor_rows()``, ``id_count()`` and ``id_rows()``)."""
        started = time.monotonic()
        try:
            self.last_size = replace_atomically(self.path, lambda handle: handle.writelines(_encoded(engine, signins)))
        except OSError as error:
            self.failures += 1
            LOG.error("cannot write the state snapshot %s: %s (the previous snapshot stays in place)",
                      self.path, error.strerror or error)
            return
        self.saved_at = time.time()
        self.last_save_seconds = time.monotonic() - started

    # -- load ------------------------------------------------------------------------------

    def load(self, engine: Engine, signins: Optional[Any] = None) -> None:
        """Read the snapshot into ``engine`` (and the poller's place into ``signins``, an object
        with ``restore(cursor_rows, id_rows)``). A missing file is a first start; an unusable
        one is moved aside and both stay empty."""
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            LOG.info("no state snapshot at %s yet: starting empty", self.path)
            return
        except OSError as error:
            LOG.error("cannot read the state snapshot %s: %s; starting empty", self.path, error.strerror)
            return
        try:
            with handle:
                newest, next_expiry, counters, retained, suppression, cursors, ids = _decode(handle, engine)
        except (SnapshotError, ValueError, TypeError, KeyError, IndexError, msgpack.UnpackException) as error:
            aside = f"{self.path}.unusable-{time.strftime('%Y%m%dT%H%M%S')}"
            try:
                os.replace(self.path, aside)
                where = f"moved aside to {aside}"
            except OSError as move_error:
                where = f"could not be moved aside ({move_error.strerror})"
            LOG.warning("STATE SNAPSHOT %s IS UNUSABLE (%s): %s; starting with EMPTY state",
                        self.path, error, where)
            return
        engine.restore(newest, next_expiry, counters, retained, suppression)
        if signins is not None:
            signins.restore(cursors, ids)
        self.saved_at = time.time()
        LOG.info("state restored from %s: %d IPs, %d retained sign-ins", self.path,
                 engine.tracked_total(), engine.retained_signins())


def _encoded(engine: Engine, signins: Optional[Any]) -> Iterator[bytes]:
    """The snapshot, as a sequence of msgpack-encoded objects (see the module docstring)."""
    # text is written as it is held: a lone surrogate from input (see encodable.py) round-trips
    pack = msgpack.Packer(use_bin_type=True, unicode_errors="surrogatepass").pack
    written = 0
    yield pack({"format": FORMAT, "version": VERSION, "profile": engine.profile.name,
                "bucket_seconds": engine.bucket_seconds(), "newest": engine.newest,
                "next_expiry": engine.next_expiry, "written": time.time()})
    written += 1
    for source, counter in engine.counters.items():
        yield pack(["counter", source, len(counter), counter.bucket_count()])
        written += 1
        for item in counter.dump():
            yield pack(item)
            written += 1
    retained = list(engine.retained())
    yield pack(["retained", len(retained)])
    written += 1
    for ip, signin in retained:
        yield pack([ip, list(signin)])
        written += 1
    suppression = list(engine.suppression())
    yield pack(["suppression", len(suppression)])
    written += 1
    for entry in suppression:
        yield pack(list(entry))
        written += 1
    cursors, id_count, id_rows = ((signins.cursor_rows(), signins.id_count(), signins.id_rows())
                                  if signins is not None else ([], 0, ()))
    yield pack(["signin-cursors", len(cursors)])
    for row in cursors:
        yield pack(row)
    yield pack(["signin-ids", id_count])
    written += 2 + len(cursors) + id_count
    for row in id_rows:
        yield pack(row)
    yield pack(["end", written])


def _decode(handle, engine: Engine) -> Tuple[float, float, Dict[str, FailureCounter], List[Tuple[str, Event]], List[tuple],
                                            List[list], List[list]]:
    """Read a snapshot written by _encoded into fresh structures; SnapshotError if unusable."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=64 * 1024 * 1024,
                                unicode_errors="surrogatepass")
    objects = _objects(handle, unpacker)
    header = next(objects, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError("not a fail2entra state snapshot" if header is not None else "empty file")
    if header.get("version") not in READABLE_VERSIONS:
        raise SnapshotError(f"snapshot version {header.get('version')!r}, this program reads "
                            f"{' and '.join(map(str, READABLE_VERSIONS))}")
    if header.get("profile") != engine.profile.name:
        raise SnapshotError(f"snapshot of profile {header.get('profile')!r}, this run uses {engine.profile.name!r}")
    if header.get("bucket_seconds") != engine.bucket_seconds():
        raise SnapshotError("snapshot taken with another --window (bucket width differs)")
    count = 1
    counters: Dict[str, FailureCounter] = {}
    for source in FAILURE_TABLES:
        kind, name, tallies, buckets = _next(objects)
        count += 1
        if kind != "counter" or name != source:
            raise SnapshotError(f"expected the {source} counter, found {kind!r} {name!r}")
        counter = counters[source] = FailureCounter(engine.bucket_seconds())
        for _ in range(tallies):
            counter.restore_tally(*_next(objects))
        for _ in range(buckets):
            counter.restore_bucket(*_next(objects))
        count += tallies + buckets
        counter.verify()
    retained = [(ip, Event(*fields)) for ip, fields in _section(objects, "retained")]
    suppression = [tuple(entry) for entry in _section(objects, "suppression")]
    count += 2 + len(retained) + len(suppression)
    cursors: List[list] = []
    ids: List[list] = []
    if header["version"] >= 2:
        cursors, ids = _section(objects, "signin-cursors"), _section(objects, "signin-ids")
        count += 2 + len(cursors) + len(ids)
    end = _next(objects)
    if end != ["end", count]:
        raise SnapshotError(f"bad end marker {end!r} after {count} objects")
    if next(objects, None) is not None:
        raise SnapshotError("data after the end marker")
    return float(header["newest"]), float(header.get("next_expiry", 0.0)), counters, retained, suppression, cursors, ids


def _objects(handle, unpacker: "msgpack.Unpacker") -> Iterator[Any]:
    """The file's objects one by one; bytes left over at the end (a cut object) are an error."""
    fed = complete = 0  # bytes read, and bytes up to the end of the last whole object
    while True:
        data = handle.read(_READ_SIZE)
        if not data:
            if fed != complete:
                raise SnapshotError(f"{fed - complete} bytes of a cut object at the end")
            return
        fed += len(data)
        unpacker.feed(data)
        for item in unpacker:
            complete = unpacker.tell()  # read right away: after a failed attempt it counts the cut bytes
            yield item


def _next(objects: Iterator[Any]) -> Any:
    found = next(objects, _TRUNCATED)
    if found is _TRUNCATED:
        raise SnapshotError("truncated")
    return found


_TRUNCATED = object()


def _section(objects: Iterator[Any], name: str) -> List[Any]:
    kind, size = _next(objects)
    if kind != name:
        raise SnapshotError(f"expected the {name} section, found {kind!r}")
    return [_next(objects) for _ in range(size)]
