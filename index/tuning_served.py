"""Tuning as served: each pipeline (index, candidates, re-scoring) run as the server would.

`tune_served_retrieval` and `tune_served_pairs` choose on a train part and report a held-out part
(`index.tuning_split`) beside raw cosine: the score a tuned collection reports is the score its
queries get.
"""

import copy
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from index import rescoring
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k
from index.tuning import exact_top_k, pair_spearman, tune_pairs, tune_retrieval
from index.tuning_grid import fitted_dimension, positive_int
from index.tuning_results import ServedPoint, ServedTuning
from index.validation import as_matrix, unit_rows
from index.vector_index import VectorIndex

FINALISTS = 3
"""(β, γ, k) points of the exact sweep that go on to the served pipelines (index, re-scoring)."""


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
        held = pair_spearman(point.transform(a), point.transform(b), gold)
        raw_held = pair_spearman(unit_rows(np.asarray(a)), unit_rows(np.asarray(b)), gold)
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
    (`index.rescoring`). The exact kernel-space sweep picks the FINALISTS (β, γ, k) points
    first; held-out queries only score the chosen pipeline (and all pipelines, for the Pareto
    front), never choose. `progress` is called with (steps done, steps): the sweep, then each
    index built and searched."""
    d = fitted_dimension(kernel)
    D = as_matrix(doc_vectors, d, "doc_vectors")
    ids = list(doc_ids)
    train_q, train_rel = as_matrix(train[0], d, "queries"), list(train[1])
    sweep = tune_retrieval(kernel, D, ids, train_q, train_rel, k_eval=k_eval, **grid)
    top = positive_int(k_eval, "k_eval")
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

    finalists = sorted(sweep.points, key=lambda p: (-p.score, p.k))[:FINALISTS]
    unique_specs = list(dict.fromkeys(specs))
    steps = 1 + len(finalists) * len(unique_specs)
    done = 1
    if progress is not None:
        progress(done, steps)
    pipelines: list[ServedPoint] = []
    for point in finalists:
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
        raw_held = ndcg(np.array(list(exact_top_k(unit_rows(queries), raw, top))), relevant)
    n_held = 0 if held_out is None else len(parts[1][1])
    return ServedTuning(sweep.metric, sweep, pipelines, chosen, raw_held, len(train_rel), n_held)
