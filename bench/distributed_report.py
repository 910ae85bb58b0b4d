"""distributed.md, and the table README.md and docs/SCALING.md show, from distributed.json.

Kept apart from the measuring (bench/distributed.py), which needs Ray, so that `python -m bench
render` does not.
"""

import statistics
from typing import Any

from bench import report

SYSTEMS = ("single", "bare-1", "bare-2", "ray-1", "ray-2")
"""Interleaved in this order in each round."""
LABELS = {
    "single": "service ingest job (one process, 2 encoder threads)",
    "bare-1": "bare encode, 1 process of 1 thread (no Ray)",
    "bare-2": "bare encode, 2 processes of 1 thread (no Ray)",
    "ray-1": "Ray, 1 encoder actor of 1 CPU",
    "ray-2": "Ray, 2 encoder actors of 1 CPU",
}


def medians(figures: dict[str, Any]) -> dict[str, float]:
    """Median docs/s of each system's passes."""
    return {
        system: statistics.median(
            p["docs_per_second"] for p in figures["passes"] if p["system"] == system
        )
        for system in SYSTEMS
    }


def table(figures: dict[str, Any]) -> str:
    """Each system's docs/s (median, range) and the ratios that say how Ray scales and costs."""
    median = medians(figures)
    rows = []
    for system in SYSTEMS:
        passes = [p for p in figures["passes"] if p["system"] == system]
        rates = [p["docs_per_second"] for p in passes]
        encode = [p["encode_docs_per_second"] for p in passes if "encode_docs_per_second" in p]
        rows.append(
            [
                LABELS[system],
                len(passes),
                f"{median[system]:.1f}",
                f"{min(rates):.1f} – {max(rates):.1f}",
                f"{statistics.median(encode):.1f}" if encode else "",
            ]
        )
    ratio = {
        (a, b): median[a] / median[b]
        for a, b in [
            ("ray-2", "ray-1"),
            ("bare-2", "bare-1"),
            ("ray-2", "single"),
            ("ray-1", "bare-1"),
            ("ray-2", "bare-2"),
        ]
    }
    return "\n".join(
        [
            f"{figures['documents']:,} Reuters sentences, {figures['cores']} cores, "
            f"{len(figures['passes']) // len(SYSTEMS)} interleaved rounds "
            "(`bench/results/distributed.json`):",
            "",
            report.markdown_table(
                ["system", "passes", "docs/s (median)", "range", "encode step docs/s"], rows
            ),
            "",
            f"- 2 actors / 1 actor: {ratio['ray-2', 'ray-1']:.2f}×; the machine's own ceiling, "
            f"2 bare processes / 1: {ratio['bare-2', 'bare-1']:.2f}×",
            f"- Ray with 2 actors / the service's ingest: {ratio['ray-2', 'single']:.2f}×",
            f"- what Ray keeps of a bare encode: {ratio['ray-1', 'bare-1']:.2f}× with 1 actor, "
            f"{ratio['ray-2', 'bare-2']:.2f}× with 2",
            f"- the local Ray's processes: {figures['ray_rss_mib']:,.0f} MiB resident at the end; "
            f"Parquet {_parquet(figures):,.0f} bytes per document",
        ]
    )


def markdown(figures: dict[str, Any]) -> str:
    return report.page(
        "Distributed ingest",
        "`python -m bench distributed`: docs/s of the whole run (Ray: actor start, encode into "
        "Parquet, statistics, load into a collection; single: the service's ingest job over "
        "HTTP; bare-N: N plain processes of one encoder thread, models loaded before the "
        "clock starts: what the cores allow without Ray).",
        [table(figures), f"- Ray start (once): {figures['ray_start_seconds']:.1f} s"],
        figures["passes"],
    )


def two_nodes(figures: dict[str, Any]) -> str:
    """`scripts/two_nodes.sh`: the Ray ingest on two nodes against the single-node ingest."""
    queries = figures["queries"]
    return "\n".join(
        [
            f"{figures['documents']:,} Reuters sentences, {figures['nodes']} Ray nodes of 1 CPU, "
            f"{queries} queries (`bench/results/two_nodes.json`):",
            "",
            report.markdown_table(
                ["", "Ray, 2 nodes, 2 actors", "single node, through the server"],
                [
                    ["documents", *(f"{figures['counts'][s]:,}" for s in ("ray", "single"))],
                    [
                        "seconds of the whole `ingest` command",
                        *(f"{figures['seconds'][s]:.1f}" for s in ("ray", "single")),
                    ],
                ],
            ),
            "",
            f"- the same ids in the same row order: {'yes' if figures['same_row_order'] else 'no'}",
            f"- the same top-10 ids in the same order for {figures['same_top10_order']} of "
            f"{queries} queries, the same top-10 sets for {figures['same_top10_set']}",
            f"- largest difference of a hit's score at the same rank: "
            f"{figures['largest_score_difference']:.1e}",
        ]
    )


def _parquet(figures: dict[str, Any]) -> float:
    return statistics.median(
        p["parquet_bytes_per_document"]
        for p in figures["passes"]
        if "parquet_bytes_per_document" in p
    )


PLANNED_DOCUMENTS = 100_000_000
HOURS = 24


def plan(distributed: dict[str, Any], encoders: dict[str, Any], costs: dict[str, Any]) -> str:
    """The 100-million-document plan, computed from the committed measurements: the encode rate
    per core (sentences: one bare process of one thread, `distributed.json`; abstracts: the onnx
    backend on all cores, `encoders.json`, divided by the cores), the statistics' costs
    (`statistics.json`) and the Parquet bytes per sentence."""
    sentences = medians(distributed)["bare-1"]
    onnx = next(row for row in encoders["rows"] if row["backend"] == "onnx")
    abstracts = statistics.median(onnx["abstracts"]) / distributed["cores"]
    n = PLANNED_DOCUMENTS
    block = costs["block_seconds"]["median"] / costs["block_rows"]
    files = -(-n // costs["block_rows"])
    hours = {"sentences": n / sentences / 3600, "abstracts": n / abstracts / 3600}
    kinds = ("sentences", "abstracts")
    rows = [
        ["encode rate per core, docs/s", f"{sentences:.0f}", f"{abstracts:.0f}"],
        [f"encode, core-hours for {n:,} documents", *(f"{hours[k]:,.0f}" for k in kinds)],
        [f"cores for a {HOURS}-hour ingest", *(f"{hours[k] / HOURS:,.0f}" for k in kinds)],
        [
            f"statistics of the blocks ({block * 1e6:.1f} µs per vector), core-hours",
            *[f"{n * block / 3600:.2f}"] * 2,
        ],
        [
            f"sums on the driver ({files:,} files of {costs['block_rows']:,}), seconds",
            *[f"{files * costs['sum_seconds']['median']:.1f}"] * 2,
        ],
        ["the derivation (once), seconds", *[f"{costs['derive_seconds']['median']:.3f}"] * 2],
        [
            "Parquet output",
            f"{_parquet(distributed):,.0f} bytes per sentence: "
            f"{n * _parquet(distributed) / 1e9:,.0f} GB",
            f"{4 * costs['dimension']:,} bytes of vector + the text",
        ],
    ]
    return "\n".join(
        [
            f"From `bench/results/distributed.json`, `encoders.json` and `statistics.json` "
            f"(d = {costs['dimension']}, one core per encoder thread; abstracts per core: the "
            f"{distributed['cores']}-core onnx figure divided by {distributed['cores']}):",
            "",
            report.markdown_table(["", "short sentences", "abstracts (≈ 256 tokens)"], rows),
        ]
    )
