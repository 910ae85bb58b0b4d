"""Quality benchmark: what each kernel setting and output size k keeps of the raw model's quality.

STS-B: kernel fitted on the unique sentences of all splits (no labels), Spearman × 100 on test,
β, γ tuned on dev. SciFact: kernel fitted on the documents, applied to documents and queries,
nDCG@10 and Recall@100 × 100 of exact cosine search on the test queries, β, γ tuned on the train
queries. Each setting is scored at every k; the kernel, tuning and metrics are the library's own
(index.kernel, index.tuning, index.metrics), and SQ8 rows go through index.vector_index.
"""

import argparse
import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import context, data, report
from bench.cache import EmbeddingCache
from index.encoder import Encoder
from index.kernel import EIGEN_FLOOR, WhiteningKernel
from index.metrics import ndcg_at_k, recall_at_k, spearman
from index.tuning import DEFAULT_BETAS, DEFAULT_GAMMAS, TuningResult, tune_pairs, tune_retrieval
from index.vector_index import VectorIndex

log = logging.getLogger(__name__)

KS = (384, 256, 192, 128, 96, 64, 32)
SMOKE_KS = (384, 64, 32)
SMOKE_STSB_PAIRS = 100
"""Pairs kept per STS-B split in a smoke run."""
SMOKE_SCIFACT_DOCS = 150
HEADLINE_K = 128
NDCG_AT = 10
RECALL_AT = 100


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


# ---- tasks ------------------------------------------------------------------------------------


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
        self._judged = {split: beir.judged(split) for split in beir.qrels}

    def _queries(self, split: str) -> tuple[np.ndarray, list[dict[str, int]]]:
        rows, relevant = self._judged[split]
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


# ---- the grid ---------------------------------------------------------------------------------


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
    log.info("%s raw: %s", task.name, _format(grid.raw))
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
            "; ".join(f"{s.key} {_format(grid.rows[s.key][k].scores)}" for s in SETTINGS),
        )
    return grid


def _format(scores: Sequence[float]) -> str:
    return " / ".join(f"{100 * s:.2f}" for s in scores)


# ---- output -----------------------------------------------------------------------------------


def grid_table(grid: Grid, tuning_label: str) -> str:
    """The Markdown table: bytes per vector, raw, then a row per setting, a column per k."""
    header = ["setting", *(f"k={k}" for k in grid.ks)]
    rows: list[list[object]] = [
        ["bytes/vector, float32 (4·k)", *(4 * k for k in grid.ks)],
        ["bytes/vector, SQ8 (k)", *grid.ks],
        [
            f"raw cosine, no kernel ({4 * grid.dimension} B float32)",
            *(_format(grid.raw) if k == grid.dimension else None for k in grid.ks),
        ],
    ]
    for setting in SETTINGS:
        cells = grid.rows[setting.key]
        label = setting.label.replace("tuned β, γ", f"β, γ tuned on {tuning_label}")
        rows.append([label, *(_cell_text(cells[k], k) for k in grid.ks)])
        if setting.key == "tuned":
            rows.append(
                [
                    f"↳ chosen β, γ ({tuning_label} {grid.metrics[0]})",
                    *(
                        f"{cells[k].beta:g}, {cells[k].gamma:g} ({100 * cells[k].tuning_score:.2f})"
                        for k in grid.ks
                    ),
                ]
            )
    return report.markdown_table(header, rows)


def _cell_text(cell: Cell, k: int) -> str:
    text = _format(cell.scores)
    return text if cell.k == k else f"{text} (k={cell.k})"


def headline(grid: Grid) -> str:
    """One sentence: the tuned and rotation settings with SQ8 codes at k=128 against raw."""
    k = HEADLINE_K if HEADLINE_K in grid.ks else min(grid.ks)
    parts = []
    for key in ("tuned_sq8", "rotation_sq8"):
        cell = grid.rows[key][k]
        label = next(s.label for s in SETTINGS if s.key == key)
        change = 100 * (cell.scores[0] - grid.raw[0]) / grid.raw[0]
        parts.append(f"{label} {100 * cell.scores[0]:.2f} ({change:+.1f} % of raw)")
    ratio = 4 * grid.dimension / k
    return (
        f"At k={k} with SQ8 codes ({k} B per vector, {ratio:.0f}× smaller than "
        f"the raw {grid.dimension} float32, {4 * grid.dimension} B), {grid.metrics[0]} × 100 "
        "against raw "
        f"{100 * grid.raw[0]:.2f}: " + "; ".join(parts) + "."
    )


def grid_plot(grid: Grid, path: Path, title: str) -> Path:
    panels = []
    for m, metric in enumerate(grid.metrics):
        series = [
            report.Series(
                setting.label,
                [grid.rows[setting.key][k].k for k in grid.ks],
                [100 * grid.rows[setting.key][k].scores[m] for k in grid.ks],
                setting.style,
            )
            for setting in SETTINGS
        ]
        panels.append(
            report.Panel(
                series,
                ylabel=f"{metric} × 100",
                hlines={f"raw cosine (no kernel, d={grid.dimension})": 100 * grid.raw[m]},
                title=metric if len(grid.metrics) > 1 else None,
            )
        )
    return report.line_plot(
        path,
        panels,
        xlabel="k (output dimension of the kernel)",
        xticks=sorted(grid.ks),
        log2_x=True,
        top_axis=("bytes per vector, float32 (SQ8: a quarter)", 4),
        suptitle=title,
    )


def grid_json(grid: Grid) -> dict:
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


def grid_from_json(figures: dict) -> Grid:
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


def _notes(grid: Grid, tuning: str) -> str:
    ranks = sorted(set(grid.ranks.values()))
    rank_text = " or ".join(str(r) for r in ranks)
    return "\n".join(
        [
            f"- {' / '.join(grid.metrics)} × 100 on the test split.",
            f'- "(k=…)": with γ > 0 the kernel refuses k above its rank ({rank_text} meaningful '
            f"components of {grid.dimension}; eigenvalues below {EIGEN_FLOOR:g}·λ_max count as "
            "zero), since those directions would be amplified noise: the cell uses k = rank.",
            f"- Tuned: at each k, β, γ ∈ {{{', '.join(f'{b:g}' for b in DEFAULT_BETAS)}}} × "
            f"{{{', '.join(f'{g:g}' for g in DEFAULT_GAMMAS)}}} chosen by {grid.metrics[0]} on "
            f"{tuning} (index.tuning, ties to the smaller k); where k is above the rank, the "
            "candidates are k itself (γ = 0 only) and k = rank (every γ).",
            "- SQ8 codes: the kernel's vectors held in a FAISS SQ8 index "
            '(index.VectorIndex "SQ8", trained on the corpus), scored as the index scores them '
            "(cosine of the decoded codes).",
            "- Bytes are code bytes per vector; the FAISS id map adds 8 B per vector (the id), "
            "and SQ8 keeps 2·k floats of ranges once per index.",
        ]
    )


# ---- the benchmark ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=("stsb", "scifact"),
        default=["stsb", "scifact"],
        help="which tables to make (default: both)",
    )


def run(args: argparse.Namespace) -> int:
    run_context = context.from_args(args)
    encoder, cache, root, out = (
        run_context.encoder,
        run_context.cache,
        run_context.root,
        run_context.out,
    )
    ks = SMOKE_KS if args.smoke else KS
    for task in args.tasks:
        started = time.perf_counter()
        if task == "stsb":
            written = run_stsb(encoder, cache, root, out, ks, args.smoke)
        else:
            written = run_scifact(encoder, cache, root, out, ks, args.smoke)
        log.info(
            "%s done in %s: %s",
            task,
            report.format_seconds(time.perf_counter() - started),
            ", ".join(str(p) for p in written),
        )
    return 0


def _header(title: str, model: str, fitted_on: str, smoke: bool, timings: report.Timings) -> str:
    scope = "SMOKE RUN (tiny sizes, numbers not meaningful). " if smoke else ""
    return (
        f"# {title}\n\n{scope}Model {model}; kernel (index.WhiteningKernel) fitted on "
        f"{fitted_on}. Generated by `python -m bench quality{' --smoke' if smoke else ''}` "
        f"on {time.strftime('%Y-%m-%d')}; wall time: {timings.markdown()} "
        "(encoding shows as cache time when the vectors came from bench/.cache)."
    )


def run_stsb(
    encoder: Encoder,
    cache: EmbeddingCache,
    root: Path,
    out: Path,
    ks: Sequence[int],
    smoke: bool,
) -> list[Path]:
    timings = report.Timings()
    with timings.phase("load"):
        stsb = data.load_stsb(root, limit=SMOKE_STSB_PAIRS if smoke else None)
    with timings.phase("encode"):
        vectors = cache.encode(encoder, stsb.sentences, "STS-B sentences")
    with timings.phase("fit"):
        fitted = WhiteningKernel().fit(vectors)
    task = StsbTask(stsb, vectors)
    with timings.phase("grid"):
        grid = run_grid(task, fitted, ks)
    sizes = ", ".join(f"{split} {len(pairs)}" for split, pairs in stsb.splits.items())
    with timings.phase("plot"):
        png = grid_plot(grid, out / "quality_stsb.png", "STS-B test: Spearman against k")
    text = "\n\n".join(
        [
            _header(
                "Quality on STS-B (Spearman × 100, test split)",
                encoder.model_id,
                f"the {len(stsb.sentences):,} unique sentences of train + dev + test (no labels); "
                f"pairs: {sizes}",
                smoke,
                timings,
            ),
            grid_table(grid, "dev"),
            headline(grid),
            _notes(grid, "the dev pairs"),
            "![Spearman against k](quality_stsb.png)",
        ]
    )
    md = report.write_text(out / "quality_stsb.md", text)
    js = report.write_json(
        out / "quality_stsb.json",
        {
            **grid_json(grid),
            "model": encoder.model_id,
            "smoke": smoke,
            "n_sentences": len(stsb.sentences),
            "pairs": {split: len(pairs) for split, pairs in stsb.splits.items()},
            "seconds": timings.seconds,
        },
    )
    return [md, png, js]


def run_scifact(
    encoder: Encoder,
    cache: EmbeddingCache,
    root: Path,
    out: Path,
    ks: Sequence[int],
    smoke: bool,
) -> list[Path]:
    timings = report.Timings()
    with timings.phase("load"):
        beir = data.load_scifact(root, limit_docs=SMOKE_SCIFACT_DOCS if smoke else None)
    with timings.phase("encode"):
        queries = cache.encode(encoder, beir.queries, "SciFact queries")
        docs = cache.encode(encoder, beir.documents, "SciFact documents")
    with timings.phase("fit"):
        fitted = WhiteningKernel().fit(docs)
    task = RetrievalTask(beir, docs, queries)
    with timings.phase("grid"):
        grid = run_grid(task, fitted, ks)
    judged = {split: len(task._judged[split][1]) for split in beir.qrels}
    with timings.phase("plot"):
        png = grid_plot(
            grid, out / "quality_scifact.png", "SciFact test: retrieval quality against k"
        )
    text = "\n\n".join(
        [
            _header(
                "Quality on SciFact (nDCG@10 / Recall@100 × 100, test queries)",
                encoder.model_id,
                f'the {len(beir.documents):,} documents (title + " " + text), applied to '
                f"documents and queries; exact cosine search; queries judged: "
                f"test {judged.get('test', 0)}, train {judged.get('train', 0)}",
                smoke,
                timings,
            ),
            grid_table(grid, "train"),
            headline(grid),
            _notes(grid, "the train queries"),
            "![nDCG@10 and Recall@100 against k](quality_scifact.png)",
        ]
    )
    md = report.write_text(out / "quality_scifact.md", text)
    js = report.write_json(
        out / "quality_scifact.json",
        {
            **grid_json(grid),
            "model": encoder.model_id,
            "smoke": smoke,
            "n_documents": len(beir.documents),
            "queries_judged": judged,
            "seconds": timings.seconds,
        },
    )
    return [md, png, js]
