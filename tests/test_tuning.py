"""The grid tuner on synthetic vectors whose rank, signal and noise directions are known."""

import copy

import numpy as np
import pytest

from index.errors import InvalidInput, NotFitted
from index.kernel import WhiteningKernel
from index.metrics import ndcg_at_k, spearman
from index.tuning import tune_pairs, tune_retrieval
from index.tuning_grid import DEFAULT_BETAS, DEFAULT_GAMMAS, default_ks
from index.tuning_results import TuningPoint, TuningResult

D = 24  # vector dimension
RANK = 20  # the vectors span only RANK dimensions, as all-MiniLM's span 381 of 384
KS = (4, 8, 16, 20, 24)


class Synthetic:
    """Vectors mean + signal (4 directions) + weaker noise (16 directions), in a 20-dim span.

    The gold score of a pair is the cosine of its two signals; each vector adds its own noise and
    the shared mean, so raw cosines are a poor proxy, and centring plus keeping the 4 directions of
    most variance (the signal's) recovers it.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        basis, _ = np.linalg.qr(self.rng.normal(size=(D, D)))
        self.signal_axes = basis[:, :4].T
        self.noise_axes = basis[:, 4:RANK].T
        self.noise_scale = np.linspace(1.5, 0.2, RANK - 4)
        self.mean = self.rng.normal(size=RANK) @ basis[:, :RANK].T

    def vectors(self, signal: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(size=(signal.shape[0], RANK - 4)) * self.noise_scale
        return (self.mean + signal @ self.signal_axes + noise @ self.noise_axes).astype(np.float32)

    def corpus(self, n: int) -> np.ndarray:
        return self.vectors(2.0 * self.rng.normal(size=(n, 4)))

    def pairs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        base = 2.0 * self.rng.normal(size=(n, 4))
        other = base + self.rng.uniform(0, 3, size=(n, 1)) * self.rng.normal(size=(n, 4))
        gold = np.einsum("ij,ij->i", base, other)
        gold /= np.linalg.norm(base, axis=1) * np.linalg.norm(other, axis=1)
        return self.vectors(base), self.vectors(other), gold


@pytest.fixture(scope="module")
def data():
    synthetic = Synthetic()
    corpus = synthetic.corpus(3000)
    a, b, gold = synthetic.pairs(600)
    return corpus, a, b, gold


@pytest.fixture(scope="module")
def kernel(data):
    return WhiteningKernel().fit(data[0])


@pytest.fixture(scope="module")
def result(kernel, data):
    _, a, b, gold = data
    return tune_pairs(kernel, a, b, gold, ks=KS)


def pair_score(kernel: WhiteningKernel, a: np.ndarray, b: np.ndarray, gold: np.ndarray) -> float:
    cosines = np.einsum("ij,ij->i", kernel.transform(a), kernel.transform(b), dtype=np.float64)
    return spearman(cosines, gold)


def test_the_synthetic_kernel_sees_the_rank(kernel):
    assert kernel.rank_ == RANK


def test_every_grid_point_is_scored_except_k_above_rank_with_gamma(result):
    scored = {(p.beta, p.gamma, p.k) for p in result.points}
    expected = {
        (beta, gamma, k)
        for beta in DEFAULT_BETAS
        for gamma in DEFAULT_GAMMAS
        for k in KS
        if gamma == 0 or k <= RANK
    }
    assert scored == expected
    assert len(result.points) == len(expected)  # no point twice
    assert set(result.skipped) == {
        (beta, gamma, D) for beta in DEFAULT_BETAS for gamma in DEFAULT_GAMMAS if gamma > 0
    }
    assert result.metric == "spearman"
    assert all(-1.0 <= p.score <= 1.0 for p in result.points)


def test_best_is_the_highest_score(result):
    assert result.best in result.points
    assert result.best.score == max(p.score for p in result.points)


def test_scores_equal_a_kernel_built_by_hand(data, result):
    corpus, a, b, gold = data
    for beta, gamma, k in [(0.0, 0.0, 24), (0.5, 0.25, 20), (1.0, 1.0, 8), (0.25, 0.75, 4)]:
        by_hand = WhiteningKernel(beta, gamma, k).fit(corpus)
        assert result.score(beta, gamma, k) == pytest.approx(
            pair_score(by_hand, a, b, gold), abs=1e-6
        ), (beta, gamma, k)


def test_rotation_at_full_dimension_keeps_raw_cosines(data, result):
    _, a, b, gold = data
    raw = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert result.score(0.0, 0.0, D) == pytest.approx(spearman(raw, gold), abs=1e-5)
    assert 0.4 < spearman(raw, gold) < 0.6  # mean and noise blur the raw cosine


def test_the_tuner_finds_the_signal_directions(result):
    # Centring and keeping the 4 highest-variance directions isolates the signal exactly.
    assert result.best.k == 4
    assert result.best.beta > 0
    assert result.best.score > 0.95


def test_max_k_bounds_every_point_and_the_best(kernel, data):
    _, a, b, gold = data
    capped = tune_pairs(kernel, a, b, gold, betas=(0.0, 1.0), gammas=(0.0, 1.0), max_k=12)
    assert {p.k for p in capped.points} == {12}  # default_ks(24, 12): no step below 12 but 12
    capped = tune_pairs(kernel, a, b, gold, ks=KS, max_k=16)
    assert {p.k for p in capped.points} == {4, 8, 16}
    assert capped.best.k <= 16


def test_the_callers_kernel_is_unchanged(data):
    corpus, a, b, gold = data
    kernel = WhiteningKernel(beta=0.5, gamma=0.5, k=16).fit(corpus)
    before = copy.deepcopy(kernel.__dict__)
    probe = kernel.transform(a[:50])
    tune_pairs(kernel, a, b, gold, ks=KS)
    assert (kernel.beta, kernel.gamma, kernel.k, kernel.k_) == (0.5, 0.5, 16, 16)
    assert kernel.__dict__.keys() == before.keys()
    for name in ("sum_", "sum_sq_", "mean_", "components_", "scale_", "eigenvalues_"):
        np.testing.assert_array_equal(getattr(kernel, name), before[name])
    assert kernel._eigen_cache.keys() == before["_eigen_cache"].keys()
    np.testing.assert_array_equal(kernel.transform(a[:50]), probe)


def test_ties_go_to_the_smaller_k():
    # Queries equal to documents: every kernel with k >= 8 finds each document first, nDCG = 1.
    rng = np.random.default_rng(5)
    docs = rng.normal(size=(200, D)).astype(np.float32)
    kernel = WhiteningKernel().fit(docs)
    ids = [f"doc{i}" for i in range(200)]
    relevant = [{f"doc{i}": 1} for i in range(0, 200, 5)]
    result = tune_retrieval(kernel, docs, ids, docs[::5], relevant, ks=(8, 16, 24))
    assert all(p.score == pytest.approx(1.0) for p in result.points)
    assert (result.best.beta, result.best.gamma, result.best.k) == (0.0, 0.0, 8)


def test_retrieval_scores_equal_a_search_by_hand():
    rng = np.random.default_rng(6)
    synthetic = Synthetic(seed=6)
    docs = synthetic.corpus(400)
    ids = [1000 + i for i in range(400)]  # ids differ from row numbers
    targets = rng.choice(400, size=60, replace=False)
    queries = docs[targets] + rng.normal(scale=1.5, size=(60, D)).astype(np.float32)
    relevant = [{1000 + int(t): 2, 1000 + int((t + 1) % 400): 1} for t in targets]
    kernel = WhiteningKernel().fit(docs)
    result = tune_retrieval(
        kernel, docs, ids, queries, relevant, betas=(0.0, 1.0), gammas=(0.0, 0.5), ks=(8, 20)
    )
    assert result.metric == "ndcg@10"
    assert len(result.points) == 8
    for beta, gamma, k in [(0.0, 0.0, 20), (1.0, 0.5, 8)]:
        by_hand = WhiteningKernel(beta, gamma, k).fit(docs)
        sims = by_hand.transform(queries) @ by_hand.transform(docs).T
        rankings = [[ids[j] for j in np.argsort(-row, kind="stable")[:10]] for row in sims]
        expected = ndcg_at_k(rankings, relevant, k=10)
        assert 0.0 < expected < 1.0
        assert result.score(beta, gamma, k) == pytest.approx(expected, abs=1e-9)


def test_default_ks():
    assert default_ks(384) == [32, 64, 96, 128, 192, 256, 384]
    assert default_ks(384, 128) == [32, 64, 96, 128]
    assert default_ks(384, 100) == [32, 64, 96, 100]
    assert default_ks(768, 512) == [32, 64, 96, 128, 192, 256, 384, 512]
    assert default_ks(40) == [32, 40]
    assert default_ks(24) == [24]
    with pytest.raises(InvalidInput, match="exceeds the vector dimension"):
        default_ks(384, 500)


def test_table_marks_the_best():
    best = TuningPoint(0.5, 0.25, 8, 0.8123)
    result = TuningResult("spearman", [TuningPoint(0.0, 0.0, 16, 0.8), best], best)
    table = result.table().splitlines()
    assert table[0] == "| beta | gamma | k=16 | k=8 |"
    assert table[2] == "| 0 | 0 | 80.00 |  |"
    assert table[3] == "| 0.5 | 0.25 |  | **81.23** |"


def test_invalid_inputs(kernel, data):
    _, a, b, gold = data
    cases = [
        ({"betas": ()}, "betas is empty"),
        ({"gammas": []}, "gammas is empty"),
        ({"ks": ()}, "ks is empty"),
        ({"betas": (0.0, float("nan"))}, "finite"),
        ({"gammas": (float("inf"),)}, "finite"),
        ({"max_k": 0}, "max_k must be a positive integer"),
        ({"max_k": 25}, "exceeds the vector dimension"),
        ({"ks": (4, 48)}, "above the vector dimension"),
        ({"ks": (16, 20), "max_k": 8}, "above max_k"),
        ({"ks": (24,), "gammas": (0.5,)}, "meaningful components"),
    ]
    for options, fragment in cases:
        with pytest.raises(InvalidInput, match=fragment):
            tune_pairs(kernel, a, b, gold, **options)
    with pytest.raises(InvalidInput, match="same pairs"):
        tune_pairs(kernel, a, b[:-1], gold)
    with pytest.raises(InvalidInput, match="same pairs"):
        tune_pairs(kernel, a, b, gold[:-1])
    with pytest.raises(InvalidInput, match="not all equal"):
        tune_pairs(kernel, a, b, np.ones_like(gold))
    with pytest.raises(InvalidInput, match="dimension"):
        tune_pairs(kernel, a[:, :10], b[:, :10], gold)
    with pytest.raises(NotFitted):
        tune_pairs(WhiteningKernel(), a, b, gold)


def test_invalid_retrieval_inputs(kernel, data):
    corpus = data[0][:50]
    ids = list(range(50))
    queries = corpus[:3]
    relevant = [{0: 1}, {1: 1}, {2: 1}]
    with pytest.raises(InvalidInput, match="one id per document"):
        tune_retrieval(kernel, corpus, ids[:-1], queries, relevant)
    with pytest.raises(InvalidInput, match="duplicates"):
        tune_retrieval(kernel, corpus, [0] * 50, queries, relevant)
    with pytest.raises(InvalidInput, match="one mapping per query"):
        tune_retrieval(kernel, corpus, ids, queries, relevant[:2])
    with pytest.raises(InvalidInput, match="no relevant document"):
        tune_retrieval(kernel, corpus, ids, queries, [{0: 1}, {1: 0}, {2: 1}])
    with pytest.raises(InvalidInput, match="k_eval"):
        tune_retrieval(kernel, corpus, ids, queries, relevant, k_eval=0)
