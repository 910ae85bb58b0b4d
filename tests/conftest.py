"""Shared fixtures: the real default model, a small corpus, and the evaluation data folder."""

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from index import Encoder

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The evaluation datasets (../shared/data, or $WHITENED_TEST_DATA); may not exist."""
    return Path(os.environ.get("WHITENED_TEST_DATA", DEFAULT_DATA_DIR))


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    return Encoder()


SUBJECTS = ["A man", "A woman", "The child", "An old farmer", "A young chef", "The pilot"]
ACTIONS = [
    "is playing the guitar",
    "is slicing an onion",
    "is riding a horse",
    "is reading a newspaper",
    "is swimming in the lake",
    "is painting a fence",
]
PLACES = ["in the kitchen", "at the park", "near the river", "on a sunny morning", "at night"]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    """180 distinct, meaningful sentences: enough to fit a kernel and see paraphrases win."""
    return [f"{s} {a} {p}." for s, a, p in itertools.product(SUBJECTS, ACTIONS, PLACES)]


@pytest.fixture(scope="session")
def corpus_vectors(encoder: Encoder, corpus: list[str]) -> np.ndarray:
    return encoder.encode(corpus)
