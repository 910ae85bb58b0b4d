"""Grid search over the kernel's beta, gamma and k on labelled data, from one set of statistics.

The kernel's statistics (n, Σx, Σxᵀx) are fitted once, on the corpus; the labelled pairs or queries
only score the candidates. Per beta there is one eigendecomposition, per (beta, gamma) one transform
at the largest k, and each smaller k is a slice of it, re-normalised.

`tune_served_retrieval` and `tune_served_pairs` then score what the server would serve (the real
index, candidates, re-scoring) and choose on a train part, reporting a held-out part beside raw
cosine: the score a tuned collection reports is the score its queries get.
"""

import copy
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from index import rescoring
from index.errors import InvalidInput, NotFitted
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k, spearman
from index.validation import as_matrix, unit_rows
from index.vector_index import VectorIndex

DEFAULT_BETAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_GAMMAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
_K_STEPS = (32, 64, 96, 128, 192, 256, 384)


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


def default_ks(d: int, max_k: int | None = None) -> list[int]:
    """The usual k grid: 32, 64, 96, 128, 192, 256, 384 and d, up to min(d, max_k), plus max_k."""
    d = _positive_int(d, "d")
    max_k = d if max_k is None else _positive_int(max_k, "max_k")
    if max_k > d:
        raise InvalidInput(f"max_k={max_k} exceeds the vector dimension d={d}: use max_k ≤ {d}")
    return sorted({k for k in (*_K_STEPS, d) if k <= max_k} | {max_k})


def tune_pairs(
    kernel: WhiteningKernel,
    a: Any,
    b: Any,
    scores: Any,
    *,
    betas: Iterable[float] = DEFAULT_BETAS,
    gammas: Iterable[float] = DEFAULT_GAMMAS,
    ks: Iterable[int] | None = None,
    max_k: int | None = None,
) -> TuningResult:
    """Score each (beta, gamma, k) by the Spearman correlation of pair cosines with gold scores.

    Args:
        kernel: a fitted kernel whose statistics come from the corpus; it is copied, not changed.
        a, b: raw vectors (n, d) of the first and second sentence of each labelled pair.
        scores: gold similarity of each pair (n,).
        betas, gammas: the values to try.
        ks: output dimensions to try (default `default_ks(d, max_k)`); any above max_k is dropped.
        max_k: the largest k allowed (default d).

    Returns:
        A TuningResult with metric "spearman"; best is the highest score, ties to the smaller k.
    """
    d = _fitted_dimension(kernel)
    A = as_matrix(a, d, "a")
    B = as_matrix(b, d, "b")
    gold = np.asarray(scores, dtype=np.float64)
    if gold.ndim != 1 or not (A.shape[0] == B.shape[0] == gold.shape[0]):
        raise InvalidInput(
            f"a, b and scores must describe the same pairs, got {A.shape[0]} rows in a, "
            f"{B.shape[0]} in b and scores of shape {gold.shape}"
        )
    if gold.shape[0] < 2:
        raise InvalidInput(f"tuning on pairs needs at least 2 pairs, got {gold.shape[0]}")
    if not np.isfinite(gold).all() or np.ptp(gold) == 0:
        raise InvalidInput("scores must be finite and not all equal, or no ranking can be scored")
    n = gold.shape[0]

    def score(Y: np.ndarray) -> float:
        cosines = np.einsum("ij,ij->i", Y[:n], Y[n:], dtype=np.float64)
        return spearman(cosines, gold)

    return _sweep(kernel, np.vstack([A, B]), score, "spearman", betas, gammas, ks, max_k)


def tune_retrieval(
    kernel: WhiteningKernel,
    doc_vectors: Any,
    doc_ids: Sequence[Hashable],
    query_vectors: Any,
    relevant: Sequence[Mapping[Hashable, float]],
    *,
    betas: Iterable[float] = DEFAULT_BETAS,
    gammas: Iterable[float] = DEFAULT_GAMMAS,
    ks: Iterable[int] | None = None,
    max_k: int | None = None,
    k_eval: int = 10,
) -> TuningResult:
    """Score each (beta, gamma, k) by nDCG@k_eval of exact cosine search over the documents.

    Args:
        kernel: a fitted kernel whose statistics come from the corpus; it is copied, not changed.
        doc_vectors: raw vectors (n_docs, d) of the documents searched.
        doc_ids: the id of each document, in the same order.
        query_vectors: raw vectors (n_queries, d) of the labelled queries.
        relevant: one mapping doc_id -> graded relevance (> 0 relevant) per query.
        betas, gammas, ks, max_k: the grid, as in `tune_pairs`.
        k_eval: the nDCG cut-off (and the number of documents retrieved per query).

    Returns:
        A TuningResult with metric "ndcg@{k_eval}"; best as in `tune_pairs`.
    """
    d = _fitted_dimension(kernel)
    D = as_matrix(doc_vectors, d, "doc_vectors")
    Q = as_matrix(query_vectors, d, "query_vectors")
    ids = list(doc_ids)
    if len(ids) != D.shape[0]:
        raise InvalidInput(
            f"doc_ids has {len(ids)} ids for {D.shape[0]} doc_vectors: pass one id per document"
        )
    if len(set(ids)) != len(ids):
        raise InvalidInput("doc_ids has duplicates: each document needs its own id")
    if D.shape[0] == 0 or Q.shape[0] == 0:
        raise InvalidInput("tuning for retrieval needs at least one document and one query")
    relevant = list(relevant)
    if len(relevant) != Q.shape[0]:
        raise InvalidInput(
            f"relevant has {len(relevant)} judgment mappings for {Q.shape[0]} queries: "
            "pass one mapping per query, in the same order"
        )
    top = _positive_int(k_eval, "k_eval")
    ndcg_at_k([[]] * len(relevant), relevant, top)  # raises on malformed judgments, before any work
    n_docs = D.shape[0]
    id_array = np.empty(n_docs, dtype=object)
    id_array[:] = ids

    def score(Y: np.ndarray) -> float:
        rankings = [id_array[row].tolist() for row in _top_k(Y[n_docs:], Y[:n_docs], top)]
        return ndcg_at_k(rankings, relevant, top)

    metric = f"ndcg@{top}"
    return _sweep(kernel, np.vstack([D, Q]), score, metric, betas, gammas, ks, max_k)


# ---- internals --------------------------------------------------------------------------------


def _sweep(
    kernel: WhiteningKernel,
    X: np.ndarray,
    score: Callable[[np.ndarray], float],
    metric: str,
    betas: Iterable[float],
    gammas: Iterable[float],
    ks: Iterable[int] | None,
    max_k: int | None,
) -> TuningResult:
    """Transform X once per (beta, gamma) at the largest usable k and score every k by slicing."""
    d = kernel.n_features_in_
    beta_grid = _real_grid(betas, "betas")
    gamma_grid = _real_grid(gammas, "gammas")
    k_grid = _k_grid(ks, d, max_k)
    work = copy.deepcopy(kernel)  # refit caches eigh per beta on the copy, never on the caller's
    points: list[TuningPoint] = []
    skipped: list[tuple[float, float, int]] = []
    for beta in beta_grid:
        rank = work.refit(beta=beta, gamma=0.0, k=k_grid[-1]).rank_
        for gamma in gamma_grid:
            usable = [k for k in k_grid if gamma == 0 or k <= rank]
            skipped += [(beta, gamma, k) for k in k_grid if k not in usable]
            if not usable:
                continue
            Y = work.refit(beta=beta, gamma=gamma, k=usable[-1]).transform(X)
            for k in usable:
                Yk = Y if k == Y.shape[1] else unit_rows(Y[:, :k])
                points.append(TuningPoint(beta, gamma, k, score(Yk)))
    if not points:
        raise InvalidInput(
            f"every grid point has k above the {rank} meaningful components and gamma > 0: "
            "add smaller ks or gamma=0"
        )
    best = max(points, key=lambda p: (p.score, -p.k))
    return TuningResult(metric=metric, points=points, best=best, skipped=skipped)


def _top_k(
    queries: np.ndarray, docs: np.ndarray, k: int, block: int = 1024
) -> Iterator[np.ndarray]:
    """Row indices of each query's k most similar documents, best first (exact inner product)."""
    k = min(k, docs.shape[0])
    for start in range(0, queries.shape[0], block):
        sims = queries[start : start + block] @ docs.T
        if k < sims.shape[1]:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
        yield from np.take_along_axis(part, order, axis=1)


def _fitted_dimension(kernel: WhiteningKernel) -> int:
    if not isinstance(kernel, WhiteningKernel):
        raise InvalidInput(f"kernel must be a WhiteningKernel, got {type(kernel).__name__}")
    if not kernel.is_fitted:
        raise NotFitted("the kernel is not fitted: fit it on the corpus vectors before tuning")
    return int(kernel.n_features_in_)


def _real_grid(values: Iterable[float], name: str) -> list[float]:
    grid = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise InvalidInput(f"{name} must hold real numbers, got {value!r}")
        if not math.isfinite(value):
            raise InvalidInput(f"{name} must hold finite numbers, got {value!r}")
        grid.append(float(value))
    if not grid:
        raise InvalidInput(f"{name} is empty: give at least one value to try")
    return list(dict.fromkeys(grid))


def _k_grid(ks: Iterable[int] | None, d: int, max_k: int | None) -> list[int]:
    limit = d if max_k is None else _positive_int(max_k, "max_k")
    if limit > d:
        raise InvalidInput(f"max_k={limit} exceeds the vector dimension d={d}: use max_k ≤ {d}")
    if ks is None:
        return default_ks(d, limit)
    grid = sorted({_positive_int(k, "ks") for k in ks})
    if not grid:
        raise InvalidInput("ks is empty: give at least one output dimension to try")
    if grid[-1] > d:
        raise InvalidInput(f"ks has k={grid[-1]} above the vector dimension d={d}")
    kept = [k for k in grid if k <= limit]
    if not kept:
        raise InvalidInput(f"every k in ks is above max_k={limit}: add a smaller k")
    return kept


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---- the served pipeline: index, candidates, re-scoring, and a held-out part ------------------

HELD_OUT_FRACTION = 0.3
"""Share of the labelled examples the tuner never chooses on, when no validation set is given."""

MIN_EXAMPLES_TO_SPLIT = 10
"""Below this many examples nothing is held out (the held-out score is then None)."""

SHORTLIST = 3
"""(β, γ, k) points of the exact sweep that go on to the served pipelines (index, re-scoring)."""


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
        them, defaults included, so nothing of an earlier fit stays; pairs choose no index spec
        (the collection keeps its own)."""
        names = ("beta", "gamma", "k", "index_spec", "rescore", "rescore_k", "candidates")
        chosen = {name: getattr(self, name) for name in names}
        if chosen["index_spec"] is None:
            del chosen["index_spec"]
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


def held_out_split(n: int, fraction: float = HELD_OUT_FRACTION, seed: int = 0) -> np.ndarray:
    """A seeded boolean mask of the examples held out (none below MIN_EXAMPLES_TO_SPLIT)."""
    if not 0 <= fraction < 1:
        raise InvalidInput(f"held_out must be in [0, 1), got {fraction!r}")
    mask = np.zeros(n, dtype=bool)
    if n >= MIN_EXAMPLES_TO_SPLIT and fraction > 0:
        chosen = np.random.default_rng(seed).permutation(n)[: max(1, round(fraction * n))]
        mask[chosen] = True
    return mask


def tune_served_pairs(
    kernel: WhiteningKernel,
    train: tuple[Any, Any, Any],
    held_out: tuple[Any, Any, Any] | None,
    **grid: Any,
) -> ServedTuning:
    """`tune_pairs` on the train pairs (a, b, scores); the chosen point's Spearman on the
    held-out pairs is what `/similarity` through the applied collection gives on them."""
    sweep = tune_pairs(kernel, *train, **grid)
    best = sweep.best
    held, raw_held = None, None
    if held_out is not None:
        a, b, gold = held_out
        point = copy.deepcopy(kernel).refit(beta=best.beta, gamma=best.gamma, k=best.k)
        held = _pair_spearman(point.transform(a), point.transform(b), gold)
        raw_held = _pair_spearman(unit_rows(np.asarray(a)), unit_rows(np.asarray(b)), gold)
    chosen = ServedPoint(
        best.beta, best.gamma, best.k, None, "kernel", best.k, None, None, best.score, held
    )
    n_held = 0 if held_out is None else len(held_out[2])
    return ServedTuning("spearman", sweep, [chosen], chosen, raw_held, len(train[2]), n_held)


def tune_served_retrieval(
    kernel: WhiteningKernel,
    doc_vectors: Any,
    doc_ids: Sequence[Hashable],
    train: tuple[Any, Sequence[Mapping[Hashable, float]]],
    held_out: tuple[Any, Sequence[Mapping[Hashable, float]]] | None,
    *,
    specs: Sequence[str] = ("Flat",),
    spaces: Sequence[str] = ("kernel",),
    k_eval: int = 10,
    candidates: Sequence[int | None] = (None,),
    progress: Callable[[int, int], None] | None = None,
    **grid: Any,
) -> ServedTuning:
    """Choose (β, γ, k, index spec, re-scoring space and rescore_k, candidates) on the train
    queries by running each pipeline as the server would: the real index on the k-dim codes
    proposes `candidates` per query (None: the default), which are re-scored
    (`index.rescoring`). The exact kernel-space sweep picks the SHORTLIST (β, γ, k) points
    first; held-out queries only score the chosen pipeline (and all pipelines, for the Pareto
    front), never choose. `progress` is called with (steps done, steps): the sweep, then each
    index built and searched."""
    d = _fitted_dimension(kernel)
    D = as_matrix(doc_vectors, d, "doc_vectors")
    ids = list(doc_ids)
    train_q, train_rel = as_matrix(train[0], d, "queries"), list(train[1])
    sweep = tune_retrieval(kernel, D, ids, train_q, train_rel, k_eval=k_eval, **grid)
    top = _positive_int(k_eval, "k_eval")
    id_array = np.empty(len(ids), dtype=object)
    id_array[:] = ids
    parts = [(train_q, train_rel)]
    if held_out is not None:
        parts.append((as_matrix(held_out[0], d, "validation queries"), list(held_out[1])))

    def lookup(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows, D[rows]

    def ndcg(found: np.ndarray, relevant: list[Mapping[Hashable, float]]) -> float:
        rankings = [id_array[row[row >= 0]].tolist() for row in found]
        return ndcg_at_k(rankings, relevant, top)

    shortlist = sorted(sweep.points, key=lambda p: (-p.score, p.k))[:SHORTLIST]
    unique_specs = list(dict.fromkeys(specs))
    steps = 1 + len(shortlist) * len(unique_specs)
    done = 1
    if progress is not None:
        progress(done, steps)
    pipelines: list[ServedPoint] = []
    for point in shortlist:
        work = copy.deepcopy(kernel).refit(beta=point.beta, gamma=point.gamma, k=point.k)
        codes = work.transform(D)
        full = rescoring.rescoring_kernel(work, None).k_
        for spec in unique_specs:
            index = VectorIndex.build(point.k, spec, codes, np.arange(len(ids)))
            options = [(space, None) for space in spaces if space != "kernel"]
            if "kernel" in spaces:
                options += [("kernel", point.k)] + ([("kernel", full)] if full > point.k else [])
            for space, rescore_k in options:
                rescorer = rescoring.rescoring_kernel(work, rescore_k)
                for fetch in dict.fromkeys(candidates) if space != "off" else [None]:
                    scores = [
                        ndcg(
                            rescoring.search(
                                work,
                                index,
                                queries,
                                top,
                                raw_lookup=None if space == "off" else lookup,
                                space=space,
                                rescorer=rescorer,
                                candidates=rescoring.floor_candidates(fetch, top),
                            )[1],
                            relevant,
                        )
                        for queries, relevant in parts
                    ]
                    pipelines.append(
                        ServedPoint(
                            point.beta,
                            point.gamma,
                            point.k,
                            spec,
                            space,
                            rescore_k,
                            fetch,
                            index.bytes_per_vector,
                            scores[0],
                            scores[1] if held_out is not None else None,
                        )
                    )
            done += 1
            if progress is not None:
                progress(done, steps)
    chosen = max(
        pipelines,
        key=lambda p: (p.train, -(p.bytes_per_vector or 0), -p.k, -(p.candidates or 0)),
    )
    raw_held = None
    if held_out is not None:
        queries, relevant = parts[1]
        raw = unit_rows(D)
        raw_held = ndcg(np.array(list(_top_k(unit_rows(queries), raw, top))), relevant)
    n_held = 0 if held_out is None else len(parts[1][1])
    return ServedTuning(sweep.metric, sweep, pipelines, chosen, raw_held, len(train_rel), n_held)


def _pair_spearman(A: np.ndarray, B: np.ndarray, gold: Any) -> float:
    return spearman(np.einsum("ij,ij->i", A, B, dtype=np.float64), np.asarray(gold, np.float64))
