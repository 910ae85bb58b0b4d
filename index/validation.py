"""Checks shared by the kernel, the index and the collection, with messages that say what to fix."""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.errors import InvalidHyperparameters, InvalidTexts, InvalidVectors


def as_matrix(X: Any, dim: int | None = None, name: str = "X") -> np.ndarray:
    """Return `X` as a finite 2-D float array of `dim` columns, or raise InvalidVectors."""
    try:
        array = np.asarray(X, dtype=np.float64 if _is_float64(X) else np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidVectors(f"{name} must be a 2-D array of numbers: {exc}") from exc
    if array.ndim != 2:
        raise InvalidVectors(
            f"{name} must be 2-D (n_vectors, dimension), got shape {array.shape}; "
            "wrap a single vector as [vector]"
        )
    if dim is not None and array.shape[1] != dim:
        raise InvalidVectors(
            f"{name} has dimension {array.shape[1]} but {dim} is expected: "
            "use vectors from the same model the kernel or collection was built with"
        )
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise InvalidVectors(f"{name} has {bad} vector(s) with NaN or infinite values; drop them")
    return array


def unit_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a new array); all-zero rows stay zero: cosine is a dot product."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def _is_float64(X: Any) -> bool:
    return isinstance(X, np.ndarray) and X.dtype == np.float64


def check_texts(texts: Sequence[Any], allow_empty: bool = False) -> list[str]:
    """Return `texts` as a list of strings, or raise InvalidTexts naming a bad one.

    Queries need text; documents may be empty (`allow_empty`): sentence-transformers and the
    peers encode the empty string, and corpora such as Cranfield hold some.
    """
    if isinstance(texts, str):
        raise InvalidTexts("texts must be a list of strings, not one string: wrap it as [text]")
    texts = list(texts)
    if not texts:
        raise InvalidTexts("no texts given: pass at least one non-empty string")
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidTexts(
                f"text at position {position} is {type(text).__name__}, not a string"
            )
        if not allow_empty and not text.strip():
            raise InvalidTexts(f"text at position {position} is empty or only whitespace")
    return texts


HYPERPARAMETER_RANGES = {"beta": (0.0, 1.0), "gamma": (0.0, 2.0)}
"""β: 0 leaves the mean in, 1 subtracts all of it. γ: 0 rotates, 1 whitens to unit variance,
up to 2 whitens further; below 0 the dominant directions would be amplified instead, and
outside these ranges the kernel's arithmetic overflows (β = 1e300)."""


def check_hyperparameter(value: Any, name: str) -> float:
    """Return β or γ (`name`) as a float in its range, or raise InvalidHyperparameters."""
    number = check_real(value, name)
    low, high = HYPERPARAMETER_RANGES[name]
    if not low <= number <= high:
        raise InvalidHyperparameters(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return number


def check_real(value: Any, name: str) -> float:
    """Return `value` as a finite float, or raise InvalidHyperparameters."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise InvalidHyperparameters(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(float(value)):
        raise InvalidHyperparameters(f"{name} must be finite, got {value!r}")
    return float(value)
