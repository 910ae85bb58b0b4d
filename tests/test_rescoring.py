"""Two-stage search: compressed candidates, exact raw-cosine order."""

import numpy as np
import pytest

from index import Collection, Document, Settings, WhiteningKernel
from index.errors import InvalidInput
from index.rescoring import default_candidates, search
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
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32, index_spec="SQ8"))
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
    assert c.describe()["settings"]["rescore"] is True
