"""Shared fixtures."""

import os
from pathlib import Path

import pytest

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The evaluation datasets (../shared/data, or $WHITENED_SEARCH_DATA); may not exist."""
    return Path(os.environ.get("WHITENED_SEARCH_DATA", DEFAULT_DATA_DIR))
