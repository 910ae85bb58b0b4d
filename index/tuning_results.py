"""What a tune returns: the exact sweep's scored grid points, and the served pipelines it ran."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TuningPoint:
    """One grid point and its score (a fraction: Spearman or nDCG, not times 100)."""

    beta: float
    gamma: float
    k: int
    score: float


@dataclass(frozen=True)
class TuningResult:
    """Every scored grid point, the best one, and the (beta, gamma, k) skipped as k > rank."""

    metric: str
    points: list[TuningPoint]
    best: TuningPoint
    skipped: list[tuple[float, float, int]] = field(default_factory=list)

    def score(self, beta: float, gamma: float, k: int) -> float:
        """The score of one grid point; KeyError if it was not scored."""
        for point in self.points:
            if (point.beta, point.gamma, point.k) == (beta, gamma, k):
                return point.score
        raise KeyError(f"(beta={beta:g}, gamma={gamma:g}, k={k}) is not a scored grid point")

    def table(self) -> str:
        """Markdown: a row per (beta, gamma), a column per k, scores times 100, best in bold."""
        ks = sorted({p.k for p in self.points}, reverse=True)
        rows = list(dict.fromkeys((p.beta, p.gamma) for p in self.points))
        cells = {(p.beta, p.gamma, p.k): p for p in self.points}
        lines = [
            f"| beta | gamma | {' | '.join(f'k={k}' for k in ks)} |",
            "|---|---|" + "---|" * len(ks),
        ]
        for beta, gamma in rows:
            values = []
            for k in ks:
                point = cells.get((beta, gamma, k))
                text = "" if point is None else f"{100 * point.score:.2f}"
                values.append(f"**{text}**" if point == self.best else text)
            lines.append(f"| {beta:g} | {gamma:g} | {' | '.join(values)} |")
        return "\n".join(lines)


@dataclass(frozen=True)
class ServedPoint:
    """One pipeline as the server would run it, scored on the train and the held-out part."""

    beta: float
    gamma: float
    k: int
    index_spec: str | None
    """None for pairs: `/similarity` compares kernel vectors, no index is involved."""
    rescore: str
    rescore_k: int | None
    candidates: int | None
    """Candidates re-scored per query (None: the default, a few per hit)."""
    bytes_per_vector: float | None
    """Resident index memory per vector (codes, per-vector factors, id runs) of the index built."""
    train: float
    held_out: float | None

    @property
    def settings(self) -> dict[str, Any]:
        """The collection settings that serve this pipeline (what `apply` fits with): all of
        them, defaults included, so nothing of an earlier fit stays (the tuner runs no shortlist,
        so none is kept); pairs choose no index spec (the collection keeps its own, and its
        shortlist)."""
        names = ("beta", "gamma", "k", "index_spec", "rescore", "rescore_k", "candidates")
        chosen = {name: getattr(self, name) for name in names} | {"shortlist": None}
        if chosen["index_spec"] is None:
            del chosen["index_spec"], chosen["shortlist"]
        return chosen


@dataclass(frozen=True)
class ServedTuning:
    """What `apply` serves (`chosen`, picked on the train part only) and how it does on examples
    it never chose on, beside raw cosine on those same examples."""

    metric: str
    sweep: TuningResult
    pipelines: list[ServedPoint]
    chosen: ServedPoint
    raw_held_out: float | None
    n_train: int
    n_held_out: int

    def pareto(self) -> list[ServedPoint]:
        """Pipelines no other beats on both bytes per vector and held-out (else train) score."""

        def quality(point: ServedPoint) -> float:
            return point.train if point.held_out is None else point.held_out

        front: list[ServedPoint] = []
        ordered = sorted(self.pipelines, key=lambda p: (p.bytes_per_vector or 0, -quality(p)))
        for point in ordered:
            if not front or quality(point) > quality(front[-1]):
                front.append(point)
        return front
