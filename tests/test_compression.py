"""The compression report: bytes, recall against exact raw search, and the task metric."""

import numpy as np
import pytest

from index import Collection, Document, Settings, WhiteningKernel
from index.compression import report


@pytest.fixture(scope="module")
def collection(tmp_path_factory, corpus_vectors) -> Collection:
    c = Collection.create(tmp_path_factory.mktemp("c") / "c", "m", 384, Settings())
    c.add_vectors(
        [Document(f"t{i}", id=f"d{i}") for i in range(len(corpus_vectors))], corpus_vectors
    )
    return c


def test_report_rows_cover_the_grid_and_recall_matches_an_independent_search(
    collection: Collection, corpus_vectors
) -> None:
    result = collection.compression_report(
        ks=[384, 64], specs=["Flat", "SQ8", "BFlat"], n_queries=40
    )
    assert [(r.k, r.index_spec, r.rescore) for r in result.rows] == [
        (k, spec, on)
        for k in (384, 64)
        for spec in ("Flat", "SQ8", "BFlat")
        for on in (False, True)
    ]
    by = {(r.k, r.index_spec, r.rescore): r for r in result.rows}
    assert by[(384, "Flat", False)].recall_at_10 == pytest.approx(1.0)  # a rotation: exact
    assert by[(64, "BFlat", True)].recall_at_10 >= by[(64, "BFlat", False)].recall_at_10
    assert by[(64, "BFlat", False)].bytes_per_vector < by[(64, "SQ8", False)].bytes_per_vector
    assert by[(64, "SQ8", False)].bytes_per_vector < by[(64, "Flat", False)].bytes_per_vector
    assert all(r.latency_ms > 0 for r in result.rows)
    # Recompute one recall by hand: sampled documents as queries, their own document left out.
    _, raw = collection.raw_vectors()
    picked = np.random.default_rng(0).choice(len(raw), 40, False)
    kernel = WhiteningKernel(k=64).fit(raw)
    kv = kernel.transform(raw)
    hits = 0
    for q in picked:
        exact = raw @ raw[q]
        exact[q] = -np.inf
        truth = set(np.argsort(-exact)[:10])
        approx = kv @ kv[q]
        approx[q] = -np.inf
        hits += len(truth & set(np.argsort(-approx)[:10]))
    assert by[(64, "Flat", False)].recall_at_10 == pytest.approx(hits / 400, abs=0.011)
    assert "| 64 | BFlat | on |" in result.table()


def test_report_with_judgments_adds_ndcg(collection: Collection, corpus_vectors) -> None:
    queries = corpus_vectors[:20] + 0.01
    relevant = [{f"d{i}": 1.0} for i in range(20)]
    result = collection.compression_report(
        queries=queries, relevant=relevant, ks=[128], specs=["Flat", "BFlat"]
    )
    assert result.metric_name == "nDCG@10" and result.n_queries == 20
    assert all(r.metric is not None and 0 <= r.metric <= 1 for r in result.rows)
    assert max(r.metric for r in result.rows) > 0.9


def test_report_with_pairs_scores_the_codes(corpus_vectors) -> None:
    kernel = WhiteningKernel().fit(corpus_vectors)
    a, b = corpus_vectors[:60], corpus_vectors[60:120]
    gold = (a * b).sum(axis=1)  # raw cosine as the gold score
    result = report(
        kernel, np.arange(180), corpus_vectors, ks=[384, 32], specs=["Flat"], pairs=(a, b, gold)
    )
    flat_full = next(r for r in result.rows if r.k == 384 and not r.rescore)
    assert flat_full.metric == pytest.approx(1.0, abs=1e-6)  # rotation keeps every cosine
    assert all(r.metric is None for r in result.rows if r.rescore)


def test_duplicates_tie_rather_than_miss(corpus_vectors) -> None:
    """Many copies of one text: which copies an index returns is arbitrary, and not a miss."""
    raw = np.vstack([np.repeat(corpus_vectors[:1], 30, axis=0), corpus_vectors[1:100]])
    kernel = WhiteningKernel().fit(raw)
    result = report(kernel, np.arange(len(raw)), raw, ks=[384], specs=["Flat"], n_queries=60)
    assert [r.recall_at_10 for r in result.rows] == [pytest.approx(1.0)] * 2


def test_the_collections_k_is_measured_and_ks_gamma_rules_out_are_said(corpus_vectors) -> None:
    """Issue 18 item 3: the report ignored the collection's k and dropped γ > 0 rows silently."""
    kernel = WhiteningKernel(gamma=0.5, k=48).fit(corpus_vectors)
    rank = kernel.rank_
    assert rank < 192  # 180 vectors span fewer than 192 dimensions
    result = report(kernel, np.arange(180), corpus_vectors, specs=["Flat"], n_queries=20)
    measured = sorted({r.k for r in result.rows})
    assert 48 in measured and max(measured) <= rank
    expected = tuple(k for k in (384, 256, 192, 128, 96, 64) if k > rank)
    assert result.skipped_ks == expected and result.rank == rank
    assert f"Not measured: k={', '.join(map(str, expected))}, above the {rank}" in result.table()


def test_smallest_is_the_fewest_bytes_reaching_the_recall_target(collection: Collection) -> None:
    result = collection.compression_report(ks=[384, 32], specs=["Flat", "BFlat"], n_queries=40)
    rescored = [r for r in result.rows if r.rescore]
    chosen = result.smallest(rescore=True, target=0.99)
    assert chosen is not None and chosen.recall_at_10 >= 0.99 and chosen.rescore
    assert all(
        r.bytes_per_vector >= chosen.bytes_per_vector for r in rescored if r.recall_at_10 >= 0.99
    )
    assert result.smallest(rescore=False, target=1.01) is None


def test_rescored_rows_measure_the_collections_own_pipeline(tmp_path, corpus_vectors) -> None:
    """Issue 18 item 3: the report re-scores as the collection serves (its kernel space,
    rescore_k and candidates), so its row for the collection's k and spec is what queries get."""
    settings = Settings(
        beta=0.5, gamma=0.5, k=24, index_spec="BFlat", rescore="kernel", candidates=30
    )
    c = Collection.create(tmp_path / "c", "m", 384, settings)
    c.add_vectors(
        [Document(f"d{i}", id=str(i)) for i in range(len(corpus_vectors))], corpus_vectors
    )
    queries = corpus_vectors[:20] + 0.5 * corpus_vectors[20:40]
    result = c.compression_report(queries=queries, ks=[24], specs=["BFlat"], rescore=[True])
    [row] = result.rows
    exact = queries @ corpus_vectors.T / np.linalg.norm(queries, axis=1, keepdims=True)
    tenth = np.sort(exact, axis=1)[:, -10]
    served = c.search_vectors(queries, top_k=10)
    hits = [
        min(10, sum(exact[q, int(h.id)] >= tenth[q] - 1e-6 for h in found))
        for q, found in enumerate(served)
    ]
    assert row.recall_at_10 == pytest.approx(np.mean(hits) / 10)
    raw_space = c.compression_report(
        queries=queries, ks=[24], specs=["BFlat"], rescore=[True], space="raw"
    )
    assert raw_space.rows[0].recall_at_10 != row.recall_at_10  # the space is measured
