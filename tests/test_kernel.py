"""The whitening kernel's exact properties, on synthetic vectors shaped like sentence embeddings."""

import faiss
import numpy as np
import pytest

from index import WhiteningKernel
from index.errors import (
    InvalidHyperparameters,
    InvalidVectors,
    NotEnoughData,
    NotFitted,
    StorageError,
)
from index.kernel import EIGEN_FLOOR
from index.statistics import Statistics


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    """Anisotropic, off-centre vectors: the shape that makes whitening matter."""
    rng = np.random.default_rng(7)
    d = 48
    basis = rng.standard_normal((d, d)) * np.geomspace(3, 0.01, d)[:, None]
    return (rng.standard_normal((2000, d)) @ basis + rng.standard_normal(d)).astype(np.float32)


def test_rotation_with_k_equal_d_keeps_every_cosine(X: np.ndarray) -> None:
    Y = WhiteningKernel(beta=0, gamma=0).fit(X).transform(X)
    U = _unit(X)
    assert Y.shape == X.shape and Y.dtype == np.float32
    assert np.abs(Y @ Y.T - U @ U.T).max() < 1e-5


def test_output_is_unit_length(X: np.ndarray) -> None:
    Y = WhiteningKernel(beta=0.3, gamma=0.7, k=12).fit(X).transform(X)
    assert Y.shape == (len(X), 12)
    assert np.allclose(np.linalg.norm(Y, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 1.0])
def test_beta_one_matches_faiss_pca_up_to_sign(X: np.ndarray, gamma: float) -> None:
    k = 16
    ours = WhiteningKernel(beta=1, gamma=gamma, k=k).fit(X).transform(X)
    pca = faiss.PCAMatrix(X.shape[1], k, -gamma / 2, False)
    pca.train(X)
    theirs = _unit(pca.apply(X))
    signs = np.sign((ours * theirs).sum(axis=0))
    assert np.all(signs != 0)
    assert np.abs(ours - theirs * signs).max() < 1e-4


def test_streaming_fit_equals_one_shot(X: np.ndarray) -> None:
    streamed = WhiteningKernel(0.5, 0.5, 20)
    for batch in np.array_split(X, 9):
        streamed.partial_fit(batch)
    whole = WhiteningKernel(0.5, 0.5, 20).fit(X)
    assert streamed.n_samples_seen_ == len(X)
    assert np.allclose(streamed.transform(X), whole.transform(X), atol=1e-5)


def test_merge_of_split_fits_equals_one_shot(X: np.ndarray) -> None:
    left = WhiteningKernel(1, 1, 10).fit(X[:700])
    right = WhiteningKernel(1, 1, 10).fit(X[700:])
    merged = left.merge(right)
    whole = WhiteningKernel(1, 1, 10).fit(X)
    assert np.allclose(merged.transform(X), whole.transform(X), atol=1e-5)


def test_summed_statistics_derive_once_to_the_one_shot_fit(X: np.ndarray) -> None:
    parts = [Statistics.of(block) for block in np.array_split(X, 7)]
    total = sum(parts[1:], parts[0])
    whole = WhiteningKernel(1, 1, 10).fit(X)
    merged = WhiteningKernel(1, 1, 10).merge(total)
    assert merged.n_samples_seen_ == len(X)
    assert np.allclose(merged.sum_sq_, whole.sum_sq_, rtol=1e-12)
    assert np.allclose(merged.transform(X), whole.transform(X), atol=1e-5)
    with pytest.raises(InvalidHyperparameters, match="dimension 8 into statistics of dimension"):
        total + Statistics.of(X[:, :8])


def test_refit_equals_fresh_fit_without_the_data(X: np.ndarray) -> None:
    kernel = WhiteningKernel().fit(X)
    for beta, gamma, k in [(1, 1, 8), (0.25, 0.75, 30), (0, 0, 48)]:
        kernel.refit(beta=beta, gamma=gamma, k=k)
        fresh = WhiteningKernel(beta, gamma, k).fit(X)
        assert (kernel.beta, kernel.gamma, kernel.k) == (beta, gamma, k)
        assert np.allclose(kernel.transform(X), fresh.transform(X), atol=1e-5)


def test_real_valued_beta_matches_the_covariance_formula(X: np.ndarray) -> None:
    beta = 0.37
    kernel = WhiteningKernel(beta, 0.0, 48).fit(X)
    centred = X.astype(np.float64) - beta * X.mean(axis=0)
    sigma = centred.T @ centred / len(X)
    expected = np.sort(np.linalg.eigvalsh(sigma))[::-1]
    assert np.allclose(kernel.eigenvalues_, expected, rtol=1e-6, atol=1e-9)


def test_fitted_attributes_and_explained_energy(X: np.ndarray) -> None:
    kernel = WhiteningKernel(k=10).fit(X)
    assert kernel.mean_.shape == (48,)
    assert kernel.components_.shape == (10, 48)
    assert np.allclose(kernel.components_ @ kernel.components_.T, np.eye(10), atol=1e-8)
    energy = kernel.explained_energy_
    assert energy.shape == (48,) and np.all(np.diff(energy) >= -1e-12)
    assert energy[-1] == pytest.approx(1.0)
    values = kernel.eigenvalues_
    assert energy[9] == pytest.approx(values[:10].sum() / values.sum())


def test_save_load_round_trip_gives_identical_vectors(X: np.ndarray, tmp_path) -> None:
    kernel = WhiteningKernel(0.5, 0.25, 24).fit(X)
    kernel.save(tmp_path / "kernel.npz")
    loaded = WhiteningKernel.load(tmp_path / "kernel.npz")
    assert (loaded.beta, loaded.gamma, loaded.k, loaded.k_) == (0.5, 0.25, 24, 24)
    assert np.array_equal(loaded.transform(X), kernel.transform(X))
    loaded.refit(beta=1.0)  # statistics came along: refit still works
    assert np.allclose(loaded.transform(X), WhiteningKernel(1, 0.25, 24).fit(X).transform(X))


def test_load_refuses_damaged_and_future_files(X: np.ndarray, tmp_path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not an npz file")
    with pytest.raises(StorageError, match="unreadable"):
        WhiteningKernel.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "future.npz", format_version=99)
    with pytest.raises(StorageError, match="format version 99"):
        WhiteningKernel.load(tmp_path / "future.npz")


def test_rank_deficient_data_refuses_k_above_rank_when_gamma_positive() -> None:
    rng = np.random.default_rng(1)
    X = (rng.standard_normal((500, 10)) @ rng.standard_normal((10, 16))).astype(np.float32)
    kernel = WhiteningKernel(beta=0, gamma=1).fit(X)  # k=None: every meaningful component
    assert kernel.rank_ == 10 and kernel.k_ == 10
    assert np.isfinite(kernel.transform(X)).all()
    with pytest.raises(InvalidHyperparameters, match="k=12 exceeds the 10 meaningful"):
        WhiteningKernel(beta=0, gamma=1, k=12).fit(X)
    # γ=0 stays a rotation: extra components are harmless and k=d keeps cosines.
    rotated = WhiteningKernel(0, 0, 16).fit(X).transform(X)
    assert np.abs(rotated @ rotated.T - _unit(X) @ _unit(X).T).max() < 1e-5
    floor = EIGEN_FLOOR * kernel.eigenvalues_[0]
    assert np.all(kernel.eigenvalues_[10:] <= floor)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"beta": float("nan")}, "beta must be finite"),
        ({"gamma": float("inf")}, "gamma must be finite"),
        ({"beta": "one"}, "beta must be a real number"),
        ({"k": 0}, "k must be a positive integer"),
        ({"k": 2.5}, "k must be a positive integer"),
    ],
)
def test_bad_hyperparameters_are_refused(kwargs: dict, error: str) -> None:
    with pytest.raises(InvalidHyperparameters, match=error):
        WhiteningKernel(**kwargs)


def test_bad_input_is_refused_and_leaves_the_fit_unchanged(X: np.ndarray) -> None:
    kernel = WhiteningKernel(k=8).fit(X)
    before = kernel.transform(X[:5])
    with pytest.raises(NotEnoughData, match="at least 2 vectors"):
        WhiteningKernel().fit(X[:1])
    with pytest.raises(InvalidHyperparameters, match="larger than the vector dimension"):
        WhiteningKernel(k=49).fit(X)
    with pytest.raises(InvalidVectors, match="dimension 47 but 48"):
        kernel.transform(X[:, :47])
    with pytest.raises(InvalidVectors, match="NaN or infinite"):
        kernel.partial_fit(np.full((3, 48), np.nan))
    with pytest.raises(InvalidVectors, match="2-D"):
        kernel.transform(X[0])
    with pytest.raises(InvalidHyperparameters):
        kernel.refit(k=100)
    assert kernel.k == 8 and np.array_equal(kernel.transform(X[:5]), before)
    with pytest.raises(NotFitted):
        WhiteningKernel().transform(X)
