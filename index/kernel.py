"""The whitening kernel x̃ = normalise(((x − β·mu) · U · Λ^(−γ/2))[:k]) (BERT-whitening).

Only n, Σx and Σxᵀx are kept (float64), so a fit streams over batches, merges across workers and
re-derives for new β, γ, k without seeing the data again (Su Jianlin's BERT-whitening with
the two extra exponents β and γ; the README's "The method" has the formulas).
"""

import os
from typing import Any, Self

import numpy as np

from index.blas import pin_threads
from index.errors import InvalidHyperparameters, NotEnoughData, NotFitted, StorageError
from index.statistics import Statistics
from index.storage import atomic_write
from index.validation import as_matrix, check_hyperparameter

FORMAT_VERSION = 1

EIGEN_FLOOR = 1e-7
"""Eigenvalues below EIGEN_FLOOR·λ_max are numerically zero: they count outside the rank and are
raised to that floor before Λ^(−γ/2), so they cannot explode. float32 vectors carry about 7
significant digits, so their covariance cannot resolve directions below that relative energy."""


class WhiteningKernel:
    """Rotate, optionally centre (β) and whiten (γ), truncate to k dimensions, L2-normalise.

    β=γ=0 is a rotation, so with k=d every cosine is kept; k<d drops the least energetic directions.

    Args:
        beta: how much of the mean to subtract, in [0, 1] (0: none, 1: centre).
        gamma: how much to whiten, in [0, 2] (0: pure rotation, 1: unit variance per component).
        k: output dimension; None keeps every meaningful component (all d when gamma == 0).

    Attributes (after `fit`, `partial_fit` or `merge`):
        n_samples_seen_: vectors the statistics hold.
        n_features_in_: d, the raw dimension.
        mean_: the corpus mean (d,).
        eigenvalues_: eigenvalues of Sigma_β, descending (d,).
        components_: the first k eigenvectors as rows (k, d).
        scale_: Λ^(−γ/2) of those k components, eigenvalues floored at EIGEN_FLOOR·λ_max (k,).
        rank_: eigenvalues above that floor: the meaningful components.
        k_: the output dimension in use.
        explained_energy_: cumulative share of the eigenvalue sum kept by the first i+1 axes.

    Examples:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
        >>> rotation = WhiteningKernel(k=8).fit(X)
        >>> Y = rotation.transform(X)
        >>> Y.shape, Y.dtype
        ((500, 8), dtype('float32'))
        >>> unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        >>> bool(np.allclose(Y @ Y[0], unit @ unit[0], atol=1e-5))  # a rotation keeps cosines
        True
        >>> rotation.refit(beta=1, gamma=1, k=4).transform(X).shape  # no pass over X again
        (500, 4)
        >>> half = WhiteningKernel(k=4).fit(X[:250]).merge(WhiteningKernel().fit(X[250:]))
        >>> bool(np.allclose(half.mean_, X.mean(axis=0, dtype=np.float64)))
        True
    """

    def __init__(self, beta: float = 0.0, gamma: float = 0.0, k: int | None = None) -> None:
        self.beta = check_hyperparameter(beta, "beta")
        self.gamma = check_hyperparameter(gamma, "gamma")
        self.k = _check_k(k)
        self._eigen_cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    # ---- statistics -------------------------------------------------------------------------

    def fit(self, X: Any) -> Self:
        """Fit on X (n, d), forgetting any earlier statistics."""
        X = as_matrix(X)
        if X.shape[0] < 2:
            raise NotEnoughData(f"fitting needs at least 2 vectors, got {X.shape[0]}")
        self._reset(X.shape[1])
        return self.partial_fit(X)

    def partial_fit(self, X: Any) -> Self:
        """Add a batch to the statistics; re-derive the kernel once 2 or more vectors are seen."""
        return self.merge(Statistics.of(X, getattr(self, "n_features_in_", None)))

    def merge(self, other: "WhiteningKernel | Statistics") -> Self:
        """Add another kernel's statistics, or bare `Statistics`, to ours (a fit split across
        workers), and re-derive once."""
        if isinstance(other, WhiteningKernel):
            if not hasattr(other, "n_samples_seen_"):
                raise NotFitted(
                    "the kernel to merge has no statistics: call fit or partial_fit on it"
                )
            other = other.statistics
        if not hasattr(self, "n_features_in_"):
            self._reset(other.sum.shape[0])
        total = self.statistics + other
        self.n_samples_seen_, self.sum_, self.sum_sq_ = total.n, total.sum, total.sum_sq
        return self._after_update()

    @property
    def statistics(self) -> Statistics:
        """The kept n, Σx and Σxᵀx."""
        return Statistics(self.n_samples_seen_, self.sum_, self.sum_sq_)

    def refit(
        self, beta: float | None = None, gamma: float | None = None, k: int | None = None
    ) -> Self:
        """Re-derive the kernel for new hyperparameters from the kept statistics (None: keep)."""
        self._check_fitted()
        new_beta = self.beta if beta is None else check_hyperparameter(beta, "beta")
        new_gamma = self.gamma if gamma is None else check_hyperparameter(gamma, "gamma")
        new_k = self.k if k is None else _check_k(k)
        self._derive(new_beta, new_gamma, new_k)
        self.beta, self.gamma, self.k = new_beta, new_gamma, new_k
        return self

    # ---- transform --------------------------------------------------------------------------

    def transform(self, X: Any) -> np.ndarray:
        """Map raw vectors (n, d) to L2-normalised float32 kernel vectors (n, k)."""
        self._check_fitted()
        pin_threads()
        X = as_matrix(X, self.n_features_in_).astype(np.float32, copy=False)
        Y = X @ self._weights
        Y -= self._offset
        norms = np.linalg.norm(Y, axis=1, keepdims=True)
        np.divide(Y, norms, out=Y, where=norms > 0)
        return Y

    def fit_transform(self, X: Any) -> np.ndarray:
        return self.fit(X).transform(X)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "components_")

    # ---- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write hyperparameters, statistics and the derived kernel to an .npz, atomically.

        The derived kernel is stored, not recomputed on load, so a collection's index and its
        queries always go through bit-identical weights, whatever BLAS the loading machine has.
        """
        self._check_fitted()
        with atomic_write(path) as handle:
            np.savez(
                handle,
                format_version=FORMAT_VERSION,
                beta=self.beta,
                gamma=self.gamma,
                k=-1 if self.k is None else self.k,
                n_samples_seen=self.n_samples_seen_,
                sum=self.sum_,
                sum_sq=self.sum_sq_,
                mean=self.mean_,
                eigenvalues=self.eigenvalues_,
                components=self.components_,
                scale=self.scale_,
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "WhiteningKernel":
        try:
            with np.load(path, allow_pickle=False) as data:
                fields = {name: data[name] for name in data.files}
        except FileNotFoundError:
            raise
        except Exception as exc:  # numpy raises many kinds for a damaged file
            raise StorageError(f"kernel file {path} is unreadable: {exc}") from exc
        version = int(fields.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise StorageError(
                f"kernel file {path} has format version {version}; this version of "
                f"whitened-search reads version {FORMAT_VERSION}"
            )
        try:
            k = int(fields["k"])
            kernel = cls(float(fields["beta"]), float(fields["gamma"]), None if k < 0 else k)
            kernel._reset(fields["sum"].shape[0])
            kernel.n_samples_seen_ = int(fields["n_samples_seen"])
            kernel.sum_ = fields["sum"]
            kernel.sum_sq_ = fields["sum_sq"]
            kernel._set_derived(
                kernel.beta,
                fields["mean"],
                fields["eigenvalues"],
                fields["components"],
                fields["scale"],
            )
        except (KeyError, ValueError) as exc:
            raise StorageError(f"kernel file {path} is incomplete or damaged: {exc}") from exc
        return kernel

    # ---- internals --------------------------------------------------------------------------

    def _reset(self, d: int) -> None:
        self.n_features_in_ = d
        self.n_samples_seen_ = 0
        self.sum_ = np.zeros(d)
        self.sum_sq_ = np.zeros((d, d))
        self._eigen_cache.clear()
        for name in ("mean_", "eigenvalues_", "components_", "scale_", "rank_", "k_"):
            self.__dict__.pop(name, None)

    def _after_update(self) -> Self:
        self._eigen_cache.clear()
        if self.n_samples_seen_ >= 2:
            self._derive(self.beta, self.gamma, self.k)
        return self

    def _eigen(self, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """Eigenpairs (descending) of Σ_β = S/n − (2β − β²)·muᵀmu, cached per β."""
        if beta not in self._eigen_cache:
            n = self.n_samples_seen_
            mean = self.sum_ / n
            sigma = self.sum_sq_ / n - (2 * beta - beta**2) * np.outer(mean, mean)
            pin_threads()  # d×d is small: threads only contend on a busy box
            values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
            values, vectors = values[::-1], vectors[:, ::-1]
            # A deterministic sign per axis: its largest entry is positive.
            pivots = np.abs(vectors).argmax(axis=0)
            vectors = vectors * np.sign(vectors[pivots, np.arange(vectors.shape[1])])
            self._eigen_cache[beta] = (values, vectors)
        return self._eigen_cache[beta]

    def _derive(self, beta: float, gamma: float, k: int | None) -> None:
        d = self.n_features_in_
        values, vectors = self._eigen(beta)
        floor = EIGEN_FLOOR * max(float(values[0]), np.finfo(np.float64).tiny)
        rank = int((values > floor).sum())
        if k is not None and k > d:
            raise InvalidHyperparameters(f"k={k} is larger than the vector dimension d={d}")
        if gamma == 0:
            k_eff = d if k is None else k
        else:
            if k is not None and k > rank:
                raise InvalidHyperparameters(
                    f"k={k} exceeds the {rank} meaningful components of the fitted vectors "
                    f"(eigenvalues below {EIGEN_FLOOR:g}·λ_max are numerically zero); with "
                    f"gamma={gamma:g} they would be amplified noise. Use k ≤ {rank}, or gamma=0"
                )
            k_eff = rank if k is None else k
        if k_eff < 1:
            raise NotEnoughData("the fitted vectors have no variance: fit on distinct vectors")
        scale = np.maximum(values[:k_eff], floor) ** (-gamma / 2)
        self._set_derived(
            beta, self.sum_ / self.n_samples_seen_, values, vectors[:, :k_eff].T.copy(), scale
        )

    def _set_derived(
        self,
        beta: float,
        mean: np.ndarray,
        values: np.ndarray,
        components: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        self.mean_ = mean
        self.eigenvalues_ = values
        self.components_ = components
        self.scale_ = scale
        self.k_ = components.shape[0]
        floor = EIGEN_FLOOR * max(float(values[0]), np.finfo(np.float64).tiny)
        self.rank_ = int((values > floor).sum())
        energy = np.cumsum(np.clip(values, 0, None))
        self.explained_energy_ = energy / energy[-1] if energy[-1] > 0 else energy
        weights = components.T * scale
        self._weights = weights.astype(np.float32)
        self._offset = ((beta * mean) @ weights).astype(np.float32)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFitted("the kernel is not fitted: call fit (at least 2 vectors) first")

    def __repr__(self) -> str:
        return f"WhiteningKernel(beta={self.beta:g}, gamma={self.gamma:g}, k={self.k})"


def _check_k(k: Any) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidHyperparameters(f"k must be a positive integer or None, got {k!r}")
    return int(k)
