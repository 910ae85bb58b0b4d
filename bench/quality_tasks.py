"""Scoring the quality grid: the STS-B and SciFact tasks, and every setting scored at every k.

The kernel, tuning and metrics are the library's own (index.kernel, index.tuning, index.metrics),
and SQ8 rows go through index.vector_index, so the grid measures what the service would serve.
"""

import copy
import logging
import time
from collections.abc import Sequence

import numpy as np

from bench import data
from bench.quality_grid import SETTINGS, Cell, Grid, format_scores
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k, recall_at_k, spearman
from index.tuning import tune_pairs, tune_retrieval
from index.tuning_grid import DEFAULT_BETAS
from index.tuning_results import TuningResult
from index.vector_index import VectorIndex

log = logging.getLogger(__name__)

NDCG_AT = 10
RECALL_AT = 100


class StsbTask:
    """Spearman of pair cosines against gold scores: tuned on dev, reported on test."""

    name = "stsb"
    metrics = ("Spearman",)
    tuning_split = "dev"

    def __init__(self, stsb: data.Stsb, vectors: np.ndarray) -> None:
        self.stsb = stsb
        self.vectors = vectors  # one row per unique sentence: the corpus the kernel is fitted on

    def _pairs(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = self.stsb.splits[split]
        return self.vectors[pairs.first], self.vectors[pairs.second], pairs.gold

    def raw(self) -> tuple[float, ...]:
        a, b, gold = self._pairs("test")
        return (spearman(_cosines(_unit(a), _unit(b)), gold),)

    def evaluate(self, kernel: WhiteningKernel, index_spec: str) -> tuple[float, ...]:
        a, b, gold = self._pairs("test")
        a, b = kernel.transform(a), kernel.transform(b)
        if index_spec != "Flat":
            corpus = kernel.transform(self.vectors)
            index = VectorIndex.build(kernel.k_, index_spec, corpus, np.arange(len(corpus)))
            a, b = index.quantize(a), index.quantize(b)
        return (spearman(_cosines(a, b), gold),)

    def tune(self, fitted: WhiteningKernel, ks: Sequence[int]) -> TuningResult:
        a, b, gold = self._pairs(self.tuning_split)
        return tune_pairs(fitted, a, b, gold, ks=ks)


class RetrievalTask:
    """nDCG@10 and Recall@100 of exact cosine search: tuned on train queries, reported on test."""

    name = "scifact"
    metrics = (f"nDCG@{NDCG_AT}", f"Recall@{RECALL_AT}")
    tuning_split = "train"

    def __init__(self, beir: data.Beir, doc_vectors: np.ndarray, query_vectors: np.ndarray):
        self.beir = beir
        self.doc_vectors = doc_vectors
        self.query_vectors = query_vectors
        self.doc_ids = np.array(beir.doc_ids, dtype=object)
        # by split: the rows of the judged queries and their judgments
        self.judged = {split: beir.judged(split) for split in beir.qrels}

    def _queries(self, split: str) -> tuple[np.ndarray, list[dict[str, int]]]:
        rows, relevant = self.judged[split]
        return self.query_vectors[rows], relevant

    def _score(self, found: np.ndarray, relevant: list[dict[str, int]]) -> tuple[float, ...]:
        rankings = [self.doc_ids[row[row >= 0]].tolist() for row in found]
        return ndcg_at_k(rankings, relevant, NDCG_AT), recall_at_k(rankings, relevant, RECALL_AT)

    def raw(self) -> tuple[float, ...]:
        queries, relevant = self._queries("test")
        return self._score(_search(_unit(queries), _unit(self.doc_vectors), RECALL_AT), relevant)

    def evaluate(self, kernel: WhiteningKernel, index_spec: str) -> tuple[float, ...]:
        queries, relevant = self._queries("test")
        docs, queries = kernel.transform(self.doc_vectors), kernel.transform(queries)
        if index_spec == "Flat":
            found = _search(queries, docs, RECALL_AT)
        else:
            index = VectorIndex.build(kernel.k_, index_spec, docs, np.arange(len(docs)))
            _, found = index.search(queries, min(RECALL_AT, len(docs)))
        return self._score(found, relevant)

    def tune(self, fitted: WhiteningKernel, ks: Sequence[int]) -> TuningResult:
        queries, relevant = self._queries(self.tuning_split)
        return tune_retrieval(
            fitted, self.doc_vectors, self.beir.doc_ids, queries, relevant, ks=ks, k_eval=NDCG_AT
        )


def _unit(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise inner products of unit vectors, in float64."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def _search(queries: np.ndarray, docs: np.ndarray, top: int) -> np.ndarray:
    """Rows of each query's `top` best documents by inner product, best first (exact, numpy)."""
    top = min(top, len(docs))
    scores = queries @ docs.T
    part = np.argpartition(-scores, top - 1, axis=1)[:, :top]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def run_grid(task: StsbTask | RetrievalTask, fitted: WhiteningKernel, ks: Sequence[int]) -> Grid:
    """Score the raw vectors, then every setting at every k (tuned settings tuned per k).

    With γ > 0 the kernel refuses k above its rank (the meaningful components of Σ_β); such a
    cell uses k = rank instead, and records it.
    """
    betas = sorted({s.beta for s in SETTINGS if not s.tuned} | set(DEFAULT_BETAS))
    ranks = {
        beta: copy.deepcopy(fitted).refit(beta=beta, gamma=0.0, k=None).rank_ for beta in betas
    }
    grid = Grid(task.name, task.metrics, tuple(ks), fitted.n_features_in_, task.raw(), ranks)
    log.info("%s raw: %s", task.name, format_scores(grid.raw))
    work = copy.deepcopy(fitted)  # refit caches one eigendecomposition per beta on the copy
    for k in ks:
        # tune_pairs / tune_retrieval skip γ > 0 at k > rank: offer k = rank as well there.
        tuning_ks = sorted({k} | {rank for rank in ranks.values() if rank < k})
        started = time.perf_counter()
        best = task.tune(fitted, tuning_ks).best
        log.info(
            "%s k=%d: tuned on %s in %.1f s: beta=%g gamma=%g k=%d (%.2f)",
            task.name,
            k,
            task.tuning_split,
            time.perf_counter() - started,
            best.beta,
            best.gamma,
            best.k,
            100 * best.score,
        )
        for setting in SETTINGS:
            if setting.tuned:
                beta, gamma, k_used, tuning_score = best.beta, best.gamma, best.k, best.score
            else:
                beta, gamma, tuning_score = setting.beta, setting.gamma, None
                k_used = k if gamma == 0 or k <= ranks[beta] else ranks[beta]
            work.refit(beta=beta, gamma=gamma, k=k_used)
            scores = task.evaluate(work, setting.index_spec)
            grid.rows.setdefault(setting.key, {})[k] = Cell(
                scores, k_used, beta, gamma, tuning_score
            )
        log.info(
            "%s k=%d: %s",
            task.name,
            k,
            "; ".join(f"{s.key} {format_scores(grid.rows[s.key][k].scores)}" for s in SETTINGS),
        )
    return grid
