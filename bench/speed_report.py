"""speed.md from the speed_*.json results of `python -m bench speed`: one section per run.

Kept apart from the measuring (bench/speed.py) so that `python -m bench render` rewrites the
tables without importing the server or the encoder.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench import report

# What a run measures, named in its tables; bench/speed.py runs these.
COLLECTION = "reuters"
REPORT_KS = (384, 128)
REPORT_SPECS = ("Flat", "HNSW32", "SQ8")
BATCH = 32


def write_markdown(out: Path) -> Path:
    """speed.md from every speed_*.json in `out`, smallest corpus first."""
    runs = []
    for path in sorted(out.glob("speed_*.json")):
        runs.append(json.loads(path.read_text(encoding="utf-8")))
    runs.sort(key=lambda figures: (figures["size"], str(figures["backend"])))
    parts = [
        "# Speed on Reuters sentences\n\n`python -m bench speed`: the real server "
        "(`python -m service`) on 127.0.0.1, measured over HTTP from another process on the same "
        "cores. See bench/README.md for what each number means."
    ]
    parts += [section(figures) for figures in runs]
    return report.write_text(out / "speed.md", "\n\n".join(parts))


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:,.{digits}f}"


def section(f: dict[str, Any]) -> str:
    bare, ingest_, job = f["bare"], f["ingest"], f["ingest"]["job"]
    info = f["collection"]
    settings = info["settings"]
    first = f["runs"][0]
    sample = (
        f"all {bare['texts']:,}"
        if bare["texts"] == f["size"]
        else f"first {bare['texts']:,} only (`--bare-sample`)"
    )
    head = (
        f"## {f['size']:,} sentences, {info.get('backend', f['backend_used'])}"
        f"{' — SMOKE RUN, numbers not meaningful' if f['smoke'] else ''}"
        f"\n\nBackend: {info.get('backend', f['backend_used'])} (as the collection records it; "
        f"bare encode: {f['bare_backend']}); encoder batch "
        f"{f['batch_size']}; ingest chunk {f.get('ingest_chunk', '1024 (the default then)')}; "
        f"collection k={settings['k']}, {settings['index_spec']}, re-scoring "
        f"{'on' if settings['rescore'] else 'off'}; {f['cpus']} CPUs; load average "
        f"{'/'.join(f'{x:.2f}' for x in f['load_average_start'])} at the start, "
        f"{'/'.join(f'{x:.2f}' for x in f['load_average_end'])} at the end ({f['started']})."
    )
    ingest_table = report.markdown_table(
        ["ingest", "documents/s", "seconds", "× bare encode", "load average, start → end"],
        [
            [
                f"bare `encode`, batch {f['batch_size']} ({sample})",
                fmt(bare["docs_per_second"]),
                fmt(bare["seconds"]),
                "1.00",
                _load(bare),
            ],
            [
                "service: POST ingest → job done (fit included)",
                fmt(ingest_["docs_per_second"]),
                fmt(ingest_["seconds"]),
                fmt(ingest_["docs_per_second"] / bare["docs_per_second"], 2),
                _load(ingest_),
            ],
            [
                "↳ encoding inside the job",
                fmt(ingest_["documents"] / job["encode_seconds"]),
                fmt(job["encode_seconds"]),
                fmt(ingest_["documents"] / job["encode_seconds"] / bare["docs_per_second"], 2),
                None,
            ],
            ["↳ storing the chunks", None, fmt(job["index_seconds"]), None, None],
            [
                "↳ kernel fit + index build + save after the last chunk",
                None,
                fmt(job["fit_seconds"], 2),
                None,
                None,
            ],
        ],
    )
    split = f["fit_split"]
    fit_table = report.markdown_table(
        ["step (in-process, on the stored raw vectors)", "seconds"],
        [
            ["kernel fit (statistics + eigendecomposition)", fmt(split["kernel_fit"], 3)],
            [f"transform to k={settings['k']}", fmt(split["transform"], 3)],
            [f"index build ({settings['index_spec']})", fmt(split["index_build"], 3)],
            ["server start until ready (model load)", fmt(first["start_seconds"], 1)],
        ],
    )
    single, batch = first["single"], f["batch"]
    latency_rows = [
        ["bare `encode` of one query (this process)", *_pct(bare["one_query_ms"]), None, None],
        ["HTTP, one query (`text`)", *_pct(single["wall_ms"]), *_server(single)],
        [f"bare `encode` of {BATCH} queries", *_pct(bare["batch_ms"]), None, None],
        [
            f"HTTP, batch of {BATCH} (`texts`), per request",
            *_pct(batch["wall_ms"]),
            *_server(batch),
        ],
        [
            f"HTTP, batch of {BATCH}, per query",
            *(fmt(batch["wall_ms"][p] / BATCH, 2) for p in ("p50", "p95", "p99")),
            None,
            None,
        ],
    ]
    latency_table = report.markdown_table(
        ["ms", "p50", "p95", "p99", "server encode p50", "server search p50"], latency_rows
    )
    levels = [level["clients"] for level in first["concurrent"]]
    header = ["clients"]
    for run_ in f["runs"]:
        header += [f"q/s, batching {run_['batching']}", "p50 ms", "p95 ms"]
    if len(f["runs"]) == 2:
        header.append("q/s, first ÷ second")
    concurrent_rows = []
    for i, clients in enumerate(levels):
        row: list[Any] = [clients]
        for run_ in f["runs"]:
            level = run_["concurrent"][i]
            ms = level["ms"] or {}
            errors = f" ({level['errors']} errors)" if level["errors"] else ""
            row += [
                fmt(level["queries_per_second"]) + errors,
                fmt(ms.get("p50")),
                fmt(ms.get("p95")),
            ]
        if len(f["runs"]) == 2:
            a, b = (run_["concurrent"][i]["queries_per_second"] for run_ in f["runs"])
            row.append(fmt(a / b if b else None, 2))
        concurrent_rows.append(row)
    concurrent_table = report.markdown_table(header, concurrent_rows)
    memory_table = report.markdown_table(
        ["memory and disk", "value"],
        [
            ["server RSS after ingest (MiB)", fmt(f["rss_after_ingest_bytes"] / report.MiB)],
            ["server RSS after queries and reports (MiB)", fmt(first["rss_bytes"] / report.MiB)],
            ["server peak RSS, VmHWM (MiB)", fmt(first["peak_rss_bytes"] / report.MiB)],
            ["index bytes per vector (in memory, as saved)", fmt(info["index_bytes_per_vector"])],
            ["raw vector bytes per document (stored, 4·d)", info["raw_bytes_per_vector"]],
            ["disk bytes per document (all files)", fmt(info["disk_bytes_per_document"])],
        ],
    )
    rep = f["report"]
    report_table = report.markdown_table(
        ["k", "index", "re-score", "bytes/vector", "recall@10 ×100", "ms/query"],
        [
            [
                row["k"],
                row["index_spec"],
                "on" if row["rescore"] else "off",
                fmt(row["bytes_per_vector"], 0),
                fmt(100 * row["recall_at_10"]),
                fmt(row["latency_ms"], 2),
            ]
            for row in rep["rows"]
        ],
    )
    report_note = (
        f"`POST /collections/{COLLECTION}/report` with ks {list(REPORT_KS)}, specs "
        f"{list(REPORT_SPECS)}: {rep['n_queries']} documents drawn as queries, recall@10 against "
        f"exact search on the raw vectors, ms/query without encoding; the call took "
        f"{fmt(rep['wall_seconds'])} s."
    )
    if "default_report" in f:
        default = f["default_report"]
        report_note += (
            f" The report with its default settings ({len(default['rows'])} rows) took "
            f"{fmt(default['wall_seconds'])} s after the ingest (issue 8 asks for under a minute "
            "at 100,000)."
        )
    phases = ", ".join(
        f"{name} {report.format_seconds(seconds)}"
        for name, seconds in f.get("phase_seconds", {}).items()
    )
    return "\n\n".join(
        [
            head + (f" Run phases: {phases}." if phases else ""),
            "### Ingest\n\n" + ingest_table,
            "### Kernel fit and index build\n\n" + fit_table,
            "### Query latency over HTTP (top_k=10, sequential)\n\n" + latency_table,
            f"### Concurrent clients (single queries, {f['plan']['seconds']:g} s per level)\n\n"
            + concurrent_table,
            "### Memory and disk\n\n" + memory_table,
            "### k × index: recall and latency\n\n" + report_note + "\n\n" + report_table,
        ]
    )


def _load(figures: dict[str, Any]) -> str | None:
    """The 1-minute load average when a timed phase began and ended (older files lack it)."""
    if "load_average" not in figures:
        return None
    start, end = figures["load_average"]
    return f"{start[0]:.1f} → {end[0]:.1f}"


def _pct(ms: dict[str, float]) -> list[str]:
    return [fmt(ms[p]) for p in ("p50", "p95", "p99")]


def _server(figures: dict[str, Any]) -> list[str]:
    return [fmt(figures["encode_ms"]["p50"]), fmt(figures["search_ms"]["p50"], 2)]
