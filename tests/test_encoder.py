"""The encoder backends: ONNX exports give the PyTorch vectors (fp32) or close ones (int8), and
a collection refuses a backend whose vectors do not compare with the ones it stores."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from index import Collection, Document, Encoder, ModelMismatch
from index.encoder import check_backend
from index.errors import InvalidInput
from index.onnx_export import META_FILE, MODEL_FILE, TOKENIZER_FILE
from index.text_cut import CEILING_CHARS_PER_TOKEN, TextCutter

TEXTS = [
    "A man is playing a guitar.",
    "The central bank raised interest rates again.",
    "Ünïcödé, emoji 🙂 and CJK 漢字 in one line.",
    "x",
    "word " * 400,  # far beyond the 256-token limit: truncated the same way by every backend
]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return Encoder(backend="torch").encode(TEXTS)


@pytest.fixture(scope="module")
def int8() -> Encoder:
    return Encoder(backend="onnx-int8")


def test_onnx_gives_the_pytorch_vectors(encoder: Encoder, torch_vectors: np.ndarray) -> None:
    assert encoder.backend == "onnx"
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.99999, cosines
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.max_seq_length == 256


def test_openvino_gives_the_pytorch_vectors(torch_vectors: np.ndarray) -> None:
    """OpenVINO runs onnx's own export (no second export) at f32: the torch vectors again."""
    openvino = Encoder(backend="openvino")
    vectors = openvino.encode(TEXTS)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.99999, cosines
    assert openvino.export_dir() == Encoder(backend="onnx").export_dir()
    assert openvino.vectors_id == Encoder().vectors_id  # one family: caches are shared
    alone = np.vstack([openvino.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)


def test_long_texts_go_in_smaller_batches_with_the_same_vectors(encoder: Encoder) -> None:
    """At most TOKEN_BUDGET tokens a forward pass: 40 texts of 256 tokens and 2 short ones run
    as 16 + 16 + 10 (the last 8 long ones with the short ones), not 32 + 10, and every row is
    what it is alone."""
    from index.onnx_runtime import TOKEN_BUDGET

    texts = [f"text {i} " + "word " * 300 for i in range(40)] + ["short one", "short two"]
    model = encoder._loaded()
    sizes: list[int] = []
    run = model._run

    def counted(encodings):  # type: ignore[no-untyped-def]
        sizes.append(len(encodings))
        return run(encodings)

    model._run = counted  # type: ignore[method-assign]
    try:
        vectors = model.encode(texts, batch_size=32)
    finally:
        del model._run
    assert sizes == [TOKEN_BUDGET // 256] * 2 + [10]
    alone = np.vstack([encoder.encode([text]) for text in texts[-4:]])
    np.testing.assert_allclose(vectors[-4:], alone, atol=1e-5)


def test_onnx_int8_is_close_but_not_the_same(int8: Encoder, torch_vectors: np.ndarray) -> None:
    cosines = (int8.encode(TEXTS) * torch_vectors).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    assert cosines.mean() < 0.9999, "int8 vectors should differ measurably from fp32"
    assert int8.vectors_id.endswith("+int8") and "+" not in Encoder().vectors_id


def test_a_batch_gives_the_rows_of_single_texts(encoder: Encoder) -> None:
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_export_is_made_once_and_complete(encoder: Encoder) -> None:
    assert encoder.dimension == 384  # loads, exporting if the cache has no export yet
    folder = encoder.export_dir()
    model = folder / MODEL_FILE
    stamp = model.stat().st_mtime_ns
    assert (folder / META_FILE).is_file()
    again = Encoder(cache_dir=encoder.cache_dir)
    assert again.export_dir() == folder
    again.encode(["reuse the files"])
    assert model.stat().st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "staging left"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(InvalidInput, match="onnx-int8"):
        check_backend("tensorrt")


def _collection(path: Path, encoder: Encoder) -> Collection:
    collection = Collection.create(path, encoder.model_id, 384, encoder=encoder)
    collection.add([Document(text, id=str(i)) for i, text in enumerate(TEXTS[:4])])
    return collection


def test_fp32_backends_share_collections(tmp_path: Path, encoder: Encoder) -> None:
    written = _collection(tmp_path / "c", Encoder(backend="torch"))
    assert written.describe()["backend"] == "torch"
    written.close()
    reopened = Collection(tmp_path / "c", encoder)  # onnx reads what torch wrote
    hits = reopened.search(["a guitar player"], top_k=1)
    assert hits[0][0].id == "0"


def test_int8_collections_refuse_fp32_queries(
    tmp_path: Path, encoder: Encoder, int8: Encoder
) -> None:
    _collection(tmp_path / "c", int8).close()
    reopened = Collection(tmp_path / "c", encoder)
    assert reopened.count() == 4  # documents stay readable
    with pytest.raises(ModelMismatch, match="WHITENED_SEARCH_BACKEND=onnx-int8"):
        reopened.search(["a guitar player"])
    with pytest.raises(ModelMismatch):
        reopened.add([Document("more text")])


@pytest.mark.skipif(os.cpu_count() == 1, reason="one core: nothing to compare")
def test_threads_setting_reaches_the_runtime(encoder: Encoder) -> None:
    one = Encoder(cache_dir=encoder.cache_dir, threads=1)
    np.testing.assert_allclose(one.encode(TEXTS[:2]), encoder.encode(TEXTS[:2]), atol=1e-5)


def test_exported_files_are_readable_by_other_users(encoder: Encoder) -> None:
    """The Docker image exports as root and serves as uid 10001."""
    assert encoder.dimension == 384
    folder = encoder.export_dir()
    assert folder.stat().st_mode & 0o005 == 0o005
    assert all(path.stat().st_mode & 0o004 for path in folder.iterdir())


PROSE = "The central bank raised interest rates again, citing inflation of 4.5% in May. "


def _record_tokenizer_inputs(encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lengths of the texts each backend hands its tokenizer (a spy on the library's entry)."""
    loaded = encoder._loaded()
    lengths: list[int] = []
    if encoder.backend == "torch":
        model, entry = loaded._model, "preprocess"
    else:
        model, entry = loaded, "_tokenizer"
    inner = getattr(model, entry)

    class Recording:
        def __getattr__(self, name: str):
            return getattr(inner, name)

        def encode_batch(self, texts, *args, **kwargs):
            lengths.extend(len(t) for t in texts)
            return inner.encode_batch(texts, *args, **kwargs)

    def preprocess(inputs, *args, **kwargs):
        lengths.extend(len(t) for t in inputs)
        return inner(inputs, *args, **kwargs)

    monkeypatch.setattr(model, entry, preprocess if encoder.backend == "torch" else Recording())
    return lengths


@pytest.mark.parametrize("backend", ["onnx", "openvino", "torch"])
def test_huge_text_is_cut_before_tokenising(
    backend: str, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 item 6: a 5 MB text was tokenised whole (28 s of CPU, RSS 405 -> 819 MB)."""
    subject = encoder if backend == "onnx" else Encoder(backend=backend)
    huge = PROSE * (5_000_000 // len(PROSE))
    expected = subject.encode([huge[:4000]])  # 4,000 characters hold more than 256 tokens
    lengths = _record_tokenizer_inputs(subject, monkeypatch)
    vector = subject.encode([huge, "a short one"])
    assert lengths and max(lengths) <= 8 * subject.max_seq_length, lengths
    np.testing.assert_allclose(vector[:1], expected, atol=1e-6)


def _tokenizer(encoder: Encoder, max_tokens: int) -> Tokenizer:
    tokenizer = Tokenizer.from_file(str(encoder.export_dir() / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def test_a_cut_keeps_every_token_the_model_reads(encoder: Encoder) -> None:
    """Texts made to trip a cut (whitespace runs, words over WordPiece's 100 characters,
    accents as combining marks, CJK, control characters, emoji) give the tokens of the whole
    text; a small window (16 tokens) puts the cut inside each kind of piece."""
    assert encoder.dimension == 384  # exports if needed
    max_tokens = 16
    tokenizer = _tokenizer(encoder, max_tokens)
    cutter = TextCutter(tokenizer, max_tokens)
    pieces = [
        "word", "Inflation", "rose", ",", ".", "4.5%", "e\u0301te\u0301", "Ünïcödé", "漢字漢字",
        "🙂", "\x00", "\t", "\n\n", " " * 37, " " * 200, "x" * 101, "antidisestablishment" * 9,
        "-", "don't", "ＦＵＬＬ", "\u200b",
    ]  # fmt: skip
    rng = np.random.default_rng(7)
    cut_count = 0
    for _ in range(400):
        text = "".join(
            pieces[i] + (" " if rng.random() < 0.6 else "")
            for i in rng.integers(0, len(pieces), int(rng.integers(1, 400)))
        )
        cut = cutter.cut(text)
        assert text.startswith(cut)
        cut_count += len(cut) < len(text)
        assert tokenizer.encode(cut).ids == tokenizer.encode(text).ids, repr(text[: len(cut) + 50])
    assert cut_count > 100, "the window should have cut many of these texts"


def test_a_text_without_words_is_cut_at_the_ceiling(encoder: Encoder) -> None:
    """Megabytes of spaces or one endless word: no word boundary proves a cut, so the text is
    cut at the ceiling rather than tokenised whole."""
    assert encoder.dimension == 384
    cutter = TextCutter(_tokenizer(encoder, 256), 256)
    for text in (" " * 2_000_000 + "word", "a" * 2_000_000):
        assert len(cutter.cut(text)) == CEILING_CHARS_PER_TOKEN * 256


def _record_torch_passes(encoder: Encoder, monkeypatch: pytest.MonkeyPatch, on_pass=None):
    """(thread id, texts) of each forward pass the torch backend makes (a spy on
    sentence-transformers' `preprocess`, which every pass calls once)."""
    model = encoder._loaded()._model
    inner = model.preprocess
    passes: list[tuple[int, list[str]]] = []

    def preprocess(inputs, *args, **kwargs):
        passes.append((threading.get_ident(), list(inputs)))
        if on_pass is not None:
            on_pass(len(passes))
        return inner(inputs, *args, **kwargs)

    monkeypatch.setattr(model, "preprocess", preprocess)
    return passes


def test_torch_encodes_on_one_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each thread that calls torch gets an OpenMP team of its own, whose idle spinning slowed
    a server's query encoding (14.4 ms against 9.7): every pass, whoever asks, runs on the
    model's thread, and each caller gets its own texts' vectors, in order, as
    sentence-transformers gives them."""
    encoder = Encoder(backend="torch", batch_size=2)
    expected = encoder._loaded()._model.encode(TEXTS, convert_to_numpy=True)
    passes = _record_torch_passes(encoder, monkeypatch)
    with ThreadPoolExecutor(max_workers=3) as callers:
        results = list(callers.map(lambda _: encoder.encode(TEXTS), range(3)))
    assert len(passes) == 3 * 3  # 5 texts in batches of 2, for each of 3 callers
    threads = {thread for thread, _ in passes}
    assert len(threads) == 1 and threading.get_ident() not in threads, threads
    for vectors in results:
        np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_a_query_waits_for_one_batch_of_an_ingest_not_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The texts go to the model's thread one batch at a time: a query asked during an
    ingest's first batch is encoded next, before the ingest's other 9 batches."""
    encoder = Encoder(backend="torch", batch_size=4)
    chunk = [f"document number {i} of the ingest" for i in range(40)]
    query = "the query asked meanwhile"
    answers: dict[str, np.ndarray] = {}

    def ask_during_the_first_pass(count: int) -> None:
        if count == 1:
            asker.start()
            time.sleep(0.5)  # the query is queued long before this pass ends

    asker = threading.Thread(target=lambda: answers.update(query=encoder.encode([query])))
    passes = _record_torch_passes(encoder, monkeypatch, ask_during_the_first_pass)
    encoder.encode(chunk)
    asker.join()
    order = [texts for _, texts in passes]
    assert len(order) == 11 and order[1] == [query], order[:3]
    assert answers["query"].shape == (1, 384)
