"""Two-stage search: compressed candidates, exact raw-cosine order."""

import numpy as np
import pytest

from index import Collection, Document, Settings, WhiteningKernel
from index.errors import InvalidInput
from index.rescoring import default_candidates, rescoring_kernel, search
from index.vector_index import VectorIndex


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    raw = rng.standard_normal((3000, 64)) * np.geomspace(1, 0.05, 64)
    raw = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    return np.arange(10, 3010, dtype=np.int64), raw


def _lookup(rows: np.ndarray, raw: np.ndarray):
    return lambda wanted: (wanted, raw[np.searchsorted(rows, wanted)])


def test_rescored_scores_are_raw_cosines_and_recover_the_exact_order(synthetic) -> None:
    rows, raw = synthetic
    kernel = WhiteningKernel(k=16).fit(raw)
    index = VectorIndex.build(16, "BFlat", kernel.transform(raw), rows)
    queries = raw[:20] + 0.05 * np.random.default_rng(1).standard_normal(raw[:20].shape)
    exact = queries @ raw.T / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = rows[np.argsort(-exact, axis=1)[:, :10]]
    _, plain, kind = search(kernel, index, queries, 10)
    scores, found, rescored_kind = search(
        kernel, index, queries, 10, raw_lookup=_lookup(rows, raw), candidates=200
    )
    assert (kind, rescored_kind) == ("sign_agreement", "raw_cosine")

    def recall(got: np.ndarray) -> float:
        return np.mean([len(set(g) & set(t)) for g, t in zip(got, truth, strict=True)]) / 10

    assert recall(found) > recall(plain) + 0.2
    for q in range(20):
        expected = exact[q][np.searchsorted(rows, found[q])]
        assert np.allclose(scores[q], expected, atol=1e-5)
        assert np.all(np.diff(scores[q]) <= 1e-7)
    _, everything, _ = search(
        kernel, index, queries, 10, raw_lookup=_lookup(rows, raw), candidates=len(rows)
    )
    assert (everything == truth).all()  # all candidates re-scored: exact search


def test_candidates_are_checked(synthetic) -> None:
    rows, raw = synthetic
    kernel = WhiteningKernel(k=8).fit(raw)
    index = VectorIndex.build(8, "Flat", kernel.transform(raw), rows)
    with pytest.raises(InvalidInput, match="candidates must be an integer ≥ top_k"):
        search(kernel, index, raw[:1], 10, raw_lookup=_lookup(rows, raw), candidates=5)
    assert default_candidates(10) == 40 and default_candidates(50) == 200


def test_collection_rescoring_is_a_per_query_option(tmp_path, corpus_vectors) -> None:
    texts = [f"document {i}" for i in range(len(corpus_vectors))]
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32, rescore="off"))
    c.add_vectors([Document(t, id=str(i)) for i, t in enumerate(texts)], corpus_vectors)
    plain = c.search_vectors(corpus_vectors[:3], top_k=5)
    rescored = c.search_vectors(corpus_vectors[:3], top_k=5, rescore=True, candidates=60)
    assert {h.score_kind for q in plain for h in q} == {"quantized_cosine"}
    assert {h.score_kind for q in rescored for h in q} == {"raw_cosine"}
    for q, hits in enumerate(rescored):
        assert hits[0].id == str(q) and hits[0].score == pytest.approx(1.0, abs=1e-5)
        for hit in hits:
            expected = float(corpus_vectors[int(hit.id)] @ corpus_vectors[q])
            assert hit.score == pytest.approx(expected, abs=1e-5)
    c.fit(rescore=True)
    assert c.search_vectors(corpus_vectors[:1], top_k=2)[0][0].score_kind == "raw_cosine"
    assert c.describe()["settings"]["rescore"] == "raw"


def test_kernel_space_of_a_rotation_at_full_dimension_is_raw_cosine(synthetic) -> None:
    """Issue 18 item 1: with β=γ=0 and rescore_k=d, kernel-space re-scoring equals raw."""
    rows, raw = synthetic
    kernel = WhiteningKernel(k=16).fit(raw)
    index = VectorIndex.build(16, "SQ8", kernel.transform(raw), rows)
    queries = raw[:30] + 0.05 * np.random.default_rng(2).standard_normal(raw[:30].shape)
    lookup = _lookup(rows, raw)
    rescorer = rescoring_kernel(kernel, None)
    assert rescorer.k_ == 64 and kernel.k_ == 16
    raw_scores, raw_ids, raw_kind = search(kernel, index, queries, 10, raw_lookup=lookup)
    k_scores, k_ids, k_kind = search(
        kernel, index, queries, 10, raw_lookup=lookup, space="kernel", rescorer=rescorer
    )
    assert (raw_kind, k_kind) == ("raw_cosine", "kernel_cosine")
    assert np.array_equal(raw_ids, k_ids)
    assert np.allclose(raw_scores, k_scores, atol=1e-5)
    # what lets re-scoring skip the d × d product for a rotation: its cosines are raw ones
    rotated = rescorer.transform(raw[:200]) @ rescorer.transform(queries).T
    unit = raw[:200] / np.linalg.norm(raw[:200], axis=1, keepdims=True)
    assert np.allclose(
        rotated, unit @ (queries / np.linalg.norm(queries, axis=1)[:, None]).T, atol=1e-5
    )


def test_kernel_space_serves_the_tuned_kernel(synthetic) -> None:
    """What users get is the cosine β, γ, k define, not raw cosine (which undid a tuned kernel)."""
    rows, raw = synthetic
    kernel = WhiteningKernel(beta=0.5, gamma=0.5, k=16).fit(raw)
    index = VectorIndex.build(16, "Flat", kernel.transform(raw), rows)
    queries = raw[:30] + 0.05 * np.random.default_rng(3).standard_normal(raw[:30].shape)
    lookup = _lookup(rows, raw)
    scores, ids, kind = search(
        kernel, index, queries, 10, raw_lookup=lookup, space="kernel", rescorer=kernel
    )
    plain_scores, plain_ids, _ = search(kernel, index, queries, 10)  # exact in kernel space
    assert kind == "kernel_cosine"
    assert np.array_equal(ids, plain_ids) and np.allclose(scores, plain_scores, atol=1e-5)
    _, raw_ids, _ = search(kernel, index, queries, 10, raw_lookup=lookup)
    assert not np.array_equal(raw_ids, ids)  # raw cosine would have served another order


def test_old_manifests_rescore_flags_mean_raw_and_off() -> None:
    assert Settings(rescore=True).rescore == "raw"
    assert Settings(rescore=False).rescore == "off"
    assert Settings(rescore="kernel", rescore_k=64).rescore_k == 64
    with pytest.raises(InvalidInput, match="rescore must be one of off, raw, kernel"):
        Settings(rescore="cosine")


def test_rescore_k_below_the_kernel_k_is_refused(synthetic) -> None:
    _, raw = synthetic
    kernel = WhiteningKernel(k=16).fit(raw)
    with pytest.raises(InvalidInput, match="below the kernel's k=16"):
        rescoring_kernel(kernel, 8)
    assert rescoring_kernel(kernel, 32).k_ == 32 and kernel.k_ == 16  # a copy, not the kernel


def test_candidates_are_a_collection_setting_a_query_may_override(tmp_path, corpus_vectors) -> None:
    """Issue 18 item 5: binary and RaBitQ codes keep raw cosine's order only with a few hundred
    candidates, so the number is part of what a collection serves (and what tune applies)."""
    texts = [f"document {i}" for i in range(len(corpus_vectors))]
    settings = Settings(k=16, index_spec="BFlat", rescore="kernel", candidates=len(texts))
    c = Collection.create(tmp_path / "c", "m", 384, settings)
    c.add_vectors([Document(t, id=str(i)) for i, t in enumerate(texts)], corpus_vectors)
    queries = corpus_vectors[:8] + 0.3 * corpus_vectors[8:16]
    exact = queries @ corpus_vectors.T / np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [[str(i) for i in np.argsort(-row)[:5]] for row in exact]
    every = c.search_vectors(queries, top_k=5)  # every document a candidate: exact order
    assert [[h.id for h in hits] for hits in every] == truth
    few = c.search_vectors(queries, top_k=5, candidates=5)  # the query's own number wins
    assert [[h.id for h in hits] for hits in few] != truth
    c.fit(candidates=3)  # below top_k: the collection's number is a floor, not an error
    assert len(c.search_vectors(queries[:1], top_k=5)[0]) == 5
    assert c.describe()["settings"]["candidates"] == 3
    c.fit(k=16)  # left out: kept
    assert c.describe()["settings"]["candidates"] == 3
    c.fit(candidates=None)  # None: back to the default, a few per hit
    assert c.describe()["settings"]["candidates"] is None
    with pytest.raises(InvalidInput, match="only"):
        c.search_vectors(queries[:1], top_k=5, index_spec="Flat")


def test_more_candidates_than_vectors_allocate_only_the_vectors(tmp_path, corpus_vectors) -> None:
    """Found by the fuzz test: candidates of 10**18 went into FAISS, which allocates n × k."""
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32))
    c.add_vectors([Document(str(i), id=str(i)) for i in range(20)], corpus_vectors[:20])
    hits = c.search_vectors(corpus_vectors[:2], top_k=5, candidates=10**18)
    assert [q[0].id for q in hits] == ["0", "1"] and all(len(q) == 5 for q in hits)
