"""n, Σx and Σxᵀx (float64) of some vectors: all a whitening kernel is derived from.

Apart from the kernel because they travel alone: workers and shards compute theirs, hand them
back, and they are added up before one kernel is derived (`WhiteningKernel.merge`).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from index.blas import pin_threads
from index.errors import InvalidHyperparameters
from index.validation import as_matrix


@dataclass(frozen=True)
class Statistics:
    """n, Σx and Σxᵀx (float64) of some vectors: everything a kernel is derived from.

    They add exactly, so batches and workers each hand back theirs and one sum is derived once
    at the end: a sum of two costs microseconds, a derivation (the d × d eigendecomposition)
    about a tenth of a second, which a merge per block would pay thousands of times.
    """

    n: int
    sum: np.ndarray
    sum_sq: np.ndarray

    @classmethod
    def of(cls, X: Any, dimension: int | None = None) -> "Statistics":
        """The statistics of the rows of X (n, d), checked to be `dimension` wide if given."""
        pin_threads()
        X64 = as_matrix(X, dimension).astype(np.float64, copy=False)
        return cls(X64.shape[0], X64.sum(axis=0), X64.T @ X64)

    def __add__(self, other: "Statistics") -> "Statistics":
        if other.sum.shape != self.sum.shape:
            raise InvalidHyperparameters(
                f"cannot merge statistics of dimension {other.sum.shape[0]} "
                f"into statistics of dimension {self.sum.shape[0]}"
            )
        return Statistics(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)
