"""VectorIndex: the FAISS specs we support, ids, filters, removal and persistence."""

import threading

import faiss
import numpy as np
import pytest

from index import VectorIndex
from index.errors import InvalidIndexSpec, InvalidInput, InvalidVectors, NotEnoughData, StorageError
from index.vector_index import EXACT_FILTER_LIMIT, FAISS_THREADS

DIM = 32


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2000, DIM)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


IDS = np.arange(1000, 3000, dtype=np.int64)
SPECS = [
    "Flat",
    "HNSW32",
    "SQ8",
    "IVF16,Flat",
    "IVF16,PQ8x4",
    "PQ8x4",
    "RR,PQ8x4",
    "PQ8x4fs",
    "RR,PQ8x4fs",
    "RaBitQ",
]


@pytest.mark.parametrize("spec", SPECS)
def test_each_spec_finds_a_stored_vector_under_its_id(spec: str, vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    assert index.ntotal == len(vectors)
    scores, ids = index.search(vectors[:20], 5)
    assert ids.shape == (20, 5)
    hits = (ids[:, 0] == IDS[:20]).mean()
    assert hits >= (1.0 if spec in ("Flat", "HNSW32", "SQ8", "IVF16,Flat") else 0.8)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_flat_scores_are_exact_cosines(vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, "Flat", vectors, IDS)
    scores, ids = index.search(vectors[:3], 10)
    expected = vectors[:3] @ vectors.T
    for row in range(3):
        assert np.allclose(scores[row], expected[row][ids[row] - 1000], atol=1e-5)
        assert np.allclose(scores[row], np.sort(expected[row])[::-1][:10], atol=1e-5)


@pytest.mark.parametrize("spec", SPECS)
def test_filter_returns_only_allowed_ids_best_first(spec: str, vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    allowed = IDS[::97]
    _, ids = index.search(vectors[:4], 5, allowed_ids=allowed)
    found = ids[ids >= 0]
    assert len(found) > 0 and np.isin(found, allowed).all()
    exact = VectorIndex.build(DIM, "Flat", vectors[::97], allowed)
    _, expected = exact.search(vectors[:4], 5)
    if spec in ("Flat", "HNSW32"):  # exact codes: the filtered top-1 is the true one
        assert (ids[:, 0] == expected[:, 0]).all()


def test_filter_matching_nothing_returns_padding(vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, "Flat", vectors, IDS)
    scores, ids = index.search(vectors[:2], 3, allowed_ids=np.array([], np.int64))
    assert (ids == -1).all() and scores.shape == (2, 3)


@pytest.mark.parametrize(
    "spec", ["Flat", "SQ8", "IVF16,Flat", "HNSW32", "PQ8x4", "RR,PQ8x4", "RR,PQ8x4fs", "BHNSW32"]
)
def test_removed_ids_are_never_found_again(spec: str, vectors: np.ndarray) -> None:
    """Graph indexes used to be rebuilt from the store on every delete; tombstones serve every
    spec alike (plain PQ and fast scan, which take no selector, by searching past them)."""
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    assert index.remove([1000, 1001, 99]) == 2
    assert index.ntotal == len(vectors) - 2
    assert index.dead_fraction == pytest.approx(2 / len(vectors))
    _, ids = index.search(vectors[:2], 3)
    assert not np.isin([1000, 1001], ids).any() and (ids >= 0).all()
    _, filtered = index.search(vectors[:2], 3, allowed_ids=IDS[:5])
    assert set(filtered[filtered >= 0].tolist()) <= {1002, 1003, 1004}
    assert 1000 not in index.ids() and len(index.ids()) == index.ntotal


@pytest.mark.parametrize("spec", ["PQ8x4", "RR,PQ8x4"])
def test_an_index_without_selectors_searches_past_its_tombstones(
    spec: str, vectors: np.ndarray
) -> None:
    """Plain PQ takes no selector: once a document was deleted every query decoded the whole
    index; it now asks for as many more hits as there are tombstones and drops them, which must
    give what scoring the live codes one by one gives (the filtered path)."""
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    index.remove(IDS[::3])
    scores, ids = index.search(vectors[:6], 10)
    assert (ids >= 0).all() and not np.isin(ids, IDS[::3]).any()
    exact_scores, _ = index.search(vectors[:6], 10, allowed_ids=index.ids())
    assert np.allclose(scores, exact_scores, atol=1e-5)


@pytest.mark.parametrize("spec", ["PQ8x4", "RR,PQ8x4", "PQ8x4fs"])
def test_an_index_without_selectors_searches_past_what_a_broad_filter_excludes(
    spec: str, vectors: np.ndarray
) -> None:
    """A filter that excludes a few hundred of the codes (and some tombstones) of an index that
    takes no selector: as many more hits as codes to leave out, not a decode of every allowed
    code; the same scores as that decode, and no excluded or removed id."""
    many = np.vstack([vectors, -vectors, vectors[:, ::-1]])  # 6,000: past EXACT_FILTER_LIMIT
    ids = np.arange(len(many), dtype=np.int64)
    index = VectorIndex.build(DIM, spec, many, ids)
    index.remove(ids[1::70])
    allowed = np.setdiff1d(index.ids(), ids[::50])
    assert len(allowed) > EXACT_FILTER_LIMIT >= len(ids) - len(allowed)
    scores, found = index.search(many[:6], 10, allowed_ids=allowed)
    assert (found >= 0).all() and np.isin(found, allowed).all()
    decoded, _ = index._search_subset(many[:6], 10, index._ids.positions_of(allowed))
    # fast scan scores through 8-bit lookup tables: its own scores differ from the decode's
    assert np.allclose(scores, decoded, atol=5e-3 if spec.endswith("fs") else 1e-5)


def test_ids_must_rise_from_add_to_add(vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, "Flat", vectors[:10], IDS[:10])
    with pytest.raises(InvalidInput, match="must rise"):
        index.add(vectors[10:12], [5, 6])
    assert index.ntotal == 10 and index.last_id == IDS[9]
    index.add(vectors[10:12], [5000, 7000])  # gaps are fine
    _, ids = index.search(vectors[11:12], 1)
    assert ids[0, 0] == 7000


def test_a_64_bit_code_costs_8_bytes_not_16(vectors: np.ndarray) -> None:
    """FAISS's IDMap kept an int64 per vector beside its code; ids live in runs now."""
    index = VectorIndex.build(64, "BFlat", np.hstack([vectors, vectors]), IDS)
    assert index.bytes_per_vector is not None and index.bytes_per_vector < 8.05
    index.remove(IDS[:1])  # the first removal allocates a tombstone bit per position
    assert index.bytes_per_vector is not None and index.bytes_per_vector > 8.125
    rabitq = VectorIndex.build(64, "RaBitQ", np.hstack([vectors, vectors]), IDS)
    assert rabitq.bytes_per_vector is not None and rabitq.bytes_per_vector < 16.5


def test_an_index_saved_with_faiss_ids_is_converted_on_load(vectors: np.ndarray, tmp_path) -> None:
    """Snapshots written before ids left FAISS hold an IndexIDMap2: they load as they were."""
    legacy = faiss.IndexIDMap2(faiss.index_factory(DIM, "SQ8", faiss.METRIC_INNER_PRODUCT))
    legacy.train(vectors)
    legacy.add_with_ids(vectors, IDS)
    legacy.remove_ids(faiss.IDSelectorBatch(IDS[:3]))
    faiss.write_index(legacy, str(tmp_path / "index.faiss"))
    loaded = VectorIndex.load(tmp_path / "index.faiss", "SQ8", DIM)
    assert loaded.ntotal == len(vectors) - 3
    assert np.array_equal(loaded.ids(), IDS[3:])
    _, ids = loaded.search(vectors[10:20], 1)
    assert np.array_equal(ids[:, 0], IDS[10:20])


@pytest.mark.parametrize("spec", ["Flat", "HNSW32", "IVF16,PQ8x4", "RR,PQ8x4", "RR,PQ8x4fs"])
def test_save_load_round_trip(spec: str, vectors: np.ndarray, tmp_path) -> None:
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    index.save(tmp_path / "index.npz")
    loaded = VectorIndex.load(tmp_path / "index.npz", spec, DIM)
    assert loaded.ntotal == index.ntotal and loaded.dim == DIM
    assert np.array_equal(loaded.search(vectors[:5], 4)[1], index.search(vectors[:5], 4)[1])
    assert np.array_equal(np.sort(loaded.ids()), IDS)
    assert index.bytes_per_vector and loaded.bytes_per_vector
    index.remove(IDS[:7])
    index.save(tmp_path / "index.npz")
    reloaded = VectorIndex.load(tmp_path / "index.npz", spec, DIM)
    assert np.array_equal(reloaded.ids(), IDS[7:]) and reloaded.dead_fraction > 0


def test_bytes_per_vector_shrinks_with_quantisation(vectors: np.ndarray) -> None:
    flat = VectorIndex.build(DIM, "Flat", vectors, IDS).bytes_per_vector
    sq8 = VectorIndex.build(DIM, "SQ8", vectors, IDS).bytes_per_vector
    assert flat is not None and sq8 is not None
    assert flat >= 4 * DIM and DIM <= sq8 < flat


def test_damaged_file_is_a_storage_error(tmp_path) -> None:
    (tmp_path / "index.npz").write_bytes(b"\x00" * 64)
    with pytest.raises(StorageError, match="unreadable"):
        VectorIndex.load(tmp_path / "index.npz", "Flat", DIM)


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("Nonsense", InvalidIndexSpec, "not supported"),
        ("PQ7", InvalidIndexSpec, "must divide k=32"),
        ("IDMap,Flat", InvalidIndexSpec, "not supported"),
        ("", InvalidIndexSpec, "non-empty"),
        ("PCA16,Flat", InvalidIndexSpec, "not supported"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(spec: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        VectorIndex(DIM, spec)


def test_too_few_vectors_to_train_is_a_clear_error(vectors: np.ndarray) -> None:
    index = VectorIndex(DIM, "IVF64,Flat")
    with pytest.raises(NotEnoughData, match="at least 64 vectors to train"):
        index.add(vectors[:10], IDS[:10])
    assert index.ntotal == 0


def test_bad_vectors_and_ids_are_refused(vectors: np.ndarray) -> None:
    index = VectorIndex(DIM)
    with pytest.raises(InvalidVectors, match="dimension 31"):
        index.add(vectors[:3, :31], IDS[:3])
    with pytest.raises(InvalidInput, match="3 vectors but 2 ids"):
        index.add(vectors[:3], IDS[:2])
    with pytest.raises(InvalidInput, match="integers"):
        index.add(vectors[:2], ["a", "b"])
    with pytest.raises(InvalidInput, match="top_k"):
        index.search(vectors[:1], 0)
    assert index.ntotal == 0


@pytest.mark.parametrize("spec", ["BFlat", "BHNSW32"])
def test_binary_codes_search_by_sign_agreement(spec: str, vectors: np.ndarray) -> None:
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    assert index.is_binary and index.score_kind == "sign_agreement"
    if spec == "BFlat":  # k/8 bytes of code, a run of ids; graphs add their links
        assert index.bytes_per_vector is not None and index.bytes_per_vector < DIM / 8 + 1
    scores, ids = index.search(vectors[:10], 3)
    assert (ids[:, 0] == IDS[:10]).all() and np.allclose(scores[:, 0], 1.0)
    signs = np.sign(vectors[:1]) * np.sign(vectors[ids[0, 1] - 1000])
    assert scores[0, 1] == pytest.approx(signs.mean(), abs=1e-6)
    _, filtered = index.search(vectors[:2], 2, allowed_ids=IDS[100:110])
    assert np.isin(filtered, IDS[100:110]).all()


def test_binary_codes_need_whole_bytes() -> None:
    with pytest.raises(InvalidIndexSpec, match="divisible by 8"):
        VectorIndex(12, "BFlat")
    with pytest.raises(InvalidIndexSpec, match="not supported"):
        VectorIndex(16, "BIVF16")


@pytest.mark.parametrize(
    ("spec", "kind", "min_cosine"),
    [
        ("Flat", "cosine", 0.9999),
        ("SQ8", "quantized_cosine", 0.999),
        ("BFlat", "sign_agreement", 0.7),
    ],
)
def test_quantize_returns_what_the_index_scores(
    spec: str, kind: str, min_cosine: float, vectors: np.ndarray
) -> None:
    index = VectorIndex.build(DIM, spec, vectors, IDS)
    assert index.score_kind == kind
    decoded = index.quantize(vectors[:50])
    assert np.allclose(np.linalg.norm(decoded, axis=1), 1, atol=1e-5)
    assert (decoded * vectors[:50]).sum(axis=1).min() >= min_cosine
    scores, _ = index.search(vectors[:1], 1)
    assert scores[0, 0] == pytest.approx(
        float(decoded[0] @ index.quantize(vectors[:1])[0]), abs=2e-3
    )


def test_faiss_runs_on_one_thread_in_whatever_thread_searches(vectors: np.ndarray) -> None:
    """OpenMP's thread count is per thread: pinning it once where the process starts left the
    threads that run queries with a team of OpenMP threads spinning on the encoder's cores."""
    index = VectorIndex.build(DIM, "SQ8", vectors, IDS)
    seen: list[int] = []

    def query() -> None:
        index.search(vectors[:1], 3)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=query)
    worker.start()
    worker.join()
    assert seen == [FAISS_THREADS]
