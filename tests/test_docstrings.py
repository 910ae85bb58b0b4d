"""The Examples sections of the library's docstrings run as written."""

import doctest

import pytest

from index import kernel


@pytest.mark.parametrize("module", [kernel])
def test_examples_run(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0
