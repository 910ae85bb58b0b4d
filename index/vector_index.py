"""FAISS behind one small interface: cosine (inner product on normalised vectors), int64 ids."""

import os
import re
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from index.errors import InvalidIndexSpec, InvalidInput, NotEnoughData, StorageError
from index.storage import atomic_write
from index.validation import as_matrix

IVF_NPROBE = 16
"""Inverted lists probed per query for IVF specs: recall near exact for lists of a few thousand."""

EXACT_FILTER_LIMIT = 4096
"""Filters matching at most this many vectors are scored exactly against those vectors' codes."""

HNSW_EF_SEARCH = 64
"""HNSW candidate-list size per query (raised to 2·top_k for larger top_k)."""


class VectorIndex:
    """A FAISS index from `faiss.index_factory` spec ("Flat", "HNSW32", "SQ8", "IVF256,PQ16"...).

    Vectors must be L2-normalised: inner product is then cosine. Specs that need training are
    trained on the first `add` (or `build`); too few vectors to train is a NotEnoughData error.
    """

    def __init__(self, dim: int, spec: str = "Flat") -> None:
        if not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self.spec = _check_spec(spec)
        self._index = faiss.IndexIDMap2(_factory(dim, self.spec))

    @classmethod
    def build(cls, dim: int, spec: str, vectors: np.ndarray, ids: np.ndarray) -> "VectorIndex":
        """A new index holding `vectors` under `ids`, trained on them when the spec needs it."""
        index = cls(dim, spec)
        index.add(vectors, ids)
        return index

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def supports_remove(self) -> bool:
        """False for graph indexes (HNSW, NSG): removing from them means building anew."""
        inner = faiss.downcast_index(self._index.index)
        return not isinstance(inner, faiss.IndexHNSW | faiss.IndexNSG)

    @property
    def bytes_per_vector(self) -> float | None:
        """Memory per vector as FAISS serialises the index: codes, graph links, ids, codebooks."""
        if self.ntotal == 0:
            return None
        return len(faiss.serialize_index(self._index)) / self.ntotal

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, vectors: Any, ids: Any) -> None:
        vectors = np.ascontiguousarray(as_matrix(vectors, self.dim, "vectors"), dtype=np.float32)
        ids = _as_ids(ids)
        if len(ids) != len(vectors):
            raise InvalidInput(f"{len(vectors)} vectors but {len(ids)} ids: give one id each")
        if not len(ids):
            return
        if not self._index.is_trained:
            self._train(vectors)
        self._index.add_with_ids(vectors, ids)

    def remove(self, ids: Any) -> int:
        """Remove `ids` (unknown ones are ignored); returns how many were removed."""
        ids = _as_ids(ids)
        if not len(ids):
            return 0
        if not self.supports_remove:
            raise InvalidIndexSpec(
                f"index spec {self.spec!r} cannot remove vectors in place: build it anew"
            )
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(
        self, queries: Any, top_k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cosine scores and ids (n, top_k), best first; id −1 pads when fewer vectors match.

        `allowed_ids` restricts the search to those ids (exact for Flat; graph and IVF indexes
        may return fewer hits under a very selective filter).
        """
        queries = np.ascontiguousarray(as_matrix(queries, self.dim, "queries"), dtype=np.float32)
        if not isinstance(top_k, int) or top_k < 1:
            raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")
        n = len(queries)
        if self.ntotal == 0 or (allowed_ids is not None and len(allowed_ids) == 0):
            return np.zeros((n, top_k), np.float32), np.full((n, top_k), -1, np.int64)
        if allowed_ids is not None:
            allowed_ids = _as_ids(allowed_ids)
            if len(allowed_ids) <= EXACT_FILTER_LIMIT and not self._is_ivf:
                return self._search_subset(queries, top_k, allowed_ids)
        selector = None if allowed_ids is None else faiss.IDSelectorBatch(allowed_ids)
        params = self._search_parameters(top_k, selector)
        try:
            return self._index.search(queries, top_k, params=params)
        except RuntimeError as exc:
            if allowed_ids is None or "invalid search params" not in str(exc):
                raise
        return self._search_subset(queries, top_k, allowed_ids)

    def _search_subset(
        self, queries: np.ndarray, top_k: int, allowed_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores against the index's own codes of `allowed_ids`, for selective filters
        (where a graph search would miss them) and for indexes that take no selector (plain PQ)."""
        present = allowed_ids[np.isin(allowed_ids, self.ids())]
        n = len(queries)
        out_scores = np.zeros((n, top_k), np.float32)
        out_ids = np.full((n, top_k), -1, np.int64)
        if not len(present):
            return out_scores, out_ids
        scores = queries @ self._index.reconstruct_batch(present).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        width = order.shape[1]
        out_scores[:, :width] = np.take_along_axis(scores, order, axis=1)
        out_ids[:, :width] = present[order]
        return out_scores, out_ids

    @property
    def _is_ivf(self) -> bool:
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexIVF)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index atomically: a crash leaves the previous file or this one."""
        data = faiss.serialize_index(self._index)
        with atomic_write(path) as handle:
            handle.write(data.tobytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str], spec: str) -> "VectorIndex":
        try:
            loaded = faiss.read_index(os.fspath(path))
        except RuntimeError as exc:
            raise StorageError(f"index file {path} is unreadable: {exc}") from exc
        if not isinstance(loaded, faiss.IndexIDMap2):
            raise StorageError(f"index file {path} does not hold an id-mapped index")
        index = cls.__new__(cls)
        index.dim = int(loaded.d)
        index.spec = spec
        index._index = loaded
        return index

    def _train(self, vectors: np.ndarray) -> None:
        try:
            self._index.train(vectors)
        except RuntimeError as exc:
            raise NotEnoughData(
                f"index spec {self.spec!r} could not be trained on {len(vectors)} vectors "
                f"({_first_line(exc)}): add more documents, or use a spec without training "
                "such as 'Flat' or 'HNSW32'"
            ) from exc

    def _search_parameters(
        self, top_k: int, selector: faiss.IDSelector | None
    ) -> faiss.SearchParameters | None:
        inner = faiss.downcast_index(self._index.index)
        if isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(HNSW_EF_SEARCH, 2 * top_k)
        elif isinstance(inner, faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = min(IVF_NPROBE, inner.nlist)
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
            params._selector = selector  # keep the selector alive as long as the parameters
        return params


def _check_spec(spec: Any) -> str:
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidIndexSpec(f"index spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if "IDMap" in spec:
        raise InvalidIndexSpec(f"index spec {spec!r}: leave out IDMap, ids are always mapped")
    return spec


def _factory(dim: int, spec: str) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise InvalidIndexSpec(
            f"index spec {spec!r} is not valid for dimension {dim} ({_first_line(exc)}); "
            "try 'Flat', 'HNSW32', 'SQ8' or 'IVF{lists},PQ{m}' with m dividing the dimension"
        ) from exc
    if isinstance(index, faiss.IndexPreTransform):
        raise InvalidIndexSpec(
            f"index spec {spec!r} changes the dimension: leave out transforms (PCA, OPQ...), "
            "the kernel's k already sets the dimension"
        )
    return index


def _as_ids(ids: Sequence[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(ids)
    if array.ndim != 1 or (len(array) and not np.issubdtype(array.dtype, np.integer)):
        raise InvalidInput("ids must be a 1-D sequence of integers")
    return np.ascontiguousarray(array, dtype=np.int64)


def _first_line(exc: Exception) -> str:
    """FAISS's own complaint without the C++ signature and source location around it."""
    text = " ".join(str(exc).split())
    match = re.search(r"\.cpp:\d+: (?:Error: )?(?:'[^']*' failed: )?(.*)", text)
    return (match.group(1) if match else text)[:200]
