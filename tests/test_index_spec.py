"""The index-spec grammar: every spec FAISS would crash, hang or exhaust memory on is refused
before any FAISS call, with a message that names the bound (issue 17, item 1)."""

import numpy as np
import pytest

from index.errors import InvalidIndexSpec, NotEnoughData
from index.index_spec import MAX_INDEX_BYTES, parse
from index.vector_index import VectorIndex

K = 128

# Each of these was accepted by `faiss.index_factory`, then crashed (HNSW1: SIGSEGV, HNSW0:
# abort, PQ16x0: SIGFPE), hung (NSG0), failed every query (IVF0,Flat) or allocated gigabytes.
CRASHING_SPECS = {
    "HNSW1": "M must be between 4 and 64",
    "HNSW0": "M must be between 4 and 64",
    "PQ16x0": "nbits must be between 1 and 8",
    "NSG0": "not supported",
    "IVF0,Flat": "nlist must be between 1 and 16384",
    "PQ128x24": "nbits must be between 1 and 8",
    "RQ1000x16": "not supported",
    "IVF10000000,SQ8": "nlist must be between 1 and 16384",
    "HNSW32_PQ16x20": "not supported",
    "IVF99999999999999999999999,Flat": "nlist must be between 1 and 16384",
}


@pytest.mark.parametrize(("spec", "reason"), CRASHING_SPECS.items())
def test_specs_that_crash_faiss_are_refused_before_faiss(spec: str, reason: str) -> None:
    with pytest.raises(InvalidIndexSpec, match=reason):
        parse(spec, K)
    with pytest.raises(InvalidIndexSpec, match=reason):
        VectorIndex(K, spec)


@pytest.mark.parametrize(
    "spec",
    [
        "Flat",
        "SQ8",
        "SQ4",
        "SQfp16",
        "PQ16",
        "PQ16x4",
        "RR,PQ16x4",
        "PQ16x4fs",
        "RR,PQ32x4fs",
        "RaBitQ",
        "HNSW32",
        "HNSW16,SQ8",
        "IVF256,PQ16",
        "IVF16,Flat",
        "IVF16,RaBitQ",
        "BFlat",
        "BHNSW32",
    ],
)
def test_supported_specs_build_and_search(spec: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, K)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex.build(K, spec, vectors, np.arange(300))
    assert index.ntotal == 300
    assert index.search(vectors[:3], 5)[1].shape == (3, 5)


def test_pq_must_split_k_evenly_and_the_message_names_divisors() -> None:
    with pytest.raises(InvalidIndexSpec, match="must divide k=96: use a divisor of 96 such as"):
        parse("PQ7", 96)


def test_a_rotation_before_pq_counts_its_matrix_and_keeps_pq_bounds() -> None:
    assert parse("RR,PQ16", K).fixed_bytes == parse("PQ16", K).fixed_bytes + 4 * K * K
    assert parse("RR,PQ16x7", K).code_bytes == 14
    with pytest.raises(InvalidIndexSpec, match="must divide k=96"):
        parse("RR,PQ7", 96)
    with pytest.raises(InvalidIndexSpec, match="not supported"):
        parse("RR,SQ8", K)
    fast = parse("RR,PQ32x4fs", K)  # fast scan: 4 bits a sub-quantizer, and only 4
    assert fast.code_bytes == 16 and fast.fixed_bytes == 4 * 16 * K + 4 * K * K
    assert parse("PQ32x4fs", K).fixed_bytes == 4 * 16 * K
    with pytest.raises(InvalidIndexSpec, match="not supported"):
        parse("PQ16x8fs", K)


def test_memory_estimate_is_checked_against_the_limit() -> None:
    spec = parse("Flat", K)
    assert spec.estimated_bytes(1000) == 1000 * 4 * K  # codes only: ids are runs
    ivf = parse("IVF16,SQ8", K)  # inverted lists keep an 8-byte id per code
    assert ivf.estimated_bytes(1000) == ivf.fixed_bytes + 1000 * (K + 8)
    too_many = MAX_INDEX_BYTES // (4 * K) + 1
    with pytest.raises(InvalidIndexSpec, match="GiB, above the limit"):
        spec.check_fits(too_many)


def test_training_needs_enough_vectors_before_faiss_trains() -> None:
    with pytest.raises(NotEnoughData, match="needs at least 256 vectors to train"):
        parse("IVF256,PQ16", K).check_fits(50)


@pytest.mark.parametrize("spec", ["PQ16", "IVF16,PQ16", "RR,PQ16"])
def test_pq_specs_do_not_run_polysemous_training(spec: str) -> None:
    """index_factory turns on polysemous training for 8-bit PQ: 35 s of one core per training
    here, for a code order only Hamming-filtered search (never ours) uses."""
    import faiss

    index = VectorIndex(K, spec)._index
    quantizer = index.index if isinstance(index, faiss.IndexPreTransform) else index
    assert faiss.downcast_index(quantizer).do_polysemous_training is False
