"""Sentence vectors from an exported ONNX graph: tokenised by `tokenizers`, run without torch.

`ExportedSentenceModel` tokenises, cuts, batches and pads; its subclasses run the graph:
`OnnxSentenceModel` with ONNX Runtime (here) and `OpenVinoSentenceModel` with OpenVINO
(index.openvino_runtime). Serving this way starts in well under a second (importing
sentence-transformers takes seconds) and answers one short query in about half the time of the
PyTorch path on a small CPU.
"""

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.onnx_export import META_FILE, MODEL_FILE, TOKENIZER_FILE
from index.text_cut import TextCutter

if TYPE_CHECKING:
    from tokenizers import Encoding

TOKEN_BUDGET = 4096
"""Tokens of one forward pass at most (texts × the longest): 16 abstracts of 256 tokens ran
faster than 32 here, with either runtime, while short sentences still go `batch_size` at a time
(larger batches of them measured slower)."""


class ExportedSentenceModel(ABC):
    """The exported pipeline of `folder` (model.onnx, tokenizer.json and meta.json, see
    index.onnx_export) up to the graph: subclasses run it (`_infer`) with their runtime's
    intra-op `threads` (None: its default, one per core)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self.dimension = int(self.meta["dimension"])
        self.max_seq_length = int(self.meta["max_seq_length"])
        self._inputs: list[str] = list(self.meta["inputs"])
        # The model's tokenizer.json may carry other truncation and padding (all-MiniLM-L6-v2's
        # says 128, fixed); sentence-transformers truncates at max_seq_length, pads to the longest.
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer.no_padding()  # batches are padded here, to their longest text
        self._pad_id = int(self.meta["pad_id"])
        self.cutter = TextCutter(self._tokenizer, self.max_seq_length)

    def encode(self, texts: Sequence[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """Unit-norm float32 vectors, one row per text; texts are tokenised once and batched in
        order of length, so a batch pads little, with at most TOKEN_BUDGET tokens a batch."""
        encodings = self._tokenizer.encode_batch(self.cutter.cut_all(texts))
        order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(texts), desc="Texts")
        start = 0
        while start < len(texts):
            longest = max(len(encodings[order[start]].ids), 1)
            rows = order[start : start + max(1, min(batch_size, TOKEN_BUDGET // longest))]
            out[rows] = self._run([encodings[i] for i in rows])
            start += len(rows)
            if bar is not None:
                bar.update(len(rows))
        if bar is not None:
            bar.close()
        return out

    def _run(self, encodings: list["Encoding"]) -> np.ndarray:
        """One forward pass over token sequences padded to the longest."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        columns = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return self._infer({name: columns[name] for name in self._inputs})

    @abstractmethod
    def _infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's output (n, d) for one padded batch."""


class OnnxSentenceModel(ExportedSentenceModel):
    """The exported pipeline run by ONNX Runtime (its session runs from any thread)."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        import onnxruntime

        super().__init__(folder)
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )

    def _infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        (vectors,) = self._session.run(None, inputs)
        return vectors
