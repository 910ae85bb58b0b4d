"""FAISS behind one small interface: cosine (inner product on normalised vectors), int64 ids.

Float specs come from `faiss.index_factory` ("Flat", "HNSW32", "SQ8", "PQ16", "IVF256,PQ16",
"RaBitQ"...). Binary specs ("BFlat", "BHNSW32") keep one bit per dimension, the sign of the kernel
coordinate, and search by Hamming distance: k/8 bytes per vector. "RaBitQ" also keeps one bit per
dimension (plus two floats) but scores a float query against the bits, which ranks far better.
"""

import os
import re
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from index import index_spec
from index.errors import InvalidIndexSpec, InvalidInput, NotEnoughData, StorageError
from index.storage import atomic_write
from index.validation import as_matrix, unit_rows

FAISS_THREADS = 1
"""OpenMP threads of each FAISS call. A query is one vector, which OpenMP cannot split, while its
team of threads spins on the cores the encoder needs. OpenMP's setting belongs to the calling
thread (a query runs on a pool thread, not on the one that started the process), so every call
below sets it for its own thread; the call costs nothing measurable."""

IVF_NPROBE = 16
"""Inverted lists probed per query for IVF specs: recall near exact for lists of a few thousand."""

EXACT_FILTER_LIMIT = 4096
"""Filters matching at most this many vectors are scored exactly against those vectors' codes."""

HNSW_EF_SEARCH = 64
"""HNSW candidate-list size per query (raised to 2·top_k for larger top_k)."""


class VectorIndex:
    """A FAISS index for L2-normalised vectors, addressed by int64 ids.

    Specs that need training are trained on the first `add` (or `build`); too few vectors to
    train is a NotEnoughData error. `score_kind` names what `search` scores are: "cosine" (Flat,
    HNSW), "quantized_cosine" (SQ, PQ: cosine of the codes) or "sign_agreement" (binary:
    1 − 2·Hamming/k, the fraction of agreeing signs rescaled to [−1, 1]).
    """

    def __init__(self, dim: int, spec: str = "Flat") -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self._spec = index_spec.parse(spec, dim)
        self.spec = self._spec.text
        self._index = _new_index(self._spec)
        self.saved_bytes_per_vector: float | None = None

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
    def is_binary(self) -> bool:
        return isinstance(self._index, faiss.IndexBinaryIDMap2)

    @property
    def score_kind(self) -> str:
        if self.is_binary:
            return "sign_agreement"
        inner = self._codec
        exact = isinstance(inner, faiss.IndexFlat) or (
            isinstance(inner, faiss.IndexIVFFlat) and not isinstance(inner, faiss.IndexIVFPQ)
        )
        return "cosine" if exact else "quantized_cosine"

    @property
    def supports_remove(self) -> bool:
        """False for graph indexes (HNSW, NSG): removing from them means building anew."""
        return not isinstance(self._inner, faiss.IndexHNSW | faiss.IndexNSG | faiss.IndexBinaryHNSW)

    @property
    def bytes_per_vector(self) -> float | None:
        """Memory per vector as FAISS serialises the index: codes, graph links, ids, codebooks.

        It serialises the index: not while another thread adds. `saved_bytes_per_vector` is the
        same figure as of the last save or load, free to read at any time.
        """
        if self.ntotal == 0:
            return None
        return len(self._serialize()) / self.ntotal

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, vectors: Any, ids: Any) -> None:
        codes = self._codes(vectors)
        ids = _as_ids(ids)
        if len(ids) != len(codes):
            raise InvalidInput(f"{len(codes)} vectors but {len(ids)} ids: give one id each")
        if not len(ids):
            return
        self._spec.check_fits(self.ntotal + len(ids))  # before FAISS allocates or trains
        faiss.omp_set_num_threads(FAISS_THREADS)
        if not self._index.is_trained:
            self._train(codes)
        self._index.add_with_ids(codes, ids)

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

    def quantize(self, vectors: Any) -> np.ndarray:
        """`vectors` as the index holds them (decoded codes), L2-normalised: what it scores."""
        vectors = np.ascontiguousarray(as_matrix(vectors, self.dim, "vectors"), dtype=np.float32)
        if self.is_binary:
            signs = np.where(vectors > 0, 1.0, -1.0).astype(np.float32)
            return signs / np.sqrt(self.dim, dtype=np.float32)
        inner = self._codec
        if not inner.is_trained:
            raise NotEnoughData("the index is not trained yet: add vectors first")
        return unit_rows(inner.sa_decode(inner.sa_encode(vectors)))

    def search(
        self, queries: Any, top_k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (see `score_kind`) and ids (n, top_k), best first; id −1 pads when fewer match.

        `allowed_ids` restricts the search to those ids (exact for small filters; IVF indexes
        may return fewer hits under a very selective filter).
        """
        codes = self._codes(queries)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidInput(f"top_k must be a positive integer, got {top_k!r}")
        n = len(codes)
        if self.ntotal == 0 or (allowed_ids is not None and len(allowed_ids) == 0):
            return np.zeros((n, top_k), np.float32), np.full((n, top_k), -1, np.int64)
        if allowed_ids is not None:
            allowed_ids = _as_ids(allowed_ids)
            if len(allowed_ids) <= EXACT_FILTER_LIMIT and not isinstance(
                self._inner, faiss.IndexIVF
            ):
                return self._search_subset(codes, top_k, allowed_ids)
        selector = None if allowed_ids is None else faiss.IDSelectorBatch(allowed_ids)
        params = self._search_parameters(top_k, selector)
        faiss.omp_set_num_threads(FAISS_THREADS)
        try:
            distances, ids = self._index.search(codes, top_k, params=params)
        except RuntimeError:
            if allowed_ids is None:
                raise
            return self._search_subset(codes, top_k, allowed_ids)  # no selector support
        return self._scores(distances, ids), ids

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index atomically: a crash leaves the previous file or this one."""
        data = self._serialize()
        with atomic_write(path) as handle:
            handle.write(data.tobytes())
        self.saved_bytes_per_vector = len(data) / self.ntotal if self.ntotal else None

    @classmethod
    def load(cls, path: str | os.PathLike[str], spec: str, dim: int) -> "VectorIndex":
        """The index saved at `path`; a spec outside the grammar is refused before FAISS reads."""
        parsed = index_spec.parse(spec, dim)
        binary = parsed.binary
        try:
            loaded = (faiss.read_index_binary if binary else faiss.read_index)(os.fspath(path))
        except RuntimeError as exc:
            raise StorageError(f"index file {path} is unreadable: {exc}") from exc
        expected = faiss.IndexBinaryIDMap2 if binary else faiss.IndexIDMap2
        if not isinstance(loaded, expected) or loaded.d != dim:
            raise StorageError(f"index file {path} does not hold an id-mapped {spec} index")
        index = cls.__new__(cls)
        index.dim = dim
        index._spec = parsed
        index.spec = parsed.text
        index._index = loaded
        index.saved_bytes_per_vector = (
            os.path.getsize(path) / loaded.ntotal if loaded.ntotal else None
        )
        return index

    # ---- internals --------------------------------------------------------------------------

    @property
    def _inner(self) -> Any:
        if self.is_binary:
            return faiss.downcast_IndexBinary(self._index.index)
        return faiss.downcast_index(self._index.index)

    @property
    def _codec(self) -> Any:
        """The float index that encodes the vectors: an HNSW graph's storage, else the index."""
        inner = self._inner
        return faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner

    def _codes(self, vectors: Any) -> np.ndarray:
        """Float32 rows for float indexes; packed sign bits for binary ones."""
        vectors = np.ascontiguousarray(as_matrix(vectors, self.dim, "vectors"), dtype=np.float32)
        return np.packbits(vectors > 0, axis=1) if self.is_binary else vectors

    def _scores(self, distances: np.ndarray, ids: np.ndarray) -> np.ndarray:
        if not self.is_binary:
            return distances
        scores = 1.0 - 2.0 * distances.astype(np.float32) / self.dim
        return np.where(ids >= 0, scores, 0.0).astype(np.float32)

    def _serialize(self) -> np.ndarray:
        if self.is_binary:
            return faiss.serialize_index_binary(self._index)
        return faiss.serialize_index(self._index)

    def _search_subset(
        self, codes: np.ndarray, top_k: int, allowed_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores against the index's own codes of `allowed_ids`, for selective filters
        (where a graph search would miss them) and for indexes that take no selector (plain PQ)."""
        present = allowed_ids[np.isin(allowed_ids, self.ids())]
        n = len(codes)
        out_scores = np.zeros((n, top_k), np.float32)
        out_ids = np.full((n, top_k), -1, np.int64)
        if not len(present):
            return out_scores, out_ids
        if self.is_binary:
            stored = np.stack([self._index.reconstruct(int(i)) for i in present])
            hamming = np.unpackbits(codes[:, None, :] ^ stored[None, :, :], axis=2).sum(axis=2)
            scores = 1.0 - 2.0 * hamming.astype(np.float32) / self.dim
        else:
            scores = codes @ self._index.reconstruct_batch(present).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        width = order.shape[1]
        out_scores[:, :width] = np.take_along_axis(scores, order, axis=1)
        out_ids[:, :width] = present[order]
        return out_scores, out_ids

    def _train(self, codes: np.ndarray) -> None:
        try:
            self._index.train(codes)
        except RuntimeError as exc:
            raise NotEnoughData(
                f"index spec {self.spec!r} could not be trained on {len(codes)} vectors "
                f"({_first_line(exc)}): add more documents, or use a spec without training "
                "such as 'Flat' or 'HNSW32'"
            ) from exc

    def _search_parameters(
        self, top_k: int, selector: faiss.IDSelector | None
    ) -> faiss.SearchParameters | None:
        inner = self._inner
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


def _new_index(spec: index_spec.IndexSpec) -> Any:
    """The id-mapped FAISS index of a parsed spec (the grammar has bounded its parameters)."""
    if spec.binary:
        return faiss.IndexBinaryIDMap2(faiss.index_binary_factory(spec.dim, spec.text))
    index = faiss.index_factory(spec.dim, spec.text, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(index)


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
