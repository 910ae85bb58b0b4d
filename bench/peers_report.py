"""The peers table from a peers.json: medians over the interleaved passes, with their spread.

Used by `python -m bench peers` (peers.md) and `python -m bench render` (bench/README.md), so
both show the same figures from the same file.
"""

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from bench import report
from bench.drivers.driver import CLIENTS
from bench.peers_data import scifact_description

Row = dict[str, Any]


def spread(values: Sequence[float], digits: int) -> str:
    """Median, and min–max when there is more than one pass: '31.3 (30.1–32.0)'."""
    if not values:
        return "—"
    median = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return median
    return f"{median} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def groups(rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    """Passes by (system, setting), in the order they first ran."""
    grouped: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        grouped.setdefault((row["system"], row["setting"]), []).append(row)
    return grouped


def values(rows: Sequence[Row], key: str, scale: float = 1.0) -> list[float]:
    return [scale * row[key] for row in rows if row.get(key) is not None]


def over_encoder(rows: Sequence[Row]) -> list[float]:
    """Each pass's query p50 less the encoder alone's of the same pass (bench.peers.beside_encoder):
    what the system adds to a query around the shared encoder."""
    return [
        row["query_ms_p50"] - row["encoder_alone_ms_p50"]
        for row in rows
        if row.get("encoder_alone_ms_p50") is not None
    ]


def _one_per_pass(rows: Sequence[Row]) -> list[Row]:
    """A row of each pass (every row of a pass notes the same encoder-alone figures)."""
    return list({(row["repetition"], row["run"]): row for row in rows}.values())


def over_http(row: Row) -> bool:
    return bool(row.get("http"))


def table(rows: Sequence[Row]) -> str:
    columns: list[tuple[str, Callable[[list[Row]], str]]] = [
        ("ingest docs/s", lambda rs: spread(values(rs, "ingest_docs_per_s"), 1)),
        ("query p50 ms", lambda rs: spread(values(rs, "query_ms_p50"), 1)),
        ("encoder alone p50 ms", lambda rs: spread(values(rs, "encoder_alone_ms_p50"), 1)),
        ("p50 over the encoder ms", lambda rs: spread(over_encoder(rs), 1)),
        ("query p95 ms", lambda rs: spread(values(rs, "query_ms_p95"), 1)),
        (f"queries/s, {CLIENTS} clients", lambda rs: spread(values(rs, "queries_per_s"), 0)),
        ("peak RSS MiB", lambda rs: spread(values(rs, "peak_rss_mib"), 0)),
        ("disk bytes/doc", lambda rs: spread(values(rs, "disk_bytes_per_doc"), 0)),
        ("nDCG@10 ×100", lambda rs: spread(values(rs, "ndcg_at_10", 100), 2)),
        ("recall@10 vs exact ×100", lambda rs: spread(values(rs, "recall_at_10_exact", 100), 1)),
        ("passes", lambda rs: str(len(rs))),
    ]
    measured = {  # a column nobody has (queries/s in process, nDCG on Reuters) is left out
        name: any(render([row]) != "—" for row in rows) for name, render in columns
    }
    columns = [column for column in columns if measured[column[0]]]
    lines = [
        [system, setting, *(render(rows) for _, render in columns)]
        for (system, setting), rows in groups(rows).items()
    ]
    return report.markdown_table(["system", "setting", *(name for name, _ in columns)], lines)


def _corpus(figures: dict[str, Any]) -> str:
    """What ran: the corpus's own description (files before it was recorded were SciFact's)."""
    return figures.get("corpus_description") or scifact_description(
        figures["documents"], figures["queries"]
    )


def encoders(figures: dict[str, Any]) -> str:
    """Who encodes: each system its own way, or the shared encoder (bench.peers_data.SHARED)."""
    shared = figures.get("shared_encoder")
    return f"one encoder: {shared}" if shared else "each system encoding it its own way"


def _when(figures: dict[str, Any]) -> str:
    """When the run ended, when a stopped run was resumed (bench.peers_passes), and how long
    its passes took (runs before `pass_seconds` was kept do not say)."""
    started = figures.get("started", [])
    resumed = f"started {started[0]}, resumed {', '.join(started[1:])}, " if started[1:] else ""
    seconds = [row.get("pass_seconds") for row in _one_per_pass(figures["rows"])]
    took = (
        f". The passes took {sum(seconds) / 60:.0f} min in all (waits for the load to "
        "settle not included)"
        if seconds and None not in seconds
        else ""
    )
    return f"{resumed}finished {figures['finished']}{took}"


def _order(passes: Sequence[Row]) -> str:
    """The order the passes ran: one order repeated, or, where a resumed run tried a failed
    pass again after the others of its repetition, each pass in turn."""
    ran = [(row["repetition"], row["run"]) for row in passes]
    first = [run for repetition, run in ran if repetition == ran[0][0]]
    if all(run == first[index % len(first)] for index, (_, run) in enumerate(ran)):
        return f"interleaved ({', '.join(first)}, then again)"
    return "interleaved, in this order: " + ", ".join(f"{run} {rep}" for rep, run in ran)


def header(figures: dict[str, Any]) -> str:
    passes = _one_per_pass(figures["rows"])
    starts = [row["load_average_start"][0] for row in passes]
    cores = figures["cores"]
    loaded = sum(load > cores for load in starts)
    text = (
        f"{'**SMOKE RUN: numbers not meaningful.** ' if figures['smoke'] else ''}"
        f"{_corpus(figures)}, one query at a time, top 10; model {figures['model']}, "
        f"{encoders(figures)}; ingest in chunks of {figures['chunk']}. {figures['repeats']} "
        f"repetition{'s' if figures['repeats'] > 1 else ''}, {_order(passes)}, each pass "
        "from an empty directory; cells are the median (min–max) over the passes. Load "
        "average (1 min) at the start of each pass: "
        f"{', '.join(f'{load:.1f}' for load in starts)} on {cores} cores; "
        f"{_when(figures)}. {report.cpu(figures)}"
    )
    if figures.get("peak_rss") != "VmHWM":
        text += (
            " **Peak RSS in process is a floor, not the system's own:** this run read it as "
            "ru_maxrss, which a driver inherits from the bench process at the fork (in-process "
            "cells equal to one another are that floor); runs since read VmHWM."
        )
    if loaded:
        text = (
            f"**Loaded machine: the load average was above the {cores} cores at the start of "
            f"{loaded} of {len(starts)} passes.** " + text
        )
    return text


def notes(figures: dict[str, Any]) -> list[str]:
    lines = []
    if any("encoder_alone_ms_p50" in row for row in figures["rows"]):
        lines.append(
            "encoder alone: after each system's pass, the shared encoder by itself encoded every "
            "query alone in a process of its own (bench/drivers/encoder_driver.py: nothing stored "
            "or searched); a row's p50 over the encoder is its pass's query p50 less that pass's "
            "encoder alone, so a drift of this host's speed between passes cancels."
        )
    paths = [row for row in _one_per_pass(figures["rows"]) if "ours_encoder_alone_ms_p50" in row]
    if paths:
        added = [row["ours_encoder_alone_ms_p50"] - row["encoder_alone_ms_p50"] for row in paths]
        ours = spread(values(paths, "ours_encoder_alone_ms_p50"), 1)
        lines.append(
            "ours' encoder alone: right after the encoder alone, the same queries through ours' "
            "encoder (index.encoder.Encoder, torch backend, from a pool thread as the server "
            f"calls it) in a process of its own: p50 {ours} "
            f"ms against {spread(values(paths, 'encoder_alone_ms_p50'), 1)} ms for the bare "
            f"encoder; ours' encoding code adds {spread(added, 1)} ms "
            f"({len(paths)} pass{'es' if len(paths) > 1 else ''})."
        )
    lines += _chunk_alone(figures["rows"])
    for (system, setting), rows in groups(figures["rows"]).items():
        if rows[0].get("encode_ms_p50") is not None:
            embedded = "embedded" in system
            where = "inside Engine.query" if embedded else "inside the server (Server-Timing)"
            lines.append(
                f"{system}, {setting}: {where}, encoding "
                f"{spread(values(rows, 'encode_ms_p50'), 1)} ms and search "
                f"{spread(values(rows, 'search_ms_p50'), 2)} ms per query (medians of the "
                "passes' medians)."
            )
        if "encode_over_alone_ms_p50" in rows[0]:
            over = spread(values(rows, "encode_over_alone_ms_p50"), 2)
            lines.append(
                f"{system}: query by query in its process, Engine.query's encoding took "
                f"{spread(values(rows, 'paired_encode_ms_p50'), 1)} ms against "
                f"{spread(values(rows, 'encode_alone_ms_p50'), 1)} ms for the same text encoded "
                "alone right after it on the same thread (Engine.search.embed, not timed in the "
                f"query), a median difference of {over} ms per pass."
            )
        if "job_encode_seconds" in rows[0]:
            lines.append(
                f"{system}, {setting}: of the ingest, the job itself spent "
                f"{spread(values(rows, 'job_encode_seconds'), 1)} s encoding, "
                f"{spread(values(rows, 'job_index_seconds'), 2)} s storing and indexing and "
                f"{spread(values(rows, 'job_fit_seconds'), 2)} s fitting (service.jobs.Job)."
            )
        if "refit_seconds" in rows[0]:
            lines.append(
                f"{system}, {setting}: the same collection, refitted in "
                f"{spread(values(rows, 'refit_seconds'), 2)} s from the stored raw vectors."
            )
        if rows[0].get("index_bytes_per_vector") is not None:
            built = values(rows, "index_build_seconds")
            lines.append(
                f"{system}, {setting}: its quantized index, "
                f"{spread(values(rows, 'index_bytes_per_vector'), 1)} bytes per vector on disk"
                + (f", built in {spread(built, 2)} s (after ingest)." if built else ".")
            )
        if "same_rankings_as_http" in rows[0]:
            same = spread(values(rows, "same_rankings_as_http", 100), 0)
            lines.append(
                f"{system}: the server's collection opened in process after the server stopped; "
                f"{same} % of its rankings equal the HTTP ones; RSS is that process's peak "
                "(model, collection, queries; no ingest)."
            )
        if "versions" in rows[0]:
            versions = ", ".join(f"{k} {v}" for k, v in rows[0]["versions"].items())
            lines.append(f"{system}: {versions}.")
    return list(dict.fromkeys(lines))


def _chunk_alone(rows: Sequence[Row]) -> list[str]:
    """What the encoder alone encodes of the corpus, bare and through ours' code, and each
    system's ingest over it: docs/s of its pass's ingest over the bare encoder alone's after it."""
    passes = [row for row in _one_per_pass(rows) if "encoder_alone_docs_per_s" in row]
    if not passes:
        return []
    ratio = [r["ours_encoder_alone_docs_per_s"] / r["encoder_alone_docs_per_s"] for r in passes]
    lines = [
        f"encoders alone on documents: both encoder-alone processes first encode the corpus's "
        f"first {passes[0]['encoder_alone_documents']:,} documents as one ingest chunk (nothing "
        f"stored): bare {spread(values(passes, 'encoder_alone_docs_per_s'), 1)} docs/s, ours' "
        f"encoding code {spread(values(passes, 'ours_encoder_alone_docs_per_s'), 1)}, "
        f"{spread(ratio, 3)} times the bare rate ({len(passes)} passes)."
    ]
    ingests = [r for r in rows if r.get("ingest_docs_per_s") and "encoder_alone_docs_per_s" in r]
    shares = {  # a system's ingest rows share its first setting
        system: [r["ingest_docs_per_s"] / r["encoder_alone_docs_per_s"] for r in passes_of]
        for (system, _), passes_of in groups(ingests).items()
    }
    if shares:
        lines.append(
            "ingest over the encoder alone: each pass's ingest docs/s over the bare encoder "
            "alone's on those documents right after it: "
            + ", ".join(f"{system} {spread(share, 2)}" for system, share in shares.items())
            + " (the corpus's mean length differs from its first documents': the systems "
            "compare with one another, not with 1)."
        )
    return lines


def tables(figures: dict[str, Any]) -> str:
    """The header sentence, the tables (over HTTP, in process) and the notes (Markdown)."""
    bullets = [*notes(figures), *figures.get("skipped", [])]
    http = [row for row in figures["rows"] if over_http(row)]
    local = [row for row in figures["rows"] if not over_http(row)]
    blocks = [
        (
            f"**Over HTTP on 127.0.0.1**, each system's own server: one query at a time, then "
            f"every query once from {CLIENTS} concurrent clients (queries/s).",
            http,
        ),
        ("**In process**: the library called directly, one query at a time.", local),
    ]
    return "\n\n".join(
        [
            header(figures),
            *(f"{title}\n\n{table(rows)}" for title, rows in blocks if rows),
            "\n".join(f"- {line}" for line in bullets),
        ]
    )
