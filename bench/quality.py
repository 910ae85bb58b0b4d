"""Quality benchmark: what each kernel setting and output size k keeps of the raw model's quality.

STS-B: kernel fitted on the unique sentences of all splits (no labels), Spearman × 100 on test,
β, γ tuned on dev. SciFact: kernel fitted on the documents, applied to documents and queries,
nDCG@10 and Recall@100 × 100 of exact cosine search on the test queries, β, γ tuned on the train
queries. Each setting is scored at every k (bench.quality_tasks); bench.quality_report writes the
tables and plots. This module is the command: data in, files out.
"""

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import context, data, report
from bench.context import RunContext
from bench.quality_grid import Grid, grid_json
from bench.quality_report import grid_plot, grid_table, header, headline, notes
from bench.quality_tasks import RetrievalTask, StsbTask, run_grid
from index.kernel import WhiteningKernel

log = logging.getLogger(__name__)

KS = (384, 256, 192, 128, 96, 64, 32)
SMOKE_KS = (384, 64, 32)
SMOKE_STSB_PAIRS = 100
"""Pairs kept per STS-B split in a smoke run."""
SMOKE_SCIFACT_DOCS = 150


@dataclass(frozen=True)
class Page:
    """What one task's result files say beside the grid: titles, and where β, γ were tuned."""

    name: str
    title: str
    plot_title: str
    figure: str
    """The plot's alt text in the Markdown."""
    tuning_label: str
    tuned_on: str


STSB = Page(
    "stsb",
    "Quality on STS-B (Spearman × 100, test split)",
    "STS-B test: Spearman against k",
    "Spearman against k",
    "dev",
    "the dev pairs",
)
SCIFACT = Page(
    "scifact",
    "Quality on SciFact (nDCG@10 / Recall@100 × 100, test queries)",
    "SciFact test: retrieval quality against k",
    "nDCG@10 and Recall@100 against k",
    "train",
    "the train queries",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=("stsb", "scifact"),
        default=["stsb", "scifact"],
        help="which tables to make (default: both)",
    )


def run(args: argparse.Namespace) -> int:
    ctx = context.from_args(args)
    ks = SMOKE_KS if args.smoke else KS
    for task in args.tasks:
        started = time.perf_counter()
        if task == "stsb":
            written = run_stsb(ctx, ks, args.smoke)
        else:
            written = run_scifact(ctx, ks, args.smoke)
        log.info(
            "%s done in %s: %s",
            task,
            report.format_seconds(time.perf_counter() - started),
            ", ".join(str(p) for p in written),
        )
    return 0


def run_stsb(ctx: RunContext, ks: Sequence[int], smoke: bool) -> list[Path]:
    timings = report.Timings()
    with timings.phase("load"):
        stsb = data.load_stsb(ctx.root, limit=SMOKE_STSB_PAIRS if smoke else None)
    with timings.phase("encode"):
        vectors = ctx.cache.encode(ctx.encoder, stsb.sentences, "STS-B sentences")
    with timings.phase("fit"):
        fitted = WhiteningKernel().fit(vectors)
    with timings.phase("grid"):
        grid = run_grid(StsbTask(stsb, vectors), fitted, ks)
    sizes = ", ".join(f"{split} {len(pairs)}" for split, pairs in stsb.splits.items())
    fitted_on = (
        f"the {len(stsb.sentences):,} unique sentences of train + dev + test (no labels); "
        f"pairs: {sizes}"
    )
    extra = {
        "n_sentences": len(stsb.sentences),
        "pairs": {split: len(pairs) for split, pairs in stsb.splits.items()},
    }
    return write(ctx, STSB, grid, timings, smoke, fitted_on, extra)


def run_scifact(ctx: RunContext, ks: Sequence[int], smoke: bool) -> list[Path]:
    timings = report.Timings()
    with timings.phase("load"):
        beir = data.load_scifact(ctx.root, limit_docs=SMOKE_SCIFACT_DOCS if smoke else None)
    with timings.phase("encode"):
        queries = ctx.cache.encode(ctx.encoder, beir.queries, "SciFact queries")
        docs = ctx.cache.encode(ctx.encoder, beir.documents, "SciFact documents")
    with timings.phase("fit"):
        fitted = WhiteningKernel().fit(docs)
    task = RetrievalTask(beir, docs, queries)
    with timings.phase("grid"):
        grid = run_grid(task, fitted, ks)
    judged = {split: len(task.judged[split][1]) for split in beir.qrels}
    fitted_on = (
        f'the {len(beir.documents):,} documents (title + " " + text), applied to '
        f"documents and queries; exact cosine search; queries judged: "
        f"test {judged.get('test', 0)}, train {judged.get('train', 0)}"
    )
    extra = {"n_documents": len(beir.documents), "queries_judged": judged}
    return write(ctx, SCIFACT, grid, timings, smoke, fitted_on, extra)


def write(
    ctx: RunContext,
    page: Page,
    grid: Grid,
    timings: report.Timings,
    smoke: bool,
    fitted_on: str,
    extra: dict[str, Any],
) -> list[Path]:
    """quality_<task>.png, .md and .json; the plot is timed, since the Markdown shows timings."""
    with timings.phase("plot"):
        png = grid_plot(grid, ctx.out / f"quality_{page.name}.png", page.plot_title)
    text = "\n\n".join(
        [
            header(page.title, ctx.encoder.model_id, fitted_on, smoke, timings),
            grid_table(grid, page.tuning_label),
            headline(grid),
            notes(grid, page.tuned_on),
            f"![{page.figure}](quality_{page.name}.png)",
        ]
    )
    md = report.write_text(ctx.out / f"quality_{page.name}.md", text)
    js = report.write_json(
        ctx.out / f"quality_{page.name}.json",
        {
            **grid_json(grid),
            "model": ctx.encoder.model_id,
            "smoke": smoke,
            **extra,
            "seconds": timings.seconds,
        },
    )
    return [md, png, js]
