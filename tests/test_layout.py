"""docs/LAYOUT.md names every module of the library, the service and the benchmarks, and only
modules that exist: the map a newcomer reads first cannot drift from the tree."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("index", "service", "bench")


def test_layout_names_every_module_and_nothing_else() -> None:
    listed = set(re.findall(r"^- `([\w/]+\.py)`", (ROOT / "docs/LAYOUT.md").read_text(), re.M))
    present = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if not {"__pycache__", ".peers", ".cache"} & set(path.parts)
    }
    assert listed - present == set(), "docs/LAYOUT.md names modules that are gone"
    assert present - listed == set(), "modules missing from docs/LAYOUT.md"
