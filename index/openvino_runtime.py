"""The exported ONNX graph run by OpenVINO: the same graph, tokenizer and vectors as the `onnx`
backend (fp32 throughout: cosine to torch ≥ 0.99999). It encoded abstracts faster than ONNX
Runtime in bulk on two of the three hosts measured (57.6 against 48.0 and 38.1 against 32.1 a
second) and level on the third (31.2 against 32.5; bench/results/encoders.md, README), so a
server on `onnx` runs its ingest jobs on it (`INGEST_BACKEND`: the same vectors); on sentences
the single runs of bench/results/speed_10000_*.json do not separate the two.
"""

import queue
from pathlib import Path
from typing import Any

import numpy as np

from index.onnx_export import MODEL_FILE
from index.onnx_runtime import ExportedSentenceModel


class OpenVinoSentenceModel(ExportedSentenceModel):
    """The exported pipeline compiled by OpenVINO for the CPU.

    Precision is pinned to f32 (OpenVINO would pick bf16 on CPUs that have it, and the vectors
    would drift from torch's). An infer request serves one call at a time: idle ones wait in a
    queue, and a new one is made only when all are busy, so a server's many threads share as
    many requests as calls run at once. Inputs are shared, not copied (the call is synchronous,
    so the arrays outlive it): a short query spends its time in the graph.
    """

    def __init__(self, folder: Path, threads: int | None = None) -> None:
        import openvino

        super().__init__(folder)
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads is not None:
            config["INFERENCE_NUM_THREADS"] = threads
        self._compiled = openvino.Core().compile_model(str(folder / MODEL_FILE), "CPU", config)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _infer(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            request.infer(inputs, share_inputs=True)
            return np.array(request.get_output_tensor(0).data, dtype=np.float32)
        finally:
            self._idle.put(request)
