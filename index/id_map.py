"""Positions of a FAISS index ↔ the document rows they hold, without an id per vector.

FAISS's IDMap keeps an int64 per vector: 8 bytes, as much as a whole 64-bit code. Rows only
grow (SQLite's AUTOINCREMENT never reuses one), and an index adds them in that order, so
position → row is a rising step function: kept here as runs of consecutive rows, one
(first position, first row) pair per run. An ingest without deletions is one run; a rebuild
after deletions has a run per gap. A removed row leaves its position as a tombstone until the
index is built anew: a bit per position, allocated at the first removal (an index that never
lost a row holds no bitmap, so a 64-bit code costs 8 bytes, not 8⅛).
"""

import numpy as np

from index.errors import InvalidInput


class IdMap:
    """Runs of consecutive ids over positions 0..size-1, and which positions are still live."""

    def __init__(self) -> None:
        self._starts = np.zeros(0, np.int64)  # first position of each run
        self._firsts = np.zeros(0, np.int64)  # first id of each run
        self._size = 0
        self._live: np.ndarray | None = None  # a bit per position (FAISS's order) once one died
        self._dead = 0

    @property
    def size(self) -> int:
        """Positions held, tombstones included: the FAISS index's ntotal."""
        return self._size

    @property
    def dead(self) -> int:
        """Tombstones: positions whose id was removed."""
        return self._dead

    @property
    def live_bitmap(self) -> np.ndarray:
        """One bit per position, set for live ones: what `faiss.IDSelectorBitmap` reads."""
        return self._bitmap()

    @property
    def nbytes(self) -> int:
        bitmap = 0 if self._live is None else self._live.nbytes
        return self._starts.nbytes + self._firsts.nbytes + bitmap

    @property
    def last(self) -> int:
        """The largest id ever added (−1 when none): the next ids must be larger."""
        if not self._size:
            return -1
        return int(self._firsts[-1] + (self._size - 1 - self._starts[-1]))

    def check_rising(self, ids: np.ndarray) -> None:
        """InvalidInput unless `ids` rise and exceed `last` (before the index adds their codes)."""
        if len(ids) and (np.diff(np.concatenate([[self.last], ids])) <= 0).any():
            raise InvalidInput(
                f"ids must rise and exceed the largest one held ({self.last}): "
                "build the index anew to add smaller ones"
            )

    def append(self, ids: np.ndarray) -> None:
        """Give the next len(ids) positions to `ids`, which must rise and exceed `last`."""
        self.check_rising(ids)
        if not len(ids):
            return
        steps = np.diff(np.concatenate([[self.last], ids]))
        new_run = np.flatnonzero(steps != 1)
        if not self._size:
            new_run = np.union1d(new_run, [0])
        self._starts = np.concatenate([self._starts, self._size + new_run])
        self._firsts = np.concatenate([self._firsts, ids[new_run]])
        self._size += len(ids)
        self._set_live(np.arange(self._size - len(ids), self._size))

    def ids_at(self, positions: np.ndarray) -> np.ndarray:
        """The live id at each position; −1 for padding (−1) and tombstones."""
        positions = np.asarray(positions, np.int64)
        out = np.full(positions.shape, -1, np.int64)
        valid = (positions >= 0) & (positions < self._size)
        valid[valid] = self._is_live(positions[valid])
        held = positions[valid]
        run = np.searchsorted(self._starts, held, side="right") - 1
        out[valid] = self._firsts[run] + (held - self._starts[run])
        return out

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """The positions of the live ids among `ids` (others are left out), rising."""
        ids = np.unique(np.asarray(ids, np.int64))
        if not self._size or not len(ids):
            return np.zeros(0, np.int64)
        run = np.searchsorted(self._firsts, ids, side="right") - 1
        known = run >= 0
        ids, run = ids[known], run[known]
        positions = self._starts[run] + (ids - self._firsts[run])
        run_end = np.append(self._starts[1:], self._size)[run]
        positions = positions[positions < run_end]
        return positions[self._is_live(positions)]

    def remove(self, ids: np.ndarray) -> int:
        """Tombstone the positions of the live `ids` among those given; returns how many."""
        positions = self.positions_of(ids)
        if not len(positions):
            return 0
        self._live = self._bitmap()
        np.bitwise_and.at(self._live, positions >> 3, ~_bits(positions))
        self._dead += len(positions)
        return len(positions)

    def live_ids(self) -> np.ndarray:
        return self.ids_at(np.arange(self._size))[self._live_mask()]

    def live_positions(self) -> np.ndarray:
        return np.flatnonzero(self._live_mask())

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The runs, the size and the packed tombstone bitmap (empty when none died)."""
        live = np.zeros(0, np.uint8) if self._live is None else self._live
        return {
            "starts": self._starts,
            "firsts": self._firsts,
            "size": np.array(self._size),
            "live": live,
        }

    @classmethod
    def from_arrays(
        cls, starts: np.ndarray, firsts: np.ndarray, size: np.ndarray, live: np.ndarray
    ) -> "IdMap":
        """The map `to_arrays` saved; InvalidInput when the arrays do not describe one."""
        mapped = cls()
        starts, firsts = np.asarray(starts, np.int64), np.asarray(firsts, np.int64)
        size, live = int(size), np.asarray(live, np.uint8)
        if len(live) not in (0, (size + 7) // 8):
            raise InvalidInput("the id map's bitmap does not cover its positions")
        if len(starts) != len(firsts) or (size and (not len(starts) or starts[0] != 0)):
            raise InvalidInput("the id map's runs do not cover its positions")
        lengths = np.diff(np.append(starts, size))
        ends = firsts + lengths - 1
        if (lengths < 1).any() or (firsts[1:] <= ends[:-1]).any():
            raise InvalidInput("the id map's runs are not rising")
        mapped._starts, mapped._firsts, mapped._size = starts, firsts, size
        if len(live):
            mapped._live = live
            mapped._dead = int(size - mapped._live_mask().sum())
        return mapped

    @classmethod
    def of(cls, ids: np.ndarray) -> "IdMap":
        mapped = cls()
        mapped.append(np.asarray(ids, np.int64))
        return mapped

    def _bitmap(self) -> np.ndarray:
        """The tombstone bitmap, every position live when none was allocated yet."""
        if self._live is not None:
            return self._live
        return np.packbits(np.ones(self._size, bool), bitorder="little")

    def _live_mask(self) -> np.ndarray:
        if self._live is None:
            return np.ones(self._size, bool)
        return np.unpackbits(self._live, count=self._size, bitorder="little").astype(bool)

    def _is_live(self, positions: np.ndarray) -> np.ndarray:
        if self._live is None:
            return np.ones(positions.shape, bool)
        return ((self._live[positions >> 3] >> (positions & 7).astype(np.uint8)) & 1).astype(bool)

    def _set_live(self, positions: np.ndarray) -> None:
        if self._live is None:
            return
        needed = (self._size + 7) // 8
        if len(self._live) < needed:
            self._live = np.concatenate([self._live, np.zeros(needed - len(self._live), np.uint8)])
        np.bitwise_or.at(self._live, positions >> 3, _bits(positions))


def _bits(positions: np.ndarray) -> np.ndarray:
    """Each position's bit within its byte of the bitmap."""
    return np.left_shift(np.uint8(1), (positions & 7).astype(np.uint8))
