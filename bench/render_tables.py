"""The renderer of each `<!-- render: NAME -->` block: one function a table, from result files.

Every function takes the results folder and returns the block's Markdown; RENDERERS names them
as the documents do. bench/render.py finds the blocks and puts these in.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    cluster,
    cluster_faults,
    cluster_http,
    distributed_report,
    peers_report,
    report,
    served_tuning,
    suite,
)
from bench.encoders import table as encoders_table
from bench.quality_grid import grid_from_json
from bench.quality_report import grid_table, headline
from bench.served_bytes_report import budgets as served_bytes_budgets
from bench.served_bytes_report import table as served_bytes_table
from index.encoder import DEFAULT_BACKEND

Renderer = Callable[[Path], str]


def load(results: Path, name: str) -> Any:
    return json.loads((results / name).read_text(encoding="utf-8"))


def stsb_summary(results: Path) -> str:
    """README's STS-B table: the reference cells of the quality grid."""
    grid = load(results, "quality_stsb.json")
    rows = grid["rows"]

    def cell(key: str, k: int) -> str:
        return f"{100 * rows[key][str(k)]['scores'][0]:.2f}"

    tuned = rows["tuned"]["128"]
    return report.markdown_table(
        ["transform", "k=384", "256", "192", "128"],
        [
            ["raw cosine", f"{100 * grid['raw'][0]:.2f}", None, None, None],
            ["β=γ=0 (rotation)", cell("rotation", 384), cell("rotation", 256), None,
             cell("rotation", 128)],
            ["β=γ=1 (classic whitening)", None, None, None, cell("whiten", 128)],
            ["β=γ=0.5", None, None, cell("half", 192), None],
            [f"tuned on dev, k ≤ 128 (β={tuned['beta']:g}, γ={tuned['gamma']:g})", None, None,
             None, cell("tuned", 128)],
        ],
    )  # fmt: skip


SUMMARY_ROWS = (
    (384, "Flat", False),
    (128, "Flat", False),
    (128, "Flat", True),
    (128, "SQ8", False),
    (128, "SQ8", True),
    (128, "RaBitQ", False),
    (128, "RaBitQ", True),
    (128, "BFlat", False),
    (128, "BFlat", True),
    (64, "SQ8", True),
)
"""The rows of the SciFact compression grid that README.md shows; (128, SQ8, on) is the default."""


def compression_summary(results: Path) -> str:
    """README's quality-per-byte table: rows of bench/results/compression_scifact.json."""
    figures = load(results, COMPRESSION)
    rows = {(r["k"], r["index_spec"], r["rescore"]): r for r in figures["rows"]}
    lines = []
    for key in SUMMARY_ROWS:
        row = rows[key]
        cells = [
            str(row["k"]),
            row["index_spec"] + (" (uncompressed)" if key == SUMMARY_ROWS[0] else ""),
            "on" if row["rescore"] else "off",
            f"{row['bytes_per_vector']:.0f}",
            f"{100 * row['recall_at_10']:.1f}",
            f"{row['latency_ms']:.2f}",
            f"{100 * row['metric']:.2f}",
        ]
        lines.append([f"**{c}**" for c in cells] if key == (128, "SQ8", True) else cells)
    table = report.markdown_table(
        ["k", "index", "re-score", "bytes/vector", "recall@10 ×100", "ms/query", "nDCG@10 ×100"],
        lines,
    )
    load_average = figures["load_average"][0]
    cores = os.cpu_count()
    return (
        f"{table}\n\nLoad average {load_average:.1f} at the end of the run "
        f"(`bench/results/{COMPRESSION}`)"
        + (
            f": **above the machine's {cores} cores, so the ms/query column is mostly waiting "
            "for the CPU**; the quality columns do not depend on the load."
            if cores and load_average > cores
            else "."
        )
    )


COMPRESSION = "compression_scifact.json"


def compression_reuters(results: Path) -> str:
    """README's sentence on the report at scale: its time and the k=128 SQ8 rows."""
    figures = load(results, "compression_reuters.json")
    rows = {(r["k"], r["index_spec"], r["rescore"]): r for r in figures["rows"]}
    off, on = rows[(128, "SQ8", False)], rows[(128, "SQ8", True)]
    return (
        f"On the first {figures['documents']:,} Reuters sentences the default report "
        f"({len(figures['rows'])} rows) took {figures['report_seconds']:.1f} s, and at k=128 SQ8 "
        f"recall@10 is {100 * off['recall_at_10']:.1f} without re-scoring and "
        f"{100 * on['recall_at_10']:.1f} with it ({off['latency_ms']:.2f} → "
        f"{on['latency_ms']:.2f} ms per query, load average {figures['load_average'][0]:.1f} at "
        "the end of the run)."
    )


def compression_stsb(results: Path) -> str:
    """README's sentence on STS-B through the codes: float kernel against SQ8 at k=128."""
    at_128 = load(results, "compression_stsb.json")["spearman"]["128"]
    return (
        f"at k=128, {100 * at_128['float kernel']:.2f} with the float kernel and "
        f"{100 * at_128['SQ8']:.2f} with SQ8 codes (`bench/results/compression_stsb.json`)."
    )


def quality_grid(name: str, tuning_label: str) -> Renderer:
    """bench/README's full quality table of one task, with its headline sentence."""

    def render(results: Path) -> str:
        grid = grid_from_json(load(results, name))
        return grid_table(grid, tuning_label) + "\n\n" + headline(grid)

    return render


SPEED_BACKENDS = ("openvino", "onnx", "torch", "onnx-int8")
SPEED_FILES = {backend: f"speed_10000_{backend}" for backend in SPEED_BACKENDS}
"""Each backend's result file (without .json): the table's rows and the CPU line name them."""


def speed_backends(results: Path) -> str:
    """bench/README's speed table: one row per backend from speed_10000_<backend>.json."""
    rows = []
    for backend, name in SPEED_FILES.items():
        figures = load(results, f"{name}.json")
        by_batching = {run["batching"]: run for run in figures["runs"]}
        off = by_batching.get("off") or figures["runs"][0]
        on = by_batching.get("2 ms")
        bare, ingest = figures["bare"]["docs_per_second"], figures["ingest"]["docs_per_second"]

        def per_clients(run: dict[str, Any]) -> str:
            return " / ".join(f"{level['queries_per_second']:.0f}" for level in run["concurrent"])

        ratio = "–"
        if on is not None:
            on_16, off_16 = (run["concurrent"][-1]["queries_per_second"] for run in (on, off))
            ratio = f"{on_16 / off_16:.2f}"
        rows.append(
            [
                f"`{backend}`" + (" (default)" if backend == DEFAULT_BACKEND else ""),
                f"{bare:.0f}",
                f"{ingest:.0f}",
                f"{ingest / bare:.2f}",
                f"{off['single']['wall_ms']['p50']:.1f} / {off['single']['wall_ms']['p95']:.1f}",
                off["batching"],
                per_clients(off),
                "–" if on is None else per_clients(on),
                ratio,
                f"{figures['load_average_start'][0]:.1f}",
            ]
        )
    return report.markdown_table(
        [
            "backend",
            "bare `encode` docs/s",
            "service ingest docs/s",
            "× bare",
            "one query over HTTP, p50 / p95 ms",
            "query batching",
            "q/s at 1 / 4 / 16 clients",
            "same, 2 ms batching",
            "16 clients, on ÷ off",
            "load average at start",
        ],
        rows,
    )


def encoders(results: Path) -> str:
    figures = load(results, "encoders.json")
    return encoders_table(figures["rows"], figures["sizes"]["pause_ms"])


def peers(name: str) -> Renderer:
    def render(results: Path) -> str:
        return peers_report.tables(load(results, f"{name}.json"))

    return render


def served_bytes(name: str) -> Renderer:
    def render(results: Path) -> str:
        return served_bytes_table(load(results, f"served_bytes_{name}.json"))

    return render


def tuned_as_served(results: Path) -> str:
    return served_tuning.table(load(results, "served_tuning.json"))


def served_budgets(results: Path) -> str:
    return served_bytes_budgets(
        {name: load(results, f"served_bytes_{name}.json") for name in ("scifact", "reuters")}
    )


def distributed(results: Path) -> str:
    return distributed_report.table(load(results, "distributed.json"))


def two_nodes(results: Path) -> str:
    return distributed_report.two_nodes(load(results, "two_nodes.json"))


def sharded_answers(results: Path) -> str:
    return cluster.table(load(results, "cluster.json"))


def cluster_over_http(results: Path) -> str:
    return cluster_http.table(load(results, "cluster_http.json"))


def plan_shards(results: Path) -> str:
    return cluster_http.plan(load(results, "cluster_http.json"))


def shard_kills(results: Path) -> str:
    return cluster_faults.table(load(results, "cluster_faults.json"))


def plan_100m(results: Path) -> str:
    return distributed_report.plan(
        *(load(results, f"{name}.json") for name in ("distributed", "encoders", "statistics"))
    )


def docker_smoke(results: Path) -> str:
    """The smoke test's own figures (tests/docker/smoke.sh with WS_SMOKE_RESULT)."""
    run = load(results, "docker_smoke.json")
    cached, steps = run["build_steps_cached"]
    return (
        f"`bash tests/docker/smoke.sh` "
        f"({'from nothing' if run['fresh'] else 'with its build cache'}; "
        f"`bench/results/docker_smoke.json`, finished {run['finished']}, {run['cores']} cores): "
        f"passed in {run['seconds']:.0f} s. The image built in {run['build_seconds']:.0f} s "
        f"({cached} of {steps} steps from cache) and is **{run['image_bytes'] / 1e9:.2f} GB**; "
        f"healthy {run['up_seconds']:.1f} s after `compose up`; a container that has loaded the "
        f"model and 6 documents: {run['memory_after_6_documents']}. The Ray image: built in "
        f"{run['ray_build_seconds']:.0f} s, {run['ray_image_bytes'] / 1e9:.2f} GB; its two nodes "
        f"up in {run['ray_up_seconds']:.1f} s."
    )


def suite_run(results: Path) -> str:
    return suite.markdown(load(results, "suite.json"))


def measured(renderer: Renderer, *names: str) -> Renderer:
    """`renderer`'s block followed by the CPU of each result file it shows times from: a reader
    who re-runs it on another machine must see that the rates were another host's."""

    def render(results: Path) -> str:
        files: dict[str, list[str]] = {}
        for name in names:
            files.setdefault(report.cpu(load(results, f"{name}.json")), []).append(name)
        hosts = " ".join(
            f"{cpu.rstrip('.')} ({', '.join(f'`{name}.json`' for name in group)})."
            for cpu, group in files.items()
        )
        return f"{renderer(results).rstrip()}\n\n{hosts}\n"

    return render


RENDERERS: dict[str, Renderer] = {
    "stsb-summary": stsb_summary,
    "compression-summary": measured(compression_summary, "compression_scifact"),
    "compression-reuters": measured(compression_reuters, "compression_reuters"),
    "compression-stsb": compression_stsb,
    "quality-stsb": quality_grid("quality_stsb.json", "dev"),
    "quality-scifact": quality_grid("quality_scifact.json", "train"),
    "speed-backends": measured(speed_backends, *SPEED_FILES.values()),
    "encoders": measured(encoders, "encoders"),
    "peers": peers("peers"),
    "peers-shared": peers("peers_shared"),
    "peers-reuters-20000": peers("peers_reuters_20000"),
    "peers-shared-reuters-20000": peers("peers_shared_reuters_20000"),
    "peers-reuters-100000": peers("peers_reuters_100000"),
    "peers-shared-reuters-100000": peers("peers_shared_reuters_100000"),
    "served-bytes-scifact": measured(served_bytes("scifact"), "served_bytes_scifact"),
    "served-bytes-reuters": measured(served_bytes("reuters"), "served_bytes_reuters"),
    "served-bytes-budgets": measured(
        served_budgets, "served_bytes_scifact", "served_bytes_reuters"
    ),
    "served-tuning": tuned_as_served,
    "distributed": measured(distributed, "distributed"),
    "two-nodes": measured(two_nodes, "two_nodes"),
    "plan-100m": measured(plan_100m, "distributed", "encoders", "statistics"),
    "cluster": measured(sharded_answers, "cluster"),
    "cluster-http": measured(cluster_over_http, "cluster_http"),
    "cluster-faults": measured(shard_kills, "cluster_faults"),
    "plan-shards": measured(plan_shards, "cluster_http"),
    "suite": suite_run,
    "docker-smoke": docker_smoke,
}
