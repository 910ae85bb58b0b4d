"""The shortlist (issue 18, 8 bytes a vector): SQ8 codes on disk narrow thousands of candidates
to the few whose raw vectors are read, and follow the kernel through writes, refits and crashes."""

import numpy as np
import pytest

from index import Collection, Document, Settings
from index.errors import InvalidInput
from index.shortlist import CODES_DIRECTORY, SHORTLIST_K


def _documents(n: int, start: int = 0) -> list[Document]:
    return [Document(f"document {i}", id=str(i)) for i in range(start, start + n)]


def _code_files(c: Collection) -> list:
    return sorted((c.path / CODES_DIRECTORY).glob("*.sq8"))


def _exact(queries: np.ndarray, vectors: np.ndarray, top_k: int) -> list[list[str]]:
    scores = queries @ vectors.T / np.linalg.norm(queries, axis=1, keepdims=True)
    return [[str(i) for i in np.argsort(-row)[:top_k]] for row in scores]


def test_a_shortlist_keeps_the_exact_top_hits_and_their_exact_scores(
    tmp_path, corpus_vectors
) -> None:
    """Every document a candidate, 20 of 180 kept by their codes: the top 5 are exact search's
    and their scores are raw cosines, as without a shortlist."""
    n = len(corpus_vectors)
    settings = Settings(k=32, rescore="raw", candidates=n, shortlist=20)
    c = Collection.create(tmp_path / "c", "m", 384, settings)
    c.add_vectors(_documents(n), corpus_vectors)
    queries = corpus_vectors[:12] + 0.4 * corpus_vectors[40:52]
    hits = c.search_vectors(queries, top_k=5)
    assert [[h.id for h in q] for q in hits] == _exact(queries, corpus_vectors, 5)
    for q, query_hits in enumerate(hits):
        for hit in query_hits:
            expected = corpus_vectors[int(hit.id)] @ queries[q] / np.linalg.norm(queries[q])
            assert hit.score_kind == "raw_cosine"
            assert hit.score == pytest.approx(float(expected), abs=1e-5)
    [codes] = _code_files(c)
    assert codes.stat().st_size == n * SHORTLIST_K  # one byte a dimension, every row
    assert c.describe()["shortlist_bytes_per_vector"] == SHORTLIST_K


def test_narrow_keeps_the_best_candidates_by_their_codes(tmp_path, corpus_vectors) -> None:
    """The rows kept are candidates, as many as asked, and hold the best by the codes' own
    space (the kernel at 128 dimensions): the part of the order SQ8 cannot blur."""
    n = len(corpus_vectors)
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32, shortlist=30))
    c.add_vectors(_documents(n), corpus_vectors)
    shortlist = c.fitted.shortlist
    assert shortlist is not None and shortlist.projector.k_ == SHORTLIST_K
    rows = c.fitted.index.ids()
    candidates = np.stack([rows[::2], rows[1::2]])[:, :80]  # two queries, different candidates
    queries = corpus_vectors[[3, 4]]
    kept = shortlist.narrow(queries, candidates, keep=30)
    assert kept.shape == (2, 30)
    in_space = shortlist.projector.transform(corpus_vectors)  # row r is document r − 1
    for q in range(2):
        assert set(kept[q]) <= set(candidates[q]) and len(set(kept[q])) == 30
        cosines = in_space[candidates[q] - 1] @ shortlist.projector.transform(queries[q : q + 1])[0]
        best = candidates[q][np.argsort(-cosines)[:5]]
        assert set(best) <= set(kept[q])
    short = np.array([[rows[0], rows[1], -1]])
    assert shortlist.narrow(queries[:1], short, keep=30)[0, :2].tolist() == rows[:2].tolist()


def test_rows_written_after_the_fit_get_codes_before_the_index_has_them(
    tmp_path, corpus_vectors
) -> None:
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32, candidates=180, shortlist=10))
    c.add_vectors(_documents(100), corpus_vectors[:100])
    c.add_vectors(_documents(80, start=100), corpus_vectors[100:])
    hits = c.search_vectors(corpus_vectors[150:155], top_k=3)
    assert [q[0].id for q in hits] == ["150", "151", "152", "153", "154"]
    assert _code_files(c)[0].stat().st_size == 180 * SHORTLIST_K


@pytest.mark.parametrize("kept", [100, 0], ids=["cut-short", "lost"])
def test_codes_lost_in_a_crash_are_written_again_when_the_collection_reopens(
    tmp_path, corpus_vectors, kept: int
) -> None:
    """A crash after a write committed but before its codes reached the disk: the snapshot
    holds 100 rows, the store 180, the code file only the first 100 (or the file is gone).
    Reopening writes the codes of every stored row past the file's end from the store."""
    path = tmp_path / "c"
    c = Collection.create(path, "m", 384, Settings(k=32, candidates=180, shortlist=10))
    c.add_vectors(_documents(100), corpus_vectors[:100])
    c.add_vectors(_documents(80, start=100), corpus_vectors[100:])  # not checkpointed
    [codes] = _code_files(c)
    written = np.frombuffer(codes.read_bytes(), np.uint8)
    c.close()
    with open(codes, "r+b") as handle:
        handle.truncate(kept * SHORTLIST_K)
    reopened = Collection(path)
    again = np.frombuffer(codes.read_bytes(), np.uint8)
    assert again.shape == written.shape
    # the same vectors from the stored raw ones, to a step of the codes (a float rounded the
    # other way moves a code by one; on the kernel's null directions, noise, by more)
    decode = reopened.fitted.shortlist.quantizer.decode
    shape = (-1, SHORTLIST_K)
    assert np.abs(decode(again.reshape(shape)) - decode(written.reshape(shape))).max() < 0.01
    hits = reopened.search_vectors(corpus_vectors[170:175], top_k=3)
    assert [q[0].id for q in hits] == ["170", "171", "172", "173", "174"]


def test_a_refit_writes_a_new_code_file_and_a_fit_without_one_removes_it(
    tmp_path, corpus_vectors
) -> None:
    path = tmp_path / "c"
    c = Collection.create(path, "m", 384, Settings(k=32, shortlist=10))
    c.add_vectors(_documents(len(corpus_vectors)), corpus_vectors)
    [first] = _code_files(c)
    c.fit(k=48)
    [second] = _code_files(c)
    assert second != first and c.describe()["settings"]["shortlist"] == 10
    c.close()
    reopened = Collection(path)  # the snapshot names its code file
    assert reopened.fitted.shortlist.name == second.stem
    reopened.fit(shortlist=None)
    assert _code_files(reopened) == [] and reopened.fitted.shortlist is None
    assert reopened.search_vectors(corpus_vectors[:1], top_k=1)[0][0].id == "0"


def test_a_code_file_no_snapshot_names_is_removed_on_open(tmp_path, corpus_vectors) -> None:
    """A fit that crashed after writing its codes, before its snapshot was served."""
    path = tmp_path / "c"
    c = Collection.create(path, "m", 384, Settings(k=32, shortlist=10))
    c.add_vectors(_documents(20), corpus_vectors[:20])
    orphan = path / CODES_DIRECTORY / "0123456789abcdef.sq8"
    orphan.write_bytes(b"\0" * SHORTLIST_K)
    c.close()
    Collection(path).close()
    assert not orphan.exists() and len(list((path / CODES_DIRECTORY).iterdir())) == 1


def test_a_shortlist_must_be_a_positive_integer() -> None:
    for bad in (0, -3, 2.5, True, "100"):
        with pytest.raises(InvalidInput, match="shortlist must be a positive integer"):
            Settings(shortlist=bad)


def test_a_query_may_keep_another_number_of_the_collections_codes(tmp_path, corpus_vectors) -> None:
    """Of a collection with codes, a query's shortlist wins (at least top_k); of one without,
    asking for a shortlist says how to get codes instead of quietly re-scoring everything."""
    n = len(corpus_vectors)
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=32, candidates=n, shortlist=20))
    c.add_vectors(_documents(n), corpus_vectors)
    queries = corpus_vectors[:6] + 0.5 * corpus_vectors[60:66]
    every = c.search_vectors(queries, top_k=5, shortlist=n)  # nothing cut: exact search
    assert [[h.id for h in q] for q in every] == _exact(queries, corpus_vectors, 5)
    asked, seen = [], []
    original = c.fitted.shortlist.narrow

    def spy(raw_queries, candidates, keep):
        asked.append(keep)
        kept = original(raw_queries, candidates, keep)
        seen.append(int((kept >= 0).sum(axis=1).max()))
        return kept

    c.fitted.shortlist.narrow = spy
    c.search_vectors(queries[:1], top_k=5, shortlist=2)  # below top_k: top_k of them
    c.search_vectors(queries[:1], top_k=5)  # the collection's
    assert asked == [5, 20] and seen == [5, 20]
    plain = Collection.create(tmp_path / "p", "m", 384, Settings(k=32))
    plain.add_vectors(_documents(20), corpus_vectors[:20])
    with pytest.raises(InvalidInput, match="keeps no shortlist codes: refit it with a shortlist"):
        plain.search_vectors(corpus_vectors[:1], top_k=3, shortlist=10)
