"""The data directory's exclusive lock: one process writes a data directory at a time.

Two processes on one directory would each keep their own in-memory index and overwrite each
other's manifests, so the lock belongs to the library's `Catalog`, not to the service: a script
or benchmark that opens the directory of a running server is refused too. The kernel releases
the lock when the process dies, even by SIGKILL.
"""

import os
from pathlib import Path

from index.errors import StorageError

LOCK_FILE = "whitened-search.lock"


class DataDirBusy(StorageError):
    """Another process (or another Catalog in this one) holds the data directory."""


class DataDirLock:
    """An advisory `flock` on `root/whitened-search.lock`, with the holder's pid inside."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: run without one
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirBusy(
                f"data directory {self.path.parent} is in use by another whitened-search "
                f"process (pid {owner}): stop it, or give this one another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
