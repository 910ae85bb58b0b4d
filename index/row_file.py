"""Fixed-size records by row in a flat file, mapped into memory: the raw vectors beside the
document store, and the shortlist's codes (`index.shortlist`).

Re-scoring reads the raw vectors of a few hundred candidates per query: as SQLite blobs that
costs about 3 µs a row (400 candidates: 1.2 ms), as a gather from a mapped file at byte
4·d·(row − 1) a few hundredths of that. SQLite keeps every vector too and stays the truth: the
store writes and syncs a write's vectors here before its transaction commits, so each committed
row's vector is in the file, and rows past the file's end (a file lost, cut short, or from before
it existed) are filled from SQLite on open. A rolled-back write may leave vectors of rows that
never committed; a later write that gets those rows overwrites them. Rows are never reused, so
the places of deleted and replaced rows are given back to the file system as holes (whole
blocks only, on Linux; elsewhere they stay).
"""

import ctypes
import ctypes.util
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from index.errors import StorageError

_BLOCK = 4096
_PUNCH_HOLE = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE (linux/falloc.h)


class RowFile:
    """Row r's record (`dimension` values of `dtype`) at record r − 1. Writers are serialised
    by the file's owner; readers map the file and map it again when a row past the mapped end
    is asked for (the file has grown)."""

    def __init__(self, path: Path, dimension: int, dtype: str = "<f4") -> None:
        self.path = path
        self.dimension = dimension
        self.dtype = np.dtype(dtype)
        self._record = self.dtype.itemsize * dimension
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc}") from exc
        self._closer = weakref.finalize(self, os.close, self._fd)
        self._mapped = np.empty((0, dimension), self.dtype)
        self._map_lock = threading.Lock()

    @property
    def rows(self) -> int:
        """Rows the file holds whole: 1 to this."""
        return os.fstat(self._fd).st_size // self._record

    def write(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Write each row's vector at its place, then sync: the caller commits after this."""
        order = np.argsort(rows)
        rows, vectors = rows[order], np.ascontiguousarray(vectors[order], self.dtype)
        done = 0
        for start, stop in _runs(rows):
            block = vectors[done : done + stop - start].tobytes()
            done += stop - start
            if os.pwrite(self._fd, block, (start - 1) * self._record) != len(block):
                raise OSError(f"short write to {self.path}")
        os.fsync(self._fd)

    def release(self, rows: np.ndarray) -> None:
        """Give the blocks wholly inside the places of committed-away `rows` back (reads of
        them return zeros from now on); a file system that cannot punch holes keeps them."""
        for start, stop in _runs(np.sort(rows)):
            first = -(-(start - 1) * self._record // _BLOCK) * _BLOCK
            end = (stop - 1) * self._record // _BLOCK * _BLOCK
            if end > first and _fallocate is not None:
                _fallocate(self._fd, _PUNCH_HOLE, first, end - first)  # failure: it stays

    def read(self, rows: np.ndarray) -> np.ndarray:
        """Records (len(rows), dimension) of rows the file holds (see `rows`)."""
        mapped = self._mapped
        if len(rows) and int(rows.max()) > len(mapped):
            mapped = self._map()
            if int(rows.max()) > len(mapped):
                raise StorageError(
                    f"{self.path} holds records of rows 1 to {len(mapped)}, not {int(rows.max())}:"
                    " it was cut short while open; restart the service to rebuild it"
                )
        return mapped[np.asarray(rows, np.int64) - 1]

    def close(self) -> None:
        """Unmap (once readers drop their views) and close the file; a file no one closes is
        closed when it is garbage (a replaced kernel's codes, once its last query is done)."""
        with self._map_lock:
            self._mapped = np.empty((0, self.dimension), self.dtype)
            if self._fd >= 0:
                self._closer()
                self._fd = -1

    def _map(self) -> np.ndarray:
        with self._map_lock:
            if self._fd < 0:  # as the store says of its SQLite file once closed
                raise StorageError(f"{self.path} is closed: its collection was closed or deleted")
            rows = self.rows
            if rows > len(self._mapped):
                # The mmap lives as long as a view of it does: readers holding the old one go on.
                buffer = mmap.mmap(self._fd, rows * self._record, access=mmap.ACCESS_READ)
                self._mapped = np.frombuffer(buffer, self.dtype).reshape(rows, self.dimension)
            return self._mapped


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted rows as runs of consecutive ones, [start, stop)."""
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    return [
        (int(rows[a]), int(rows[b - 1]) + 1)
        for a, b in zip([0, *breaks], [*breaks, len(rows)], strict=True)
        if b > a
    ]


def _libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    function = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).fallocate
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return function


_fallocate = _libc_fallocate()
