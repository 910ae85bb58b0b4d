"""Compression benchmark: bytes per vector against quality, with and without re-scoring.

SciFact: `index.compression.report` (the same code as `POST /collections/{name}/report`) over k,
index specs and re-scoring, with nDCG@10 on the test queries. STS-B: Spearman of the test pairs
scored through each index's codes (what `/similarity` with `codes: true` returns) next to the
float kernel vectors at the same k. Reuters (`--reuters-docs`, default 100,000 sentences): the
label-free report of a collection at scale, timed, with its recall@10 column recomputed by an
independent exact search (numpy for the float rows, a bare FAISS SQ8 index for the SQ8 ones).
Served (`bench.served_bytes`): the settings down to 8 bytes per vector fitted on a collection
and queried through it, on SciFact and on the Reuters sentences.
"""

import argparse
import copy
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import context, data, report, served_bytes, stored
from bench.cache import EmbeddingCache
from index import Collection, Settings
from index.compression import CompressionReport
from index.compression import report as compression_report
from index.encoder import Encoder
from index.kernel import WhiteningKernel
from index.metrics import spearman
from index.vector_index import VectorIndex

log = logging.getLogger(__name__)

KS = (384, 256, 128, 64)
SPECS = ("Flat", "SQ8", "RaBitQ", "BFlat")
SMOKE_KS = (64, 32)
SMOKE_DOCS = 200
REUTERS_DOCS = 100_000
TASKS = ("scifact", "stsb", "reuters", "served")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", type=int, help="re-scored candidates per query")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument(
        "--reuters-docs",
        type=int,
        default=REUTERS_DOCS,
        help="Reuters sentences (reuters and served tasks)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every setting (served task)"
    )


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    ks = SMOKE_KS if args.smoke else KS
    if "scifact" in args.tasks:
        scifact(ctx.encoder, ctx.cache, ctx.root, ctx.out, ks, args.smoke, args.candidates)
    if "stsb" in args.tasks:
        stsb(ctx.encoder, ctx.cache, ctx.root, ctx.out, ks, args.smoke)
    if "reuters" in args.tasks:
        reuters(ctx, SMOKE_DOCS if args.smoke else args.reuters_docs)
    if "served" in args.tasks:
        rounds = 1 if args.smoke else args.rounds
        served_bytes.scifact(ctx, args.smoke, rounds)
        served_bytes.reuters(
            ctx, SMOKE_DOCS if args.smoke else args.reuters_docs, args.smoke, rounds
        )
    return 0


def reuters(ctx: context.RunContext, n_docs: int) -> Path:
    """The report of an n-sentence collection with the service's defaults (k=128, SQ8), timed."""
    texts = data.load_reuters_sentences(ctx.root, limit=n_docs)
    vectors = ctx.cache.encode(ctx.encoder, texts, "Reuters sentences")
    with tempfile.TemporaryDirectory() as folder:
        collection = Collection.create(
            Path(folder) / "reuters",
            ctx.encoder.model_id,
            vectors.shape[1],
            Settings(),
        )
        started = time.perf_counter()
        stored.store(collection, [str(i) for i in range(len(texts))], texts, vectors)
        collection.fit()
        store_seconds = time.perf_counter() - started
        started = time.perf_counter()
        result = collection.compression_report()
        seconds = time.perf_counter() - started
        rows, raw = collection.raw_vectors()
        kernel = collection.kernel
        collection.close()
    assert kernel is not None
    checks = _independent_recall(kernel, rows, raw, result)
    text = (
        f"# Compression report at scale: Reuters sentences\n\n{len(texts)} sentences stored "
        f"(raw vectors and kernel β=γ=0, k=128, SQ8 fitted) in {store_seconds:.0f} s from cached "
        f"vectors; `Collection.compression_report()` with its defaults (no labels: "
        f"{result.n_queries} documents drawn as queries, each one's own document left out) took "
        f"**{seconds:.1f} s**.\n\n{result.table()}\n\n"
        "Recall@10 recomputed independently (exact cosines by numpy on the raw vectors, a found "
        "document counting when it reaches the 10th best, so that duplicates tie; the "
        "float rows by numpy on the kernel's vectors, the SQ8 rows by a bare "
        "`faiss.IndexScalarQuantizer`, none through `VectorIndex` or re-scoring):\n\n"
        + report.markdown_table(["k", "index", "report", "independent"], checks)
        + "\n"
    )
    log.info("Reuters compression report of %d documents in %.1f s", len(texts), seconds)
    report.write_json(
        ctx.out / "compression_reuters.json",
        {
            "documents": len(texts),
            "store_seconds": store_seconds,
            "report_seconds": seconds,
            "load_average": os.getloadavg(),
            "rows": [dataclasses.asdict(row) for row in result.rows],
            "independent_recall": checks,
        },
    )
    return report.write_text(ctx.out / "compression_reuters.md", text)


def _independent_recall(
    kernel: WhiteningKernel, rows: np.ndarray, raw: np.ndarray, result: CompressionReport
) -> list[list[str]]:
    """Recall@10 of the report's un-rescored Flat and SQ8 rows, by other code."""
    import faiss

    order = np.argsort(rows)
    rows, raw = rows[order], raw[order]
    rng = np.random.default_rng(0)  # the report's sampling, seed 0
    picked = rng.choice(len(raw), min(result.n_queries, len(raw)), False)
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)

    exact = unit[picked] @ unit.T
    exact[np.arange(len(picked)), picked] = -np.inf  # the query's own document
    tenth = np.sort(exact, axis=1)[:, -10]

    def recall(found: np.ndarray) -> float:
        """Found documents whose exact cosine reaches the 10th best (ties count) per query."""
        scores = np.take_along_axis(exact, found, axis=1)
        return float(np.mean(np.minimum(10, (scores >= tenth[:, None] - 1e-6).sum(axis=1)) / 10))

    def top10(scores: np.ndarray) -> np.ndarray:
        scores[np.arange(len(picked)), picked] = -np.inf
        return np.argsort(-scores, axis=1)[:, :10]

    checks = []
    for row in result.rows:
        if row.rescore or row.index_spec not in ("Flat", "SQ8"):
            continue
        work = copy.deepcopy(kernel)
        work.refit(k=row.k)
        x = work.transform(raw)
        if row.index_spec == "Flat":
            found = top10(x[picked] @ x.T)
        else:
            sq = faiss.IndexScalarQuantizer(
                row.k, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            sq.train(x)
            sq.add(x)
            _, found = sq.search(x[picked], 11)
            found = np.array(
                [[f for f in line if f != p][:10] for line, p in zip(found, picked, strict=True)]
            )
        cells = [f"{100 * row.recall_at_10:.1f}", f"{100 * recall(found):.1f}"]
        checks.append([str(row.k), row.index_spec, *cells])
    return checks


def scifact(
    encoder: Encoder,
    cache: EmbeddingCache,
    root: Path,
    out: Path,
    ks: Sequence[int],
    smoke: bool,
    candidates: int | None,
) -> Path:
    beir = data.load_scifact(root, limit_docs=SMOKE_DOCS if smoke else None, splits=("test",))
    docs = cache.encode(encoder, beir.documents, "SciFact documents")
    queries = cache.encode(encoder, beir.queries, "SciFact queries")
    rows, judged = beir.judged("test")
    position = {doc_id: i for i, doc_id in enumerate(beir.doc_ids)}
    relevant = [{position[d]: g for d, g in grades.items() if g > 0} for grades in judged]
    kernel = WhiteningKernel().fit(docs)
    started = time.perf_counter()
    result = compression_report(
        kernel,
        np.arange(len(docs)),
        docs,
        ks=ks,
        specs=SPECS,
        queries=queries[rows],
        relevant=relevant,
        candidates=candidates,
    )
    seconds = time.perf_counter() - started
    text = (
        f"# Compression on SciFact\n\n{len(docs)} documents, {len(rows)} test queries, kernel "
        f"β=γ=0 fitted on the documents; re-scoring with "
        f"{candidates or 'max(4·top_k, 40)'} candidates. Report built in {seconds:.0f} s.\n\n"
        f"{result.table()}\n"
    )
    log.info("SciFact compression report in %.1f s", seconds)
    plot(result, out / "compression_scifact.png")
    report.write_json(
        out / "compression_scifact.json",
        {
            "smoke": smoke,
            "documents": len(docs),
            "queries": len(rows),
            "candidates": candidates,
            "seconds": seconds,
            "load_average": os.getloadavg(),
            "rows": [dataclasses.asdict(row) for row in result.rows],
        },
    )
    return report.write_text(
        out / "compression_scifact.md",
        text + "\n![nDCG@10 against bytes per vector](compression_scifact.png)\n",
    )


def plot(result: CompressionReport, path: Path) -> Path:
    """nDCG@10 against bytes per vector: a line per index spec and re-scoring, a point per k."""
    series = []
    for spec_number, spec in enumerate(SPECS):
        for on in (False, True):
            rows = sorted(
                (r for r in result.rows if r.index_spec == spec and r.rescore == on),
                key=lambda r: r.bytes_per_vector,
            )
            series.append(
                report.Series(
                    f"{spec}, re-scored" if on else spec,
                    [r.bytes_per_vector for r in rows],
                    [None if r.metric is None else 100 * r.metric for r in rows],
                    {"color": f"C{spec_number}", "linestyle": "-" if on else ":"},
                )
            )
    flat = max(result.rows, key=lambda r: r.bytes_per_vector)
    return report.line_plot(
        path,
        [
            report.Panel(
                series,
                "nDCG@10 × 100 (SciFact test)",
                hlines={"uncompressed (k=384, Flat)": 100 * (flat.metric or 0.0)},
            )
        ],
        xlabel="bytes per vector in the index (log scale; points are k = 64 … 384)",
        xticks=[16, 32, 64, 128, 256, 512, 1024, 2048],
        log2_x=True,
        suptitle="Quality per byte: index codes with and without re-scoring",
    )


def stsb(
    encoder: Encoder, cache: EmbeddingCache, root: Path, out: Path, ks: Sequence[int], smoke: bool
) -> Path:
    stsb_data = data.load_stsb(root, limit=200 if smoke else None)
    vectors = cache.encode(encoder, stsb_data.sentences, "STS-B sentences")
    test = stsb_data.splits["test"]
    a, b = vectors[test.first], vectors[test.second]
    header = ["k", "float kernel", *SPECS[1:]]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    spearmans: dict[str, dict[str, float]] = {}
    for k in ks:
        kernel = WhiteningKernel(k=k).fit(vectors)
        fa, fb = kernel.transform(a), kernel.transform(b)
        scores = {"float kernel": spearman((fa * fb).sum(axis=1), test.gold)}
        for spec in SPECS[1:]:
            index = VectorIndex.build(k, spec, kernel.transform(vectors), np.arange(len(vectors)))
            qa, qb = index.quantize(fa), index.quantize(fb)
            scores[spec] = spearman((qa * qb).sum(axis=1), test.gold)
        spearmans[str(k)] = scores
        cells = [f"{100 * value:.2f}" for value in scores.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    text = (
        "# STS-B through index codes\n\nSpearman × 100 on the test pairs; kernel β=γ=0 fitted "
        "on the unique sentences; each pair scored by the cosine of the index's decoded codes "
        "(`/similarity` with `codes: true`).\n\n" + "\n".join(lines) + "\n"
    )
    report.write_json(
        out / "compression_stsb.json",
        {
            "smoke": smoke,
            "pairs": len(test.gold),
            "load_average": os.getloadavg(),
            "spearman": spearmans,
        },
    )
    return report.write_text(out / "compression_stsb.md", text)
