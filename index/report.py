"""What a collection is and what compressing it would cost: describe, and the compression report.

Read-only views over a collection's public state, apart from `collection.py` (writes, recovery,
the fit policy), which only delegates to them.
"""

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index import compression

if TYPE_CHECKING:
    from index.collection import Collection


def describe(collection: "Collection") -> dict[str, Any]:
    """Counts, model, settings, and the kernel's and index's figures (`GET /collections/NAME`)."""
    manifest, fitted = collection.manifest, collection.fitted
    info: dict[str, Any] = {
        "name": collection.name,
        "model_id": manifest.model_id,
        "backend": manifest.backend,
        "dimension": manifest.dimension,
        "count": collection.count(),
        "settings": asdict(manifest.settings),
        "fitted": fitted is not None,
        "fit_error": collection.fit_error,
        "fitted_at": manifest.fitted_at,
        "created_at": manifest.created_at,
        "raw_bytes_per_vector": 4 * manifest.dimension,
    }
    if fitted is not None:
        k = fitted.kernel.k_
        info |= {
            "k": k,
            "rescore_k_effective": fitted.rescorer.k_,
            "fitted_on": fitted.kernel.n_samples_seen_,
            "refit_due": collection.refit_due,
            "indexed": fitted.index.ntotal,
            "explained_energy": float(fitted.kernel.explained_energy_[k - 1]),
            "rank": fitted.kernel.rank_,
        }
        info["index_bytes_per_vector"] = fitted.index.saved_bytes_per_vector
    count = info["count"]
    info["disk_bytes_per_document"] = disk_bytes(collection.path) / count if count else None
    return info


def compression_report(
    collection: "Collection",
    queries: Any = None,
    relevant: Sequence[Mapping[str, float]] | None = None,
    **options: Any,
) -> compression.CompressionReport:
    """`index.compression.report` on the collection's kernel and stored raw vectors.

    Re-scored rows re-score as the collection does (its space, rescore_k and candidates, unless
    `options` say otherwise); `relevant` names documents by id; other options pass through
    (ks, specs, rescore...).
    """
    kernel = collection.require_kernel()
    settings = collection.manifest.settings
    served = {
        "space": "kernel" if settings.rescore == "off" else settings.rescore,
        "rescore_k": settings.rescore_k,
        "candidates": settings.candidates,
    }
    options = served | {key: value for key, value in options.items() if value is not None}
    rows, raw = collection.raw_vectors()
    if relevant is not None:
        wanted = sorted({doc_id for judged in relevant for doc_id in judged})
        row_of = {doc.id: doc.row for doc in collection.get(wanted)} if wanted else {}
        relevant = [{row_of[i]: grade for i, grade in judged.items()} for judged in relevant]
    return compression.report(kernel, rows, raw, queries=queries, relevant=relevant, **options)


def disk_bytes(directory: Path) -> int:
    """Bytes of every file under `directory` (what describe reports per document, and what the
    peers benchmark measures for every system); files a concurrent write replaces are skipped."""
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                total += path.stat().st_size
    return total
