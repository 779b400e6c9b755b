"""Files that must survive a crash and must not be shared: the forward spool and the state
snapshot both replace themselves atomically and are held by one process at a time."""

import fcntl
import os
import time
from typing import BinaryIO, Callable


class FileInUseError(RuntimeError):
    """Another process (or another object here) holds the file: two writers would corrupt it."""


def lock_beside(path: str, what: str, wait: float = 0.0) -> int:
    """Hold an exclusive lock on ``path.lock`` for as long as the returned descriptor is open
    (the kernel drops it when the process dies). The lock is on a side file because atomic
    replacement swaps the file's inode. Raises FileInUseError when it is still taken after
    ``wait`` seconds (a child respawned while the old one writes its last snapshot waits)."""
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise FileInUseError(f"{what} {path} is in use by another fail2entra") from None
            time.sleep(0.1)


def replace_atomically(path: str, write: Callable[[BinaryIO], None]) -> int:
    """Write a new ``path`` through ``write``: a temporary file, fsync, rename over ``path``,
    fsync of the directory. A crash leaves the old file or the new one, never a torn one; a
    failed write leaves the old file and no temporary. Returns the new file's size."""
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            size = handle.tell()
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)  # a partial copy would only waste the disk it may have run out of
        raise
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size
