"""Metrics against hand-computed cases, closed-form formulas and, where installed, scipy/sklearn."""

import math

import numpy as np
import pytest

from index.errors import InvalidInput
from index.metrics import mrr, ndcg_at_k, pearson, rankdata, recall_at_k, spearman

# ---- correlations -----------------------------------------------------------------------------


def test_rankdata_averages_ties():
    assert rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rankdata([3, 1, 3, 3]).tolist() == [3.0, 1.0, 3.0, 3.0]


def test_pearson_by_hand():
    # means 2 and 13/3; covariance sum 5; squares 2 and 114/9
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 114 / 9), abs=1e-12)
    assert pearson([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)


def test_spearman_with_ties_by_hand():
    # ranks of b: 5->1, 6->2, 7->3.5, 8->5, 7->3.5; deviations (-2,-1,0,1,2) and (-2,-1,.5,2,.5)
    expected = 8 / math.sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(expected, abs=1e-12)


def test_spearman_ignores_monotone_transforms():
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.7])
    assert spearman(x, np.exp(5 * x)) == pytest.approx(1.0)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)
    assert pearson(x, np.exp(5 * x)) < 0.99  # not linear, so Pearson is not 1


def test_correlations_match_closed_forms_on_random_data():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    b = a + rng.normal(size=500)
    # Without ties, Spearman is 1 - 6·Σd² / (n(n² - 1)) with d the rank differences.
    d = rankdata(a) - rankdata(b)
    n = a.shape[0]
    assert spearman(a, b) == pytest.approx(1 - 6 * (d @ d) / (n * (n**2 - 1)), abs=1e-12)
    assert pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)


def test_spearman_matches_scipy_with_many_ties():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 6, size=300).astype(float)  # STS-B-like: few distinct gold scores
    b = a + rng.integers(0, 4, size=300)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


@pytest.mark.parametrize(
    ("a", "b", "fragment"),
    [
        ([1, 2, 3], [1, 2], "same length"),
        ([], [], "at least 2"),
        ([1], [1], "at least 2"),
        ([2, 2, 2], [1, 2, 3], "a is constant"),
        ([1, 2, 3], [4, 4, 4], "b is constant"),
        ([1, np.nan, 3], [1, 2, 3], "NaN"),
        ([[1, 2], [3, 4]], [[1, 2], [3, 4]], "1-D"),
    ],
)
def test_correlation_errors(a, b, fragment):
    for metric in (spearman, pearson):
        with pytest.raises(InvalidInput, match=fragment):
            metric(a, b)


# ---- ranked retrieval -------------------------------------------------------------------------


def test_ndcg_graded_by_hand():
    # DCG@3: only "b" (rel 2) at rank 2. Ideal: judged relevances 3, 2, 1 at ranks 1..3.
    dcg = 2 / math.log2(3)
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    got = ndcg_at_k([["a", "b", "c", "d"]], [{"b": 2, "d": 1, "e": 3}], k=3)
    assert got == pytest.approx(dcg / idcg, abs=1e-12)


def test_ndcg_fewer_relevant_than_k():
    # One relevant document at rank 2: DCG = 1/log2(3), ideal DCG = 1 (not padded to k terms).
    assert ndcg_at_k([["x", "a", "y"]], [{"a": 1}], k=10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([["a", "x"]], [{"a": 1}], k=10) == pytest.approx(1.0)


def test_ndcg_cuts_at_k_and_averages_queries():
    retrieved = [[1, 2, 3], [4, 5, 6]]
    relevant = [{3: 1}, {4: 1, 9: 0}]
    # Query 1 finds its document at rank 3 (outside k=2): 0. Query 2 at rank 1: 1.
    assert ndcg_at_k(retrieved, relevant, k=2) == pytest.approx(0.5)
    assert ndcg_at_k(retrieved, relevant, k=3) == pytest.approx((1 / math.log2(4) + 1) / 2)


def test_ndcg_counts_a_repeated_document_once():
    assert ndcg_at_k([["a", "a", "a"]], [{"a": 1, "b": 1}], k=3) == pytest.approx(
        1 / (1 + 1 / math.log2(3))
    )


def test_ndcg_matches_sklearn_on_random_data():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    n_docs, k = 40, 10
    for _ in range(20):
        gold = rng.integers(0, 4, size=n_docs) * (rng.random(n_docs) < 0.3)
        gold[rng.integers(n_docs)] = 2  # at least one relevant
        system = rng.normal(size=n_docs)
        ranking = np.argsort(-system).tolist()
        judged = {doc: int(rel) for doc, rel in enumerate(gold) if rel > 0}
        expected = metrics.ndcg_score(gold[None, :], system[None, :], k=k)
        assert ndcg_at_k([ranking], [judged], k=k) == pytest.approx(expected, abs=1e-12)


def test_recall_by_hand():
    retrieved = [[1, 2, 3, 4]]
    relevant = [{2: 1, 4: 2, 9: 1}]
    assert recall_at_k(retrieved, relevant, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(retrieved, relevant, k=4) == pytest.approx(2 / 3)
    # A judgment of 0 is "judged not relevant": it neither counts as found nor as wanted.
    assert recall_at_k([[7, 2]], [{2: 1, 7: 0}], k=1) == 0.0
    assert recall_at_k([[7, 2]], [{2: 1, 7: 0}], k=2) == 1.0


def test_mrr_by_hand():
    retrieved = [["a", "b", "c"], ["d", "e"], ["f"]]
    relevant = [{"c": 1}, {"d": 1, "e": 1}, {"z": 1}]
    assert mrr(retrieved, relevant) == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert mrr(retrieved, relevant, k=2) == pytest.approx((0 + 1 + 0) / 3)


@pytest.mark.parametrize("metric", [ndcg_at_k, recall_at_k, mrr])
def test_ranking_errors(metric):
    with pytest.raises(InvalidInput, match="one ranking and one judgment"):
        metric([[1], [2]], [{1: 1}])
    with pytest.raises(InvalidInput, match="no queries"):
        metric([], [])
    with pytest.raises(InvalidInput, match="no relevant document"):
        metric([[1]], [{1: 0}])
    with pytest.raises(InvalidInput, match="not a mapping"):
        metric([[1]], [[1]])
    with pytest.raises(InvalidInput, match="positive integer"):
        metric([[1]], [{1: 1}], k=0)


def test_metrics_stay_in_unit_interval():
    rng = np.random.default_rng(3)
    retrieved = [rng.permutation(50).tolist() for _ in range(30)]
    relevant = [{int(d): int(rng.integers(1, 4)) for d in rng.choice(50, 5)} for _ in range(30)]
    for value in (
        ndcg_at_k(retrieved, relevant),
        recall_at_k(retrieved, relevant, k=10),
        mrr(retrieved, relevant),
    ):
        assert 0.0 < value < 1.0
    assert recall_at_k(retrieved, relevant, k=50) == pytest.approx(1.0)
