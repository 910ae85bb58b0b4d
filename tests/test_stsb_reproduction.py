"""Reproduce the STS-B reference numbers (../shared/data/README.md) with the real model and kernel.

The kernel is fitted on the 15,487 unique STS-B sentences (train + dev + test, no labels) and scored
by Spearman x 100 on the test pairs. Encoding them once takes about a minute on 2 cores.
"""

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from index.encoder import Encoder
from index.kernel import WhiteningKernel
from index.metrics import spearman
from index.tuning import tune_pairs

pytestmark = [pytest.mark.data, pytest.mark.slow]

SPLITS = {"train": 5749, "dev": 1500, "test": 1379}
TOLERANCE = 0.1  # Spearman x 100


@dataclass
class Pairs:
    gold: np.ndarray  # (n,) scores 0-5
    first: np.ndarray  # (n,) row of each first sentence in Stsb.vectors
    second: np.ndarray


@dataclass
class Stsb:
    sentences: list[str]  # unique, in order of first appearance
    vectors: np.ndarray  # raw vectors, one row per unique sentence
    splits: dict[str, Pairs]

    def pair_vectors(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        pairs = self.splits[split]
        return self.vectors[pairs.first], self.vectors[pairs.second]

    def score(self, kernel: WhiteningKernel | None, split: str = "test") -> float:
        """Spearman x 100 of the pair cosines, through `kernel` (None: raw vectors)."""
        first, second = self.pair_vectors(split)
        if kernel is not None:
            first, second = kernel.transform(first), kernel.transform(second)
        cosines = np.einsum("ij,ij->i", first, second, dtype=np.float64)
        cosines /= np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
        return 100 * spearman(cosines, self.splits[split].gold)


def read_split(path: Path) -> list[tuple[float, str, str]]:
    """Rows (score, sentence1, sentence2): fields 4, 5, 6 by tab; some rows have extra fields."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        rows.append((float(fields[4]), fields[5], fields[6]))
    return rows


@pytest.fixture(scope="module")
def stsb(data_dir: Path) -> Stsb:
    folder = data_dir / "stsb"
    paths = {split: folder / f"sts-{split}.csv" for split in SPLITS}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        pytest.skip(
            f"STS-B data not found ({', '.join(missing)}): "
            "set WHITENED_TEST_DATA to the folder holding stsb/"
        )
    rows = {split: read_split(path) for split, path in paths.items()}
    position: dict[str, int] = {}
    for split_rows in rows.values():
        for _, first, second in split_rows:
            position.setdefault(first, len(position))
            position.setdefault(second, len(position))
    sentences = list(position)
    vectors = Encoder(batch_size=128).encode(sentences)
    splits = {
        split: Pairs(
            gold=np.array([row[0] for row in split_rows]),
            first=np.array([position[row[1]] for row in split_rows]),
            second=np.array([position[row[2]] for row in split_rows]),
        )
        for split, split_rows in rows.items()
    }
    return Stsb(sentences, vectors, splits)


@pytest.fixture(scope="module")
def fitted(stsb: Stsb) -> WhiteningKernel:
    """Statistics over every unique sentence (no labels); refit derives each setting."""
    return WhiteningKernel().fit(stsb.vectors)


def kernel_for(fitted: WhiteningKernel, beta: float, gamma: float, k: int) -> WhiteningKernel:
    return copy.deepcopy(fitted).refit(beta=beta, gamma=gamma, k=k)


def test_the_data_is_read_as_the_reference_was(stsb):
    assert {split: len(pairs.gold) for split, pairs in stsb.splits.items()} == SPLITS
    assert len(stsb.sentences) == 15487  # exact-string dedup, no whitespace stripping
    assert stsb.vectors.shape == (15487, 384)
    assert all(
        pairs.gold.min() >= 0.0 and pairs.gold.max() <= 5.0 for pairs in stsb.splits.values()
    )


def test_raw_cosine(stsb, fitted):
    raw = stsb.score(None)
    assert raw == pytest.approx(82.03, abs=TOLERANCE)
    # beta = gamma = 0 at k = d is a rotation: every cosine, hence the score, is unchanged.
    assert stsb.score(kernel_for(fitted, 0.0, 0.0, 384)) == pytest.approx(raw, abs=0.01)


@pytest.mark.parametrize(
    ("beta", "gamma", "k", "expected"),
    [
        (0.0, 0.0, 256, 82.27),
        (0.0, 0.0, 128, 81.84),
        (1.0, 1.0, 128, 81.92),
        (0.5, 0.5, 192, 82.59),
    ],
)
def test_kernel_reproduces_the_reference(stsb, fitted, beta, gamma, k, expected):
    assert stsb.score(kernel_for(fitted, beta, gamma, k)) == pytest.approx(expected, abs=TOLERANCE)


def test_tuning_on_dev_beats_raw_on_test_at_a_third_of_the_dimensions(stsb, fitted):
    first, second = stsb.pair_vectors("dev")
    result = tune_pairs(fitted, first, second, stsb.splits["dev"].gold, max_k=128)
    best = result.best
    assert best.k <= 128
    assert best.score == max(point.score for point in result.points)
    chosen = kernel_for(fitted, best.beta, best.gamma, best.k)
    assert 100 * best.score == pytest.approx(stsb.score(chosen, "dev"), abs=1e-3)
    assert stsb.score(chosen) >= 82.0, result.table()
