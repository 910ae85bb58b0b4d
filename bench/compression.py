"""Compression benchmark: bytes per vector against quality, with and without re-scoring.

SciFact: `index.compression.report` (the same code as `POST /collections/{name}/report`) over k,
index specs and re-scoring, with nDCG@10 on the test queries. STS-B: Spearman of the test pairs
scored through each index's codes (what `/similarity` with `codes: true` returns) next to the
float kernel vectors at the same k.
"""

import argparse
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import context, data, report
from bench.cache import EmbeddingCache
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--candidates", type=int, help="re-scored candidates per query")


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    ks = SMOKE_KS if args.smoke else KS
    scifact(ctx.encoder, ctx.cache, ctx.root, ctx.out, ks, args.smoke, args.candidates)
    stsb(ctx.encoder, ctx.cache, ctx.root, ctx.out, ks, args.smoke)
    return 0


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
    for k in ks:
        kernel = WhiteningKernel(k=k).fit(vectors)
        fa, fb = kernel.transform(a), kernel.transform(b)
        cells = [f"{100 * spearman((fa * fb).sum(axis=1), test.gold):.2f}"]
        for spec in SPECS[1:]:
            index = VectorIndex.build(k, spec, kernel.transform(vectors), np.arange(len(vectors)))
            qa, qb = index.quantize(fa), index.quantize(fb)
            cells.append(f"{100 * spearman((qa * qb).sum(axis=1), test.gold):.2f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    text = (
        "# STS-B through index codes\n\nSpearman × 100 on the test pairs; kernel β=γ=0 fitted "
        "on the unique sentences; each pair scored by the cosine of the index's decoded codes "
        "(`/similarity` with `codes: true`).\n\n" + "\n".join(lines) + "\n"
    )
    return report.write_text(out / "compression_stsb.md", text)
