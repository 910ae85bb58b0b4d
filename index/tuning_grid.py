"""The β × γ × k grid a tune tries: its default values, and the checks on a grid and kernel given.

One owner for what a grid may hold, so the exact sweep (`index.tuning`) and the served tuner
(`index.tuning_served`) refuse the same inputs with the same messages.
"""

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from index.errors import InvalidInput, NotFitted
from index.kernel import WhiteningKernel

DEFAULT_BETAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_GAMMAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
_K_STEPS = (32, 64, 96, 128, 192, 256, 384)


def default_ks(d: int, max_k: int | None = None) -> list[int]:
    """The usual k grid: 32, 64, 96, 128, 192, 256, 384 and d, up to min(d, max_k), plus max_k."""
    d = positive_int(d, "d")
    max_k = d if max_k is None else positive_int(max_k, "max_k")
    if max_k > d:
        raise InvalidInput(f"max_k={max_k} exceeds the vector dimension d={d}: use max_k ≤ {d}")
    return sorted({k for k in (*_K_STEPS, d) if k <= max_k} | {max_k})


def fitted_dimension(kernel: WhiteningKernel) -> int:
    """The vector dimension d of a fitted kernel; InvalidInput or NotFitted otherwise."""
    if not isinstance(kernel, WhiteningKernel):
        raise InvalidInput(f"kernel must be a WhiteningKernel, got {type(kernel).__name__}")
    if not kernel.is_fitted:
        raise NotFitted("the kernel is not fitted: fit it on the corpus vectors before tuning")
    return int(kernel.n_features_in_)


def real_grid(values: Iterable[float], name: str) -> list[float]:
    """The finite real values to try, as floats, duplicates dropped, in the order given."""
    grid = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidInput(f"{name} must hold real numbers, got {value!r}")
        if not math.isfinite(value):
            raise InvalidInput(f"{name} must hold finite numbers, got {value!r}")
        grid.append(float(value))
    if not grid:
        raise InvalidInput(f"{name} is empty: give at least one value to try")
    return list(dict.fromkeys(grid))


def k_grid(ks: Iterable[int] | None, d: int, max_k: int | None) -> list[int]:
    """The output dimensions to try, rising, none above max_k (default `default_ks`)."""
    limit = d if max_k is None else positive_int(max_k, "max_k")
    if limit > d:
        raise InvalidInput(f"max_k={limit} exceeds the vector dimension d={d}: use max_k ≤ {d}")
    if ks is None:
        return default_ks(d, limit)
    grid = sorted({positive_int(k, "ks") for k in ks})
    if not grid:
        raise InvalidInput("ks is empty: give at least one output dimension to try")
    if grid[-1] > d:
        raise InvalidInput(f"ks has k={grid[-1]} above the vector dimension d={d}")
    kept = [k for k in grid if k <= limit]
    if not kept:
        raise InvalidInput(f"every k in ks is above max_k={limit}: add a smaller k")
    return kept


def positive_int(value: Any, name: str) -> int:
    """`value` as an int when it is a positive integer (not a bool); InvalidInput otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    return int(value)
