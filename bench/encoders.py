"""Encoder backends side by side: throughput, one-sentence latency, STS-B, agreement with torch.

Every backend encodes the same texts in the same run (the machine's speed drifts by ±15% over
an hour, so only figures of one run compare). No embedding cache: encoding is what is measured.
"""

import argparse
import logging
import os
import time

import numpy as np

from bench import context, data, report
from index.encoder import BACKENDS, Encoder
from index.metrics import spearman

log = logging.getLogger(__name__)

THROUGHPUT_TEXTS = 3000
LATENCY_CALLS = 200
SMOKE = {"texts": 64, "calls": 10, "pairs": 50}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="which to run"
    )
    parser.add_argument("--threads", type=int, help="encoder threads (default: one per core)")


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    n_texts = SMOKE["texts"] if args.smoke else THROUGHPUT_TEXTS
    calls = SMOKE["calls"] if args.smoke else LATENCY_CALLS
    reuters = data.load_reuters_sentences(ctx.root, limit=n_texts)
    stsb = data.load_stsb(ctx.root, limit=SMOKE["pairs"] if args.smoke else None)
    test = stsb.splits["test"]
    rows, reference = [], None
    for backend in args.backends:
        encoder = Encoder(args.model, args.batch_size, backend, threads=args.threads)
        started = time.perf_counter()
        encoder.encode(["warm up"])
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        vectors = encoder.encode(reuters)
        throughput = len(reuters) / (time.perf_counter() - started)
        latencies = []
        for text in reuters[:calls]:
            started = time.perf_counter()
            encoder.encode([text])
            latencies.append(1000 * (time.perf_counter() - started))
        sentences = encoder.encode(stsb.sentences)
        cosines = (sentences[test.first] * sentences[test.second]).sum(axis=1)
        if reference is None:
            reference = vectors
        agreement = (vectors * reference).sum(axis=1)
        row = {
            "backend": backend,
            "load_seconds": load_seconds,
            "texts_per_second": throughput,
            "p50_ms": float(np.percentile(latencies, 50)),
            "p95_ms": float(np.percentile(latencies, 95)),
            "stsb_spearman": 100 * spearman(cosines, test.gold),
            "cosine_to_first_mean": float(agreement.mean()),
            "cosine_to_first_min": float(agreement.min()),
        }
        log.info("%s", row)
        rows.append(row)
    write(ctx.out, rows, args, n_texts, calls)
    return 0


def table(rows: list[dict]) -> str:
    """The Markdown table of the backends' figures (also rendered into bench/README.md)."""
    first = rows[0]["backend"]
    return report.markdown_table(
        [
            "backend",
            "texts/s (batch)",
            "p50 ms (one text)",
            "p95 ms",
            "STS-B ×100",
            f"cosine to {first}: mean",
            "min",
            "first load s",
        ],
        [
            [
                r["backend"],
                f"{r['texts_per_second']:.0f}",
                f"{r['p50_ms']:.1f}",
                f"{r['p95_ms']:.1f}",
                f"{r['stsb_spearman']:.2f}",
                f"{r['cosine_to_first_mean']:.5f}",
                f"{r['cosine_to_first_min']:.5f}",
                f"{r['load_seconds']:.1f}",
            ]
            for r in rows
        ],
    )


def write(out: os.PathLike[str], rows: list[dict], args: argparse.Namespace, n: int, calls: int):
    first = rows[0]["backend"]
    table_text = table(rows)
    smoke = "**SMOKE RUN: tiny sizes, the numbers mean nothing.**\n\n" if args.smoke else ""
    text = (
        f"# Encoder backends\n\n{smoke}Bare `Encoder.encode` (no HTTP), all backends in one run "
        f"on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end. "
        f"Throughput: the first {n} Reuters sentences, batch {args.batch_size}. Latency: one "
        f"sentence per call, {calls} calls. STS-B: Spearman × 100 of raw cosine on the test "
        f"pairs. Agreement: cosine of each Reuters vector to the {first} backend's. First load: "
        "model load, plus the ONNX export where the cache had none.\n\n"
        f"{table_text}\n"
    )
    report.write_json(
        os.path.join(out, "encoders.json"),
        {"smoke": args.smoke, "load_average": os.getloadavg(), "rows": rows},
    )
    return report.write_text(os.path.join(out, "encoders.md"), text)
