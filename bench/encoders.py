"""Encoder backends side by side: short sentences and long abstracts, one-text latency, quality.

Every backend encodes the same texts in the same run, interleaved in rounds (backend A, B, C,
then again), since the machine's speed drifts by ±15 % over an hour; medians and ranges over
the rounds. Speed: Reuters sentences (about 34 tokens) and SciFact abstracts (title + text, most
cut at 256 tokens), and one sentence per call, back to back and after an idle pause (a server's
encoder waits between one client's queries: the next one encodes slower than back to back).
Quality, once per backend: STS-B test Spearman of raw cosine, SciFact nDCG@10 of exact raw
cosine over the whole corpus (the test queries), and agreement: the cosine of each sentence and
abstract vector to the first backend's. No embedding cache: encoding is what is measured.
"""

import argparse
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bench import context, data, report
from index.encoder import BACKENDS, Encoder
from index.metrics import ndcg_at_k, spearman
from index.validation import unit_rows

log = logging.getLogger(__name__)

SENTENCES = 3000
ABSTRACTS = 500
LATENCY_CALLS = 200
PAUSE_MS = 5.0  # about the gap a query's HTTP round trip leaves the server's encoder
ROUNDS = 3
SMOKE = {"sentences": 64, "abstracts": 16, "calls": 10, "pairs": 50, "docs": 60, "rounds": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="which to run"
    )
    parser.add_argument("--threads", type=int, help="encoder threads (default: one per core)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved speed rounds")
    parser.add_argument(
        "--pause-ms", type=float, default=PAUSE_MS, help="idle pause before each paused call"
    )


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    if args.pause_ms <= 0:
        raise SystemExit(f"--pause-ms must be above 0 ms (got {args.pause_ms:g})")
    smoke = args.smoke
    sentences = data.load_reuters_sentences(
        ctx.root, limit=SMOKE["sentences"] if smoke else SENTENCES
    )
    stsb = data.load_stsb(ctx.root, limit=SMOKE["pairs"] if smoke else None)
    scifact = data.load_scifact(ctx.root, limit_docs=SMOKE["docs"] if smoke else None)
    abstracts = scifact.documents[: SMOKE["abstracts"] if smoke else ABSTRACTS]
    calls = SMOKE["calls"] if smoke else LATENCY_CALLS
    rounds = SMOKE["rounds"] if smoke else args.rounds
    encoders = {
        b: Encoder(args.model, args.batch_size, b, threads=args.threads) for b in args.backends
    }
    load_seconds = {b: _seconds(lambda e=e: e.encode(["warm up"])) for b, e in encoders.items()}
    speed: dict[str, dict[str, list[float]]] = {b: {} for b in encoders}
    loads = []
    pauses = (0.0, args.pause_ms / 1000)
    for round_ in range(rounds):
        loads.append(os.getloadavg()[0])
        for backend, encoder in encoders.items():
            figures = speed[backend]
            figures.setdefault("sentences", []).append(
                len(sentences) / _seconds(lambda e=encoder: e.encode(sentences))
            )
            figures.setdefault("abstracts", []).append(
                len(abstracts) / _seconds(lambda e=encoder: e.encode(abstracts))
            )
            for pause in pauses if round_ % 2 == 0 else pauses[::-1]:
                one = _one_text_ms(encoder, sentences[:calls], pause)
                name = "paused_" if pause else ""
                figures.setdefault(f"{name}p50_ms", []).append(float(np.percentile(one, 50)))
                figures.setdefault(f"{name}p95_ms", []).append(float(np.percentile(one, 95)))
            log.info("%s: %s", backend, {k: round(v[-1], 1) for k, v in figures.items()})
    rows, reference = [], None
    for backend, encoder in encoders.items():
        agreement = np.vstack([encoder.encode(sentences), encoder.encode(abstracts)])
        if reference is None:
            reference = agreement
        cosines = (agreement * reference).sum(axis=1)
        rows.append(
            {
                "backend": backend,
                "load_seconds": load_seconds[backend],
                **{name: values for name, values in speed[backend].items()},
                "stsb_spearman": 100 * _stsb(encoder, stsb),
                "scifact_ndcg": 100 * _scifact(encoder, scifact),
                "cosine_to_first_mean": float(cosines.mean()),
                "cosine_to_first_min": float(cosines.min()),
            }
        )
        log.info("%s quality: %s", backend, rows[-1])
    sizes = {"sentences": len(sentences), "abstracts": len(abstracts), "calls": calls,
             "pause_ms": args.pause_ms}  # fmt: skip
    write(ctx.out, rows, args, sizes, loads, len(scifact.documents))
    return 0


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _one_text_ms(encoder: Encoder, texts: Sequence[str], pause: float) -> list[float]:
    """Milliseconds to encode each text alone, the calling thread sleeping `pause` seconds
    before each call (0: back to back)."""
    times = []
    for text in texts:
        if pause:
            time.sleep(pause)
        times.append(1000 * _seconds(lambda t=text: encoder.encode([t])))
    return times


def _stsb(encoder: Encoder, stsb: data.Stsb) -> float:
    vectors = encoder.encode(stsb.sentences)
    test = stsb.splits["test"]
    return spearman((vectors[test.first] * vectors[test.second]).sum(axis=1), test.gold)


def _scifact(encoder: Encoder, beir: data.Beir) -> float:
    """nDCG@10 of exact raw cosine on the test queries over the whole corpus."""
    docs = unit_rows(encoder.encode(beir.documents))
    rows, judged = beir.judged("test")
    queries = unit_rows(encoder.encode([beir.queries[r] for r in rows]))
    best = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    relevant = [{d: g for d, g in grades.items() if g > 0} for grades in judged]
    return ndcg_at_k([[beir.doc_ids[i] for i in found] for found in best], relevant, k=10)


def _median(values: Sequence[float], digits: int = 0) -> str:
    """The median, with the range over the rounds when there are several."""
    middle = f"{np.median(values):.{digits}f}"
    if len(values) < 2:
        return middle
    return f"{middle} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def table(rows: list[dict], pause_ms: float) -> str:
    """The Markdown table of the backends' figures (also rendered into bench/README.md)."""
    first = rows[0]["backend"]
    return report.markdown_table(
        [
            "backend",
            "sentences/s",
            "abstracts/s",
            "p50 ms (one sentence)",
            f"after {pause_ms:g} ms idle",
            "STS-B ×100",
            "SciFact nDCG@10 ×100",
            f"cosine to {first}: mean",
            "min",
            "first load s",
        ],
        [
            [
                r["backend"],
                _median(r["sentences"]),
                _median(r["abstracts"], 1),
                _median(r["p50_ms"], 1),
                _median(r["paused_p50_ms"], 1),
                f"{r['stsb_spearman']:.2f}",
                f"{r['scifact_ndcg']:.2f}",
                f"{r['cosine_to_first_mean']:.5f}",
                f"{r['cosine_to_first_min']:.5f}",
                f"{r['load_seconds']:.1f}",
            ]
            for r in rows
        ],
    )


def write(
    out: os.PathLike[str],
    rows: list[dict],
    args: argparse.Namespace,
    sizes: dict[str, int],
    loads: list[float],
    corpus: int,
) -> str:
    first = rows[0]["backend"]
    smoke = "**SMOKE RUN: tiny sizes, the numbers mean nothing.**\n\n" if args.smoke else ""
    shown = ", ".join(f"{x:.1f}" for x in loads)
    text = (
        f"# Encoder backends\n\n{smoke}Bare `Encoder.encode` (no HTTP), all backends in one run "
        f"on {os.cpu_count()} cores, {len(loads)} interleaved round(s) (median, range), load "
        f"average {shown} at the start of each round. Speed: the first {sizes['sentences']} "
        f"Reuters sentences and the first {sizes['abstracts']} SciFact abstracts, batch "
        f"{args.batch_size} (at most `TOKEN_BUDGET` tokens a batch on the exported backends); "
        f"one sentence per call, {sizes['calls']} calls back to back and {sizes['calls']} with the "
        f"thread idle {sizes['pause_ms']:g} ms before each (which comes first alternates by "
        "round). STS-B: Spearman × 100 of raw cosine on "
        f"the test pairs. SciFact: nDCG@10 × 100 of exact raw cosine over all {corpus} "
        f"abstracts, test queries. Agreement: cosine of each sentence and abstract vector to the "
        f"{first} backend's. First load: model load, plus the ONNX export where the cache had "
        "none.\n\n"
        f"{table(rows, sizes['pause_ms'])}\n"
    )
    report.write_json(
        os.path.join(out, "encoders.json"),
        {"smoke": args.smoke, "load_averages": loads, "sizes": sizes, "rows": rows},
    )
    return str(report.write_text(os.path.join(out, "encoders.md"), text))
