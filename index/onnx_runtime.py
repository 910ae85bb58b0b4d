"""Sentence vectors from an exported ONNX graph: ONNX Runtime and `tokenizers`, no torch.

Serving this way starts in well under a second (importing sentence-transformers takes seconds)
and answers one short query in about half the time of the PyTorch path on a small CPU.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.onnx_export import META_FILE, MODEL_FILE, TOKENIZER_FILE
from index.text_cut import TextCutter


class OnnxSentenceModel:
    """The exported pipeline of `folder` (see index.onnx_export), ready to encode.

    Args:
        folder: holds model.onnx, tokenizer.json and meta.json.
        threads: ONNX Runtime's intra-op threads (None: its default, one per core).
    """

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.dimension = int(self.meta["dimension"])
        self.max_seq_length = int(self.meta["max_seq_length"])
        self._inputs: list[str] = list(self.meta["inputs"])
        # The model's tokenizer.json may carry other truncation and padding (all-MiniLM-L6-v2's
        # says 128, fixed); sentence-transformers truncates at max_seq_length, pads to the longest.
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.enable_padding(
            pad_id=int(self.meta["pad_id"]), pad_token=str(self.meta["pad_token"])
        )
        self.cutter = TextCutter(self._tokenizer, self.max_seq_length)
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        # Idle intra-op threads sleep instead of spinning: the cores are shared with the HTTP
        # workers, FAISS, tokenising and other processes, and spinning threads took their time
        # (measured under load: sentences/s 1.6x with spinning off, abstracts no slower).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text; batches of similar length pad less."""
        texts = self.cutter.cut_all(texts)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="Batches")
        for start in starts:
            rows = order[start : start + batch_size]
            out[rows] = self._run([texts[i] for i in rows])
        return out

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {name: np.asarray(columns[name], dtype=np.int64) for name in self._inputs}
        (vectors,) = self._session.run(None, feed)
        return vectors
