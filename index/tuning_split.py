"""The held-out part of labelled examples: a seeded choice of those the tuner never chooses on."""

import numpy as np

from index.errors import InvalidInput

HELD_OUT_FRACTION = 0.3
"""Share of the labelled examples the tuner never chooses on, when no validation set is given."""

MIN_EXAMPLES_TO_SPLIT = 10
"""Below this many examples nothing is held out (the held-out score is then None)."""


def held_out_split(n: int, fraction: float = HELD_OUT_FRACTION, seed: int = 0) -> np.ndarray:
    """A seeded boolean mask of the examples held out (none below MIN_EXAMPLES_TO_SPLIT)."""
    if not 0 <= fraction < 1:
        raise InvalidInput(f"held_out must be in [0, 1), got {fraction!r}")
    mask = np.zeros(n, dtype=bool)
    if n >= MIN_EXAMPLES_TO_SPLIT and fraction > 0:
        chosen = np.random.default_rng(seed).permutation(n)[: max(1, round(fraction * n))]
        mask[chosen] = True
    return mask
