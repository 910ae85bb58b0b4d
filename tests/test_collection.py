"""Collection: documents, frozen kernel, index and persistence, with the real model and FAISS."""

import json
import os
import resource
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from index import Collection, Document, Encoder, Settings
from index.collection import COMPACT_AT
from index.errors import (
    Conflict,
    InvalidHyperparameters,
    InvalidIndexSpec,
    InvalidInput,
    InvalidTexts,
    InvalidVectors,
    ModelMismatch,
    NotFitted,
    NotFound,
    StorageError,
    StorageFull,
)


def _docs(texts: list[str], start: int = 0) -> list[Document]:
    return [
        Document(text, id=f"doc-{start + i}", metadata={"group": (start + i) % 3})
        for i, text in enumerate(texts)
    ]


@pytest.fixture
def collection(tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors) -> Collection:
    # the index's own scores: cosines of the kernel vectors (the defaults re-score them)
    settings = Settings(k=64, index_spec="Flat", rescore="off")
    created = Collection.create(
        tmp_path / "c", encoder.model_id, encoder.dimension, settings, encoder
    )
    created.add_vectors(_docs(corpus), corpus_vectors)
    return created


def test_paraphrase_query_finds_its_sentence(collection: Collection) -> None:
    hits = collection.search(["A lady cuts up an onion in the kitchen"], top_k=3)[0]
    assert hits[0].text == "A woman is slicing an onion in the kitchen."
    assert hits[0].score > hits[1].score >= hits[2].score
    assert -1 <= hits[2].score <= hits[0].score <= 1


def test_scores_are_cosines_in_kernel_space(collection: Collection, encoder: Encoder) -> None:
    query = "A pilot rides a horse at the park"
    hit = collection.search([query], top_k=1)[0][0]
    stored = collection.get([hit.id])[0]
    rows, raw = collection.raw_vectors()
    kernel_doc = collection.transform(raw[rows == stored.row])[0]
    kernel_query = collection.transform(encoder.encode([query]))[0]
    assert hit.score == pytest.approx(float(kernel_doc @ kernel_query), abs=1e-5)


def test_kernel_is_fitted_on_first_ingest_then_frozen(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=32))
    c.add_vectors(_docs(corpus[:1]), corpus_vectors[:1])
    assert c.kernel is None
    with pytest.raises(NotFitted, match="at least 2 documents"):
        c.search_vectors(corpus_vectors[:1])
    result = c.add_vectors(_docs(corpus[1:100], 1), corpus_vectors[1:100])
    assert result.fitted and c.kernel is not None and c.kernel.n_samples_seen_ == 100
    weights = c.kernel.components_.copy()
    later = c.add_vectors(_docs(corpus[100:], 100), corpus_vectors[100:])
    assert not later.fitted and c.kernel.n_samples_seen_ == 100
    assert np.array_equal(c.kernel.components_, weights)
    assert c.count() == c.index.ntotal == len(corpus)


def test_fit_false_stores_without_fitting(tmp_path: Path, corpus: list[str], corpus_vectors):
    c = Collection.create(tmp_path / "c", "m", 384)
    c.add_vectors(_docs(corpus[:50]), corpus_vectors[:50], fit=False)
    assert c.kernel is None and c.count() == 50
    c.fit()
    assert c.kernel.n_samples_seen_ == 50 and c.index.ntotal == 50


def test_upsert_replaces_text_vector_and_metadata(collection: Collection) -> None:
    with pytest.raises(Conflict, match="already exist"):
        collection.add([Document("A cat sleeps on the sofa.", id="doc-0")])
    assert collection.get(["doc-0"])[0].text.startswith("A man is playing the guitar")
    result = collection.add(
        [Document("A cat sleeps on the sofa.", id="doc-0", metadata={"pet": True})], upsert=True
    )
    assert (result.added, result.replaced) == (1, 1)
    stored = collection.get(["doc-0"])[0]
    assert stored.text == "A cat sleeps on the sofa." and stored.metadata == {"pet": True}
    assert collection.count() == collection.index.ntotal == 180
    hit = collection.search(["a kitten is napping on the couch"], top_k=1)[0][0]
    assert hit.id == "doc-0"


def test_delete_is_all_or_nothing(collection: Collection) -> None:
    with pytest.raises(NotFound, match="nope"):
        collection.delete(["doc-1", "nope"])
    assert collection.count() == 180 and collection.get(["doc-1"])
    assert collection.delete(["doc-1", "doc-2"]) == 2
    assert collection.count() == collection.index.ntotal == 178
    with pytest.raises(NotFound):
        collection.get(["doc-1"])
    found = {h.id for h in collection.search(["A man is playing the guitar"], top_k=20)[0]}
    assert not found & {"doc-1", "doc-2"}


def test_metadata_filter_is_exact_equality(collection: Collection) -> None:
    hits = collection.search(["someone cooking"], top_k=10, where={"group": 2})[0]
    assert len(hits) == 10 and all(h.metadata["group"] == 2 for h in hits)
    assert collection.search(["x"], top_k=5, where={"group": 7}) == [[]]
    with pytest.raises(InvalidInput, match="filter value"):
        collection.search(["x"], where={"group": [1]})


def test_refit_uses_stored_vectors_and_a_failed_refit_changes_nothing(
    collection: Collection,
) -> None:
    reopened = Collection(collection.path)  # no encoder: fit cannot re-encode
    reopened.fit(beta=0.5, gamma=0.5, k=48, index_spec="HNSW32")
    assert (reopened.kernel.beta, reopened.kernel.k_) == (0.5, 48)
    assert reopened.describe()["settings"]["index_spec"] == "HNSW32"
    manifest = json.loads((collection.path / "manifest.json").read_text())
    before = reopened.search_vectors(reopened.raw_vectors()[1][:3], top_k=5)
    with pytest.raises(InvalidHyperparameters, match="meaningful components"):
        reopened.fit(gamma=1.0, k=384)
    with pytest.raises(InvalidIndexSpec):
        reopened.fit(index_spec="PQ7")
    assert json.loads((collection.path / "manifest.json").read_text()) == manifest
    assert reopened.search_vectors(reopened.raw_vectors()[1][:3], top_k=5) == before
    assert len(list((collection.path / "snapshots").iterdir())) == 1


def test_graph_index_handles_delete_and_upsert(
    tmp_path: Path, corpus: list[str], corpus_vectors
) -> None:
    c = Collection.create(tmp_path / "c", "m", 384, Settings(index_spec="HNSW32"))
    c.add_vectors(_docs(corpus), corpus_vectors)
    c.delete(["doc-5"])
    c.add_vectors(_docs(corpus[:1], 7), corpus_vectors[:1], upsert=True)
    assert c.count() == c.index.ntotal == 179
    assert "doc-5" not in {h.id for h in c.search_vectors(corpus_vectors[5:6], top_k=5)[0]}


def test_deletes_leave_tombstones_until_a_quarter_of_the_index_is_dead(
    tmp_path: Path, corpus: list[str], corpus_vectors
) -> None:
    """A removed vector's code stays (searches skip it) until COMPACT_AT of the index is
    dead; then the index is built anew from the store, and a reopen keeps all of it."""
    c = Collection.create(tmp_path / "c", "m", 384, Settings(k=64, index_spec="SQ8"))
    c.add_vectors(_docs(corpus), corpus_vectors)
    before = c.index
    c.delete([f"doc-{i}" for i in range(0, 40)])
    assert c.index is before and 0 < c.index.dead_fraction <= COMPACT_AT
    hits = c.search_vectors(corpus_vectors[:40], top_k=3)
    assert all(h.id not in {f"doc-{i}" for i in range(40)} for query in hits for h in query)
    c.delete([f"doc-{i}" for i in range(40, 60)])
    assert c.index is not before and c.index.dead_fraction == 0
    assert c.count() == c.index.ntotal == 120
    reopened = Collection(c.path)
    assert np.array_equal(reopened.index.ids(), c.index.ids())


def test_reopen_gives_the_same_answers_and_reconciles_unsaved_writes(
    collection: Collection, corpus_vectors
) -> None:
    before = collection.search_vectors(corpus_vectors[:5], top_k=5)
    collection.add_vectors(
        [Document("A brand new sentence about boats.", id="late")], corpus_vectors[7:8] * 0.5
    )
    collection.delete(["doc-3"])
    # No checkpoint and no close: the snapshot on disk predates the two writes above.
    reopened = Collection(collection.path)
    assert reopened.count() == reopened.index.ntotal == 180
    assert set(reopened.index.ids()) == set(reopened.raw_vectors()[0])
    after = reopened.search_vectors(corpus_vectors[:5], top_k=5)
    expected = collection.search_vectors(corpus_vectors[:5], top_k=5)
    assert after == expected and after != before


def test_model_mismatch_is_refused(collection: Collection) -> None:
    other = Encoder("/nonexistent/other-model")
    with pytest.raises(ModelMismatch, match="written by model"):
        Collection(collection.path, other)


def test_describe_reports_kernel_and_bytes(collection: Collection) -> None:
    info = collection.describe()
    assert info["count"] == info["indexed"] == 180
    assert info["k"] == 64 and info["dimension"] == 384
    assert 0.5 < info["explained_energy"] <= 1.0
    assert info["raw_bytes_per_vector"] == 1536
    assert 4 * 64 <= info["index_bytes_per_vector"] < 1536
    assert info["fitted_at"] is not None


def _nested(depth: int) -> dict:
    metadata: dict = {"leaf": 1}
    for _ in range(depth - 1):
        metadata = {"a": metadata}
    return metadata


@pytest.mark.parametrize(
    ("documents", "error", "match"),
    [
        ([Document(42)], InvalidTexts, "not a string"),  # type: ignore[arg-type]
        ([], InvalidInput, "no documents"),
        ([Document("a", id="x"), Document("b", id="x")], InvalidInput, "repeat"),
        ([Document("a", id="")], InvalidInput, "id must be"),
        ([Document("a", metadata={"s": {1, 2}})], InvalidInput, "metadata must be JSON"),
        ([Document("a", metadata={"v": float("nan")})], InvalidInput, "metadata must be JSON"),
        ([Document("a", metadata=_nested(300))], InvalidInput, "nested 300 levels deep"),
        ([Document("a", metadata={"big": "x" * 70_000})], InvalidInput, "bytes as JSON"),
    ],
)
def test_bad_documents_are_refused_and_store_nothing(
    collection: Collection, documents: list[Document], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        collection.add(documents)
    assert collection.count() == 180


def test_bad_vectors_are_refused(collection: Collection, corpus_vectors) -> None:
    nan = corpus_vectors[:1].copy()
    nan[0, 3] = np.nan
    with pytest.raises(InvalidVectors, match="NaN"):
        collection.add_vectors([Document("x")], nan)
    with pytest.raises(InvalidVectors, match="dimension 100"):
        collection.add_vectors([Document("x")], corpus_vectors[:1, :100])
    with pytest.raises(InvalidVectors, match="1 documents but 2 vectors"):
        collection.add_vectors([Document("x")], corpus_vectors[:2])
    with pytest.raises(InvalidInput, match="top_k"):
        collection.search_vectors(corpus_vectors[:1], top_k=0)
    assert collection.count() == 180


def test_create_refuses_bad_settings_and_leaves_no_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="larger than the model dimension"):
        Collection.create(tmp_path / "a", "m", 384, Settings(k=385))
    with pytest.raises(InvalidIndexSpec):
        Collection.create(tmp_path / "b", "m", 384, Settings(index_spec="Bogus"))
    with pytest.raises(InvalidInput, match="beta must be finite"):
        Settings(beta=float("inf"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_documents_with_empty_text_are_stored_and_indexed(
    collection: Collection, encoder: Encoder
) -> None:
    """Issue 17 item 9: Cranfield holds empty abstracts; they are encoded like any text."""
    collection.add([Document("", id="empty-1"), Document("   ", id="empty-2")])
    assert [d.text for d in collection.get(["empty-1", "empty-2"])] == ["", "   "]
    assert collection.index is not None and collection.index.ntotal == collection.count()
    empty = encoder.encode([""])
    hits = collection.search_vectors(empty, top_k=1, rescore=True)[0]
    assert hits[0].id in ("empty-1", "empty-2") and hits[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(InvalidTexts, match="empty"):
        collection.search(["  "])


@pytest.mark.parametrize(
    ("settings", "n", "reason"),
    [
        (Settings(beta=1.0, gamma=1.0, k=128), 10, "exceeds the"),
        (Settings(index_spec="IVF256,PQ16", k=128), 50, "needs at least 256 vectors"),
    ],
)
def test_a_collection_that_cannot_be_fitted_yet_reopens_readable_and_writable(
    tmp_path: Path,
    encoder: Encoder,
    corpus: list[str],
    corpus_vectors,
    settings: Settings,
    n: int,
    reason: str,
) -> None:
    """Issue 17 item 2: documents loaded with fit=False under settings that cannot be fitted
    yet made the collection fail to open after a restart (every route 422)."""
    path = tmp_path / "c"
    first = Collection.create(path, encoder.model_id, 384, settings, encoder)
    first.add_vectors(_docs(corpus[:n]), corpus_vectors[:n], fit=False)
    first.close()
    again = Collection(path, encoder)  # used to raise InvalidHyperparameters / NotEnoughData
    assert again.kernel is None and again.count() == n
    assert reason in again.describe()["fit_error"]
    with pytest.raises(NotFitted, match=reason):
        again.search(["a query"])
    written = again.add_vectors(_docs(corpus[n : n + 2], start=n), corpus_vectors[n : n + 2])
    assert written.added == 2 and not written.fitted and reason in written.fit_error
    assert len(again.get([f"doc-{n}"])) == 1
    again.fit(beta=0.0, gamma=0.0, k=16, index_spec="Flat")
    assert again.kernel is not None and again.describe()["fit_error"] is None
    assert again.index is not None and again.index.ntotal == n + 2


def test_a_refit_removes_only_snapshots_it_wrote(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """The service touches no file it did not create: a user's file among the snapshots stays."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16))
    c.add_vectors(_docs(corpus[:20]), corpus_vectors[:20])
    foreign = tmp_path / "c" / "snapshots" / "my-backup"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    old = c.manifest.snapshot
    c.fit(k=8)
    snapshots = {p.name for p in (tmp_path / "c" / "snapshots").iterdir()}
    assert snapshots == {"my-backup", c.manifest.snapshot} and old not in snapshots
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_reads_of_a_damaged_store_are_storage_errors(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """Issue 17 item 14: SQLite read errors escaped as 500s (writes were StorageErrors)."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16))
    c.add_vectors(_docs(corpus[:20]), corpus_vectors[:20])
    c.close()
    store = tmp_path / "c" / "documents.sqlite"
    data = bytearray(store.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # keep the schema page, ruin the data pages
    store.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        (tmp_path / "c" / f"documents.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(StorageError, match="could not read documents"):
        Collection(tmp_path / "c", encoder)


def test_get_takes_more_ids_than_sqlite_takes_parameters(collection: Collection) -> None:
    """Issue 17 item 14: `get` built one IN list; SQLite refuses more than 32,766 parameters."""
    ids = [f"doc-{i % 180}" for i in range(40_000)]
    assert [d.id for d in collection.get(ids)] == ids
    with pytest.raises(NotFound, match="no-such"):
        collection.get([*ids, "no-such"])


def test_raw_vectors_are_filled_from_the_store_when_their_file_is_missing_or_cut(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """The mapped vector file is derived: a collection written before it existed, or whose
    file lost its tail, gets the vectors back from SQLite on open, and answers as before."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16, index_spec="SQ8"))
    c.add_vectors(_docs(corpus[:60]), corpus_vectors[:60])
    rows, raw = c.raw_vectors()
    hits = c.search_vectors(corpus_vectors[:3], top_k=5, rescore="kernel")
    c.close()
    vectors_file = tmp_path / "c" / "documents.vectors"
    for damage in ("cut", "missing"):
        if damage == "cut":
            os.truncate(vectors_file, vectors_file.stat().st_size - 384 * 4 * 7 - 100)
        else:
            vectors_file.unlink()
        c = Collection(tmp_path / "c", encoder)
        try:
            again_rows, again = c.raw_vectors()
            assert np.array_equal(again_rows, rows) and np.array_equal(again, raw)
            assert c.search_vectors(corpus_vectors[:3], top_k=5, rescore="kernel") == hits
        finally:
            c.close()


def test_a_vector_file_that_cannot_grow_refuses_the_write_and_keeps_the_store(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """The raw vectors are written before the transaction commits: when their file cannot
    grow (a full disk, here a file-size limit), the write is refused whole and nothing of it
    is stored; the next write that fits goes through."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16))
    docs = _docs(corpus[:10])
    for _ in range(60):  # the vector file grows by 10 rows a time; SQLite reuses its pages
        c.add_vectors(docs, corpus_vectors[:10], upsert=True)
    with sqlite3.connect(tmp_path / "c" / "documents.sqlite") as store:
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the log starts small again
    before = c.raw_vectors()
    limit = (tmp_path / "c" / "documents.vectors").stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(StorageFull, match=r"File too large.*nothing of this request"):
            c.add_vectors(_docs(corpus[10:20], start=10), corpus_vectors[10:20])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    after = c.raw_vectors()
    assert c.count() == 10 and np.array_equal(after[0], before[0])
    assert np.array_equal(after[1], before[1])
    assert c.add_vectors(_docs(corpus[10:20], start=10), corpus_vectors[10:20]).added == 10
    assert c.search_vectors(corpus_vectors[12:13], top_k=1)[0][0].id == "doc-12"
    c.close()


def test_replaced_and_deleted_vectors_give_their_blocks_back_and_keep_the_rest(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """Rows are never reused, so the vector file grows with every write; the places of rows
    written away become holes, and the vectors of live rows beside them stay exact."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16))
    rng = np.random.default_rng(7)
    docs = _docs(corpus[:100])
    for _ in range(40):
        c.add_vectors(docs, corpus_vectors[rng.permutation(100)], upsert=True)
    gone = [d.id for d in docs if rng.random() < 0.3]
    c.delete(gone)
    stat = (tmp_path / "c" / "documents.vectors").stat()
    assert stat.st_size >= 40 * 100 * 384 * 4
    assert stat.st_blocks * 512 < 3 * 100 * 384 * 4  # about the live rows, not 40 times them
    c.close()
    c = Collection(tmp_path / "c", encoder)  # the vectors read again from the file
    with sqlite3.connect(tmp_path / "c" / "documents.sqlite") as store:
        stored = store.execute("SELECT row, vector FROM documents ORDER BY row").fetchall()
    rows, raw = c.raw_vectors()
    assert rows.tolist() == [row for row, _ in stored] and len(rows) == 100 - len(gone)
    assert np.array_equal(
        raw, np.frombuffer(b"".join(v for _, v in stored), "<f4").reshape(-1, 384)
    )
    c.close()


def test_a_search_of_a_closed_collection_is_a_storage_error(
    tmp_path: Path, encoder: Encoder, corpus: list[str], corpus_vectors
) -> None:
    """A query in flight while its collection is deleted reads the closed vector file: a
    StorageError (503) as for the closed SQLite file, not an OSError (500)."""
    c = Collection.create(tmp_path / "c", encoder.model_id, 384, Settings(k=16, index_spec="SQ8"))
    c.add_vectors(_docs(corpus[:20]), corpus_vectors[:20])
    c.close()
    with pytest.raises(StorageError, match="closed"):
        c.search_vectors(corpus_vectors[:1], top_k=3, rescore="raw")
