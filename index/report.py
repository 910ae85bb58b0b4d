"""What a collection is and what compressing it would cost: describe, and the compression report.

Read-only views over a collection's public state, apart from `collection.py` (writes, recovery,
the fit policy), which only delegates to them.
"""

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index import compression
from index.errors import NotFound

if TYPE_CHECKING:
    from index.collection import Collection
    from index.shards import ShardedCollection


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
        if fitted.shortlist is not None:  # on disk like the raw vectors, read per candidate
            info["shortlist_bytes_per_vector"] = fitted.shortlist.projector.k_
    count = info["count"]
    info["disk_bytes_per_document"] = disk_bytes(collection.path) / count if count else None
    return info


def compression_report(
    collection: "Collection | ShardedCollection",
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
    ids, raw = collection.raw_vectors_by_id()  # a sharded collection's too: rows are positions
    if relevant is not None:
        row_of = {doc_id: row for row, doc_id in enumerate(ids)}
        unknown = sorted({i for judged in relevant for i in judged if i not in row_of})
        if unknown:
            raise NotFound(
                f"collection {collection.name} does not hold {', '.join(unknown[:5])}: "
                "judge only stored documents"
            )
        relevant = [{row_of[i]: grade for i, grade in judged.items()} for judged in relevant]
    rows = np.arange(len(ids))
    return compression.report(kernel, rows, raw, queries=queries, relevant=relevant, **options)


def describe_shards(
    collection: "ShardedCollection", shards: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """`describe` of a sharded collection from its shards' descriptions: counts summed, bytes
    per document and per vector weighted by the shards' documents; the model, settings and
    kernel figures are every shard's (one kernel)."""
    count = sum(shard["count"] for shard in shards)
    info = dict(shards[0]) | {
        "name": collection.name,
        "count": count,
        "shards": len(shards),
        "fit_error": collection.fit_error,
        "disk_bytes_per_document": _weighted(shards, "disk_bytes_per_document", "count"),
    }
    if info["fitted"]:
        info |= {
            "indexed": sum(shard["indexed"] for shard in shards),
            "refit_due": count >= collection.refit_growth * info["fitted_on"],
            "index_bytes_per_vector": _weighted(shards, "index_bytes_per_vector", "indexed"),
        }
    return info


def _weighted(shards: Sequence[dict[str, Any]], key: str, weight: str) -> float | None:
    total = sum(shard[weight] for shard in shards if shard.get(key) is not None)
    if not total:
        return None
    return sum(shard[key] * shard[weight] for shard in shards if shard.get(key) is not None) / total


def disk_bytes(directory: Path) -> int:
    """Bytes of every file under `directory` (what describe reports per document, and what the
    peers benchmark measures for every system); files a concurrent write replaces are skipped."""
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file():
                total += path.stat().st_size
    return total
