"""The served-bytes tables: each setting's bytes, quality and latency, and the budget picks.

Used by `python -m bench compression` (served_bytes_*.md) and `python -m bench render` (the
READMEs), so both show the same figures from the same `served_bytes_*.json` files.
"""

import os
from typing import Any

import numpy as np

from bench import report


def table(payload: dict[str, Any]) -> str:
    """Markdown of a `served_bytes_*.json` result (the README's tables are rendered from it)."""
    load = ", ".join(f"{x:.1f}" for x in payload["load_average"])
    cores = os.cpu_count() or 1
    busy = (
        f" (**above the machine's {cores} cores: the milliseconds include waiting for a core**)"
        if payload["load_average"][0] > cores
        else ""
    )
    header = [
        "setting",
        "k",
        "index",
        "re-score",
        "candidates (→ shortlist)",
        "bytes/vector",
        f"{payload['metric']} ×100",
        "% of exact",
        "ms/query (median of rounds)",
        "added ms vs default",
    ]
    lines = []
    for row in payload["rows"]:
        share = row["share_of_exact"]
        lines.append(
            [
                row["label"],
                "all" if row["k"] is None else row["k"],
                row["index_spec"],
                row["rescore"],
                _candidates(row),
                f"{row['bytes_per_vector']:.1f}",
                f"{100 * row['quality']:.2f}",
                "–" if share is None else f"{100 * share:.1f}",
                f"{np.median(row['latency_ms']):.2f}",
                f"{np.median(row['added_ms']):+.2f}",
            ]
        )
    return (
        f"{payload['documents']} documents, "
        f"{payload['queries']} queries; every setting fitted on one collection on disk and "
        "queried through `Collection.answer` (kernel, FAISS, reads of the candidates' raw "
        f"vectors from the mapped file, re-scoring), {payload['rounds']} round(s), load "
        f"average {load} at the start{busy}. Bytes per vector: the index as resident (codes, "
        "per-vector factors, id runs). A shortlist (→) reads the candidates' SQ8 codes from "
        "disk (128 B each, like the raw vectors not resident) and re-scores only that many."
        "\n\n" + report.markdown_table(header, lines) + "\n"
    )


def _candidates(row: dict[str, Any]) -> str:
    """A row's candidates, and the shortlist they are cut to (results before it have none)."""
    candidates = str(row["candidates"] or "default")
    shortlist = row.get("shortlist")
    return candidates if shortlist is None else f"{candidates} → {shortlist}"


BUDGETS = ((16.0, 0.995), (8.0, 0.98))
"""Bytes per vector and the share of exact quality a setting within them should keep (#18)."""


def budgets(results: dict[str, dict[str, Any]]) -> str:
    """Per byte budget and corpus, the setting the README recommends: the quickest one within the
    budget that keeps the target share of exact quality, else the best one, marked as short;
    with the same setting's added latency on the largest corpus (the target is set at 100,000)."""
    largest = max(results.values(), key=lambda p: p["documents"])
    lines = []
    for budget, target in BUDGETS:
        for name, payload in results.items():
            # to the 0.1 B the tables show: FAISS's header adds a few thousandths a vector
            rows = [r for r in payload["rows"] if round(r["bytes_per_vector"], 1) <= budget]
            reaching = [r for r in rows if r["share_of_exact"] >= target]
            if reaching:
                row = min(reaching, key=lambda r: np.median(r["added_ms"]))
            else:
                row = max(rows, key=lambda r: r["quality"])
            at_scale = next(
                (
                    r
                    for r in largest["rows"]
                    if (r["label"], _candidates(r)) == (row["label"], _candidates(row))
                ),
                None,
            )
            lines.append(
                [
                    f"≤ {budget:g} B",
                    f"{100 * target:g}%",
                    name,
                    f"{row['label']}, {_candidates(row)} candidates",
                    f"{row['bytes_per_vector']:.1f}",
                    f"{100 * row['quality']:.2f} {payload['metric']}",
                    f"{100 * row['share_of_exact']:.1f}%" + ("" if reaching else " (short)"),
                    f"{np.median(row['added_ms']):+.2f}",
                    "–" if at_scale is None else f"{np.median(at_scale['added_ms']):+.2f}",
                ]
            )
    header = [
        "budget",
        "target",
        "corpus",
        "setting",
        "bytes/vector",
        "quality ×100",
        "of exact",
        "added ms vs default",
        f"added ms vs default at {largest['documents']:,} documents",
    ]
    return report.markdown_table(header, lines)
