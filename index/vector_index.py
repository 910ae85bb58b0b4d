"""FAISS behind one small interface: cosine (inner product on normalised vectors), int64 ids.

Float specs come from `faiss.index_factory` ("Flat", "HNSW32", "SQ8", "PQ16", "IVF256,PQ16",
"RaBitQ"...). Binary specs ("BFlat", "BHNSW32") keep one bit per dimension, the sign of the kernel
coordinate, and search by Hamming distance: k/8 bytes per vector. "RaBitQ" also keeps one bit per
dimension (plus two floats) but scores a float query against the bits, which ranks far better.
The FAISS index holds codes only; ids live in an `IdMap` (runs of rising ids, and a tombstone
bitmap once a row is removed), so a 64-bit code costs 8 bytes in memory, not 16.
"""

import os
import re
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from index import index_file, index_spec
from index.errors import InvalidInput, NotEnoughData, StorageError
from index.id_map import IdMap
from index.validation import as_matrix, unit_rows

FAISS_THREADS = 1
"""OpenMP threads of each FAISS call. A query is one vector, which OpenMP cannot split, while its
team of threads spins on the cores the encoder needs. OpenMP's setting belongs to the calling
thread (a query runs on a pool thread, not on the one that started the process), so every call
below sets it for its own thread; the call costs nothing measurable."""

IVF_NPROBE = 16
"""Inverted lists probed per query for IVF specs: recall near exact for lists of a few thousand."""

EXACT_FILTER_LIMIT = 4096
"""Filters matching at most this many vectors are scored exactly against those vectors' codes;
an index that takes no selector searches past at most this many codes to leave out (tombstones
and codes a filter excludes)."""

HNSW_EF_SEARCH = 64
"""HNSW candidate-list size per query (raised to 2·top_k for larger top_k)."""


class VectorIndex:
    """A FAISS index for L2-normalised vectors, addressed by rising int64 ids (document rows).

    Specs that need training are trained on the first `add` (or `build`); too few vectors to
    train is a NotEnoughData error. Ids must rise from add to add (`IdMap`); a removed id leaves
    a tombstone that searches skip, until the index is built anew (`dead_fraction` says when
    that pays). `score_kind` names what `search` scores are: "cosine" (Flat, HNSW),
    "quantized_cosine" (SQ, PQ, RaBitQ: cosine of the codes) or "sign_agreement" (binary:
    1 − 2·Hamming/k, the fraction of agreeing signs rescaled to [−1, 1]).
    """

    def __init__(self, dim: int, spec: str = "Flat") -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        self.dim = dim
        self._spec = index_spec.parse(spec, dim)
        self.spec = self._spec.text
        self._index = _new_index(self._spec)
        self._ids = IdMap()
        self.saved_bytes_per_vector: float | None = None

    @classmethod
    def build(
        cls,
        dim: int,
        spec: str,
        vectors: np.ndarray,
        ids: np.ndarray,
        training: np.ndarray | None = None,
    ) -> "VectorIndex":
        """A new index holding `vectors` under `ids`, trained when the spec needs it: on
        `training` if given (a sharded fit's extremes of every shard), else on `vectors`."""
        order = np.argsort(_as_ids(ids), kind="stable")
        index = cls(dim, spec)
        if training is not None:
            index._train(index._codes(training))
        index.add(as_matrix(vectors, dim, "vectors")[order], _as_ids(ids)[order])
        return index

    @property
    def ntotal(self) -> int:
        """Live vectors (tombstones left out)."""
        return self._ids.size - self._ids.dead

    @property
    def dead_fraction(self) -> float:
        """The share of the index's codes that belong to removed ids."""
        return self._ids.dead / self._ids.size if self._ids.size else 0.0

    @property
    def is_binary(self) -> bool:
        return isinstance(self._index, faiss.IndexBinary)

    @property
    def score_kind(self) -> str:
        if self.is_binary:
            return "sign_agreement"
        codec = self._codec
        exact = isinstance(codec, faiss.IndexFlat) or (
            isinstance(codec, faiss.IndexIVFFlat) and not isinstance(codec, faiss.IndexIVFPQ)
        )
        return "cosine" if exact else "quantized_cosine"

    @property
    def bytes_per_vector(self) -> float | None:
        """Memory per live vector: the index as FAISS serialises it (codes, per-vector factors,
        graph links, codebooks) plus the id runs and tombstone bits; tombstoned codes count too.

        It serialises the index: not while another thread adds. `saved_bytes_per_vector` is the
        same figure as of the last save or load, free to read at any time.
        """
        if self.ntotal == 0:
            return None
        return (len(self._serialize()) + self._ids.nbytes) / self.ntotal

    @property
    def last_id(self) -> int:
        """The largest id ever added (−1 when none): ids added next must exceed it."""
        return self._ids.last

    def ids(self) -> np.ndarray:
        return self._ids.live_ids()

    def add(self, vectors: Any, ids: Any) -> None:
        """Add `vectors` under `ids`, which must rise and exceed every id added before."""
        codes = self._codes(vectors)
        ids = _as_ids(ids)
        if len(ids) != len(codes):
            raise InvalidInput(f"{len(codes)} vectors but {len(ids)} ids: give one id each")
        if not len(ids):
            return
        self._ids.check_rising(ids)
        self._spec.check_fits(self._ids.size + len(ids))  # before FAISS allocates or trains
        faiss.omp_set_num_threads(FAISS_THREADS)
        if not self._index.is_trained:
            self._train(codes)
        self._index.add(codes)
        self._ids.append(ids)

    def remove(self, ids: Any) -> int:
        """Remove `ids` (unknown ones are ignored) by tombstones; returns how many were removed."""
        return self._ids.remove(_as_ids(ids))

    def quantize(self, vectors: Any) -> np.ndarray:
        """`vectors` as the index holds them (decoded codes), L2-normalised: what it scores."""
        vectors = np.ascontiguousarray(as_matrix(vectors, self.dim, "vectors"), dtype=np.float32)
        if self.is_binary:
            signs = np.where(vectors > 0, 1.0, -1.0).astype(np.float32)
            return signs / np.sqrt(self.dim, dtype=np.float32)
        codec = self._codec
        if not codec.is_trained:
            raise NotEnoughData("the index is not trained yet: add vectors first")
        return unit_rows(codec.sa_decode(codec.sa_encode(vectors)))

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
        allowed = None if allowed_ids is None else self._ids.positions_of(_as_ids(allowed_ids))
        if self.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros((n, top_k), np.float32), np.full((n, top_k), -1, np.int64)
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT and not self._is_ivf:
            return self._search_subset(codes, top_k, allowed)
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
        elif self._ids.dead:
            selector = faiss.IDSelectorBitmap(self._ids.size, faiss.swig_ptr(self._ids.live_bitmap))
        else:
            selector = None
        params = self._search_parameters(top_k, selector)
        faiss.omp_set_num_threads(FAISS_THREADS)
        try:
            distances, positions = self._index.search(codes, top_k, params=params)
        except RuntimeError:  # plain PQ and fast scan take no selector
            if selector is None:
                raise
            left_out = self._ids.dead
            if allowed is not None:  # live codes the filter excludes
                left_out += self._ids.size - self._ids.dead - len(allowed)
            if left_out <= EXACT_FILTER_LIMIT:
                return self._search_past(codes, top_k, left_out, allowed)
            return self._search_subset(codes, top_k, allowed)
        return self._scores(distances, positions), self._ids.ids_at(positions)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index and its ids atomically: a crash leaves the previous file or this one."""
        data = self._serialize()
        index_file.write(path, data, self._ids)
        self.saved_bytes_per_vector = (
            (len(data) + self._ids.nbytes) / self.ntotal if self.ntotal else None
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], spec: str, dim: int) -> "VectorIndex":
        """The index saved at `path` (or by a version that kept FAISS's id map: converted); a
        spec outside the grammar is refused before FAISS reads."""
        parsed = index_spec.parse(spec, dim)
        index = cls.__new__(cls)
        index.dim = dim
        index._spec = parsed
        index.spec = parsed.text
        try:
            index._index, index._ids = index_file.read(path, parsed.binary)
        except (RuntimeError, ValueError, KeyError, OSError, InvalidInput) as exc:
            raise StorageError(f"index file {path} is unreadable: {_first_line(exc)}") from exc
        if index._index.d != dim or index._index.ntotal != index._ids.size:
            raise StorageError(f"index file {path} does not hold a {spec} index of dimension {dim}")
        index.saved_bytes_per_vector = (
            os.path.getsize(path) / index.ntotal if index.ntotal else None
        )
        return index

    # ---- internals --------------------------------------------------------------------------

    @property
    def _is_ivf(self) -> bool:
        return isinstance(self._index, faiss.IndexIVF)

    @property
    def _codec(self) -> Any:
        """The float index that encodes the vectors: an HNSW graph's storage, else the index."""
        index = self._index
        return faiss.downcast_index(index.storage) if isinstance(index, faiss.IndexHNSW) else index

    def _codes(self, vectors: Any) -> np.ndarray:
        """Float32 rows for float indexes; packed sign bits for binary ones."""
        vectors = np.ascontiguousarray(as_matrix(vectors, self.dim, "vectors"), dtype=np.float32)
        return np.packbits(vectors > 0, axis=1) if self.is_binary else vectors

    def _scores(self, distances: np.ndarray, positions: np.ndarray) -> np.ndarray:
        if not self.is_binary:
            return distances
        scores = 1.0 - 2.0 * distances.astype(np.float32) / self.dim
        return np.where(positions >= 0, scores, 0.0).astype(np.float32)

    def _serialize(self) -> np.ndarray:
        if self.is_binary:
            return faiss.serialize_index_binary(self._index)
        return faiss.serialize_index(self._index)

    def _search_past(
        self, codes: np.ndarray, top_k: int, left_out: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """For indexes that take no selector: as many more hits as there are codes to leave out
        (tombstones, and live codes outside the `allowed` positions), those dropped. Scoring
        every live or allowed code instead (`_search_subset`) cost a decode of most of the index
        per query once one document had been deleted, or under a filter that excludes few."""
        fetch = min(top_k + left_out, self._ids.size)
        distances, positions = self._index.search(codes, fetch)
        scores, ids = self._scores(distances, positions), self._ids.ids_at(positions)
        kept = ids >= 0
        if allowed is not None:
            kept &= np.isin(positions, allowed)
        out_scores = np.zeros((len(codes), top_k), np.float32)
        out_ids = np.full((len(codes), top_k), -1, np.int64)
        for row in range(len(codes)):
            found = np.flatnonzero(kept[row])[:top_k]
            out_scores[row, : len(found)] = scores[row, found]
            out_ids[row, : len(found)] = ids[row, found]
        return out_scores, out_ids

    def _search_subset(
        self, codes: np.ndarray, top_k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores against the index's own codes at the `allowed` positions (None: every
        live one), for selective filters (where a graph search would miss them) and for indexes
        that take no selector (plain PQ)."""
        positions = self._ids.live_positions() if allowed is None else allowed
        if self.is_binary:
            stored = np.stack([self._index.reconstruct(int(i)) for i in positions])
            hamming = np.unpackbits(codes[:, None, :] ^ stored[None, :, :], axis=2).sum(axis=2)
            scores = 1.0 - 2.0 * hamming.astype(np.float32) / self.dim
        else:
            scores = codes @ self._index.reconstruct_batch(positions).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        n, width = len(codes), order.shape[1]
        out_scores = np.zeros((n, top_k), np.float32)
        out_ids = np.full((n, top_k), -1, np.int64)
        out_scores[:, :width] = np.take_along_axis(scores, order, axis=1)
        out_ids[:, :width] = self._ids.ids_at(positions[order])
        return out_scores, out_ids

    def _train(self, codes: np.ndarray) -> None:
        faiss.omp_set_num_threads(FAISS_THREADS)
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
        index = self._index
        if isinstance(index, faiss.IndexHNSW | faiss.IndexBinaryHNSW):
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(HNSW_EF_SEARCH, 2 * top_k)
        elif isinstance(index, faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = min(IVF_NPROBE, index.nlist)
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
            params._selector = selector  # keep the selector alive as long as the parameters
        return params


def _new_index(spec: index_spec.IndexSpec) -> Any:
    """The FAISS index of a parsed spec (the grammar has bounded its parameters).

    index_factory turns on polysemous training for 8-bit PQ ("PQ16", "IVF256,PQ16"): an
    annealing that reorders each codebook for Hamming-filtered search, which we never run (ADC
    distances do not depend on the order). It took 35 s of one core to train PQ16 on 300
    vectors here against 0.03 s without, on every refit; it is turned off."""
    if spec.binary:
        return faiss.index_binary_factory(spec.dim, spec.text)
    index = faiss.index_factory(spec.dim, spec.text, faiss.METRIC_INNER_PRODUCT)
    quantizer = index.index if isinstance(index, faiss.IndexPreTransform) else index
    quantizer = faiss.downcast_index(quantizer)
    if hasattr(quantizer, "do_polysemous_training"):
        quantizer.do_polysemous_training = False
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
