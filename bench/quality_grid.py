"""The quality grid: the kernel settings, their scores at each k, and the grid's JSON form.

Both the measuring (bench/quality_tasks.py) and the writing (bench/quality_report.py) use it, and
`python -m bench render` reads a result file back through it: one shape for all three.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    """A row of the table: fixed β, γ (None: tuned per k) and the index whose codes are scored."""

    key: str
    label: str
    beta: float | None = None
    gamma: float | None = None
    index_spec: str = "Flat"
    style: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def tuned(self) -> bool:
        return self.beta is None


SETTINGS = (
    Setting("rotation", "β=γ=0 (rotation)", 0.0, 0.0, style={"color": "C0"}),
    Setting("centre", "β=1, γ=0", 1.0, 0.0, style={"color": "C1"}),
    Setting("half", "β=γ=0.5", 0.5, 0.5, style={"color": "C2"}),
    Setting("whiten", "β=γ=1 (whitening)", 1.0, 1.0, style={"color": "C3"}),
    Setting("tuned", "tuned β, γ", style={"color": "C4", "lw": 2.2}),
    Setting(
        "rotation_sq8",
        "β=γ=0, SQ8 codes",
        0.0,
        0.0,
        "SQ8",
        {"color": "C0", "linestyle": "--", "marker": "x", "markersize": 7},
    ),
    Setting(
        "tuned_sq8",
        "tuned β, γ, SQ8 codes",
        None,
        None,
        "SQ8",
        {"color": "C4", "linestyle": "--", "marker": "x", "markersize": 7},
    ),
)


@dataclass
class Cell:
    """One setting at one k: scores (fractions, one per metric) and what was actually used."""

    scores: tuple[float, ...]
    k: int
    beta: float
    gamma: float
    tuning_score: float | None = None


@dataclass
class Grid:
    """Every setting at every k, plus the raw score and what the kernel was fitted on."""

    task: str
    metrics: tuple[str, ...]
    ks: tuple[int, ...]
    dimension: int
    raw: tuple[float, ...]
    ranks: dict[float, int]
    rows: dict[str, dict[int, Cell]] = field(default_factory=dict)


def format_scores(scores: Sequence[float]) -> str:
    """Scores × 100 as the tables and the log show them: '81.23 / 64.50'."""
    return " / ".join(f"{100 * s:.2f}" for s in scores)


def grid_json(grid: Grid) -> dict[str, Any]:
    return {
        "task": grid.task,
        "metrics": list(grid.metrics),
        "ks": list(grid.ks),
        "dimension": grid.dimension,
        "raw": list(grid.raw),
        "ranks": {f"{beta:g}": rank for beta, rank in grid.ranks.items()},
        "rows": {
            key: {
                str(k): {
                    "scores": list(cell.scores),
                    "k_used": cell.k,
                    "beta": cell.beta,
                    "gamma": cell.gamma,
                    "tuning_score": cell.tuning_score,
                }
                for k, cell in cells.items()
            }
            for key, cells in grid.rows.items()
        },
    }


def grid_from_json(figures: dict[str, Any]) -> Grid:
    """The Grid that `grid_json` wrote (for rendering tables from a result file)."""
    return Grid(
        task=figures["task"],
        metrics=tuple(figures["metrics"]),
        ks=tuple(figures["ks"]),
        dimension=figures["dimension"],
        raw=tuple(figures["raw"]),
        ranks={float(beta): rank for beta, rank in figures["ranks"].items()},
        rows={
            key: {
                int(k): Cell(
                    tuple(cell["scores"]),
                    cell["k_used"],
                    cell["beta"],
                    cell["gamma"],
                    cell["tuning_score"],
                )
                for k, cell in cells.items()
            }
            for key, cells in figures["rows"].items()
        },
    )
