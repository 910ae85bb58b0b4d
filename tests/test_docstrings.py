"""The Examples sections of the library's docstrings, and the README's library example, run as
written."""

import doctest
import re
from pathlib import Path

import pytest

from index import kernel


@pytest.mark.parametrize("module", [kernel])
def test_examples_run(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0


def test_readme_library_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(example, scope)
    assert scope["hits"][0].id == "1" and scope["news"].manifest.settings.k == 96
