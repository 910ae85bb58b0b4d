"""`python -m bench render [--check]`: the documents' tables, rebuilt from the result files.

Every table of figures in README.md, bench/README.md and docs/SCALING.md sits between
`<!-- render: NAME -->` and `<!-- /render -->`, and NAME's function in bench/render_tables.py
rebuilds it from the committed JSON files in bench/results/, so no figure is typed by hand:
re-rendering after a run updates them, and `tests/test_bench_render.py` fails when a committed
table differs from what its results render. This module finds the blocks and swaps them.
"""

import argparse
import difflib
import re
import sys
from pathlib import Path

from bench import report
from bench.render_tables import RENDERERS

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTS = (
    REPOSITORY / "README.md",
    REPOSITORY / "bench" / "README.md",
    REPOSITORY / "docs" / "SCALING.md",
)
BLOCK = re.compile(r"(<!-- render: ([\w-]+) -->\n)(.*?)(<!-- /render -->)", re.DOTALL)


def render(text: str, results: Path) -> str:
    """`text` with every render block rebuilt from `results`; an unknown name is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in RENDERERS:
            raise KeyError(f"unknown render block {name!r}: pick from {sorted(RENDERERS)}")
        return match.group(1) + RENDERERS[name](results).rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def blocks(text: str) -> list[str]:
    """The names of the render blocks in `text`, in order."""
    return [match.group(2) for match in BLOCK.finditer(text)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--results", type=Path, default=report.RESULTS_DIR, help="folder of the result files"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff when a README table differs from its results",
    )


def run(args: argparse.Namespace) -> int:
    results = args.results
    stale = 0
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        rendered = render(text, results)
        if rendered == text:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    rendered.splitlines(keepends=True),
                    str(path),
                    f"{path} (rendered)",
                )
            )
        else:
            path.write_text(rendered, encoding="utf-8")
            print(f"rendered {path.relative_to(REPOSITORY)}")
    return 1 if stale else 0
