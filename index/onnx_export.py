"""Export a sentence-transformers model to ONNX (fp32, and int8 from it), offline, once.

The whole pipeline (transformer, pooling, normalisation) goes into one graph, so the runtime side
needs only ONNX Runtime and the `tokenizers` library, not torch. The files are written into a
temporary folder and renamed into place, so a killed export leaves nothing half-written.

Choices measured on this project's machines (bench/results/encoders.md has the figures):
- torch's legacy exporter (`dynamo=False`) with eager attention: ONNX Runtime's BERT optimizer
  fuses its attention; the dynamo graph is exact too but fuses nothing.
- int8 is dynamic quantisation of the fused graph with per-channel symmetric QInt8 weights: the
  per-tensor default drifts (mean cosine 0.958 to fp32), per-channel keeps about 0.99.
"""

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
"""Bumped when the exported files change, so that older exports are rebuilt."""
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"
OPSET = 17


def export(source: str, target: Path, quantize: bool) -> Path:
    """Write `target/` with model.onnx, tokenizer.json and meta.json for the model at `source`.

    `source` is what SentenceTransformer accepts: a local directory, or a hub name on a machine
    with internet. Needs torch, sentence-transformers and onnx (and onnxruntime for int8).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it 0700: a server running as another user must read it
    try:
        meta = _export_fp32(source, staging)
        if quantize:
            _quantize(staging / MODEL_FILE, meta)
        meta["quantized"] = quantize
        (staging / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:  # another process exported the same model first: keep its files
            if not (target / META_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_fp32(source: str, folder: Path) -> dict[str, Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        source, device="cpu", model_kwargs={"attn_implementation": "eager"}
    ).eval()
    tokenizer = model.tokenizer
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")

    class Pipeline(torch.nn.Module):
        """The SentenceTransformer as a function of token tensors, for tracing."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    sample = tokenizer(
        ["An example sentence to trace.", "A second, longer example sentence to trace."],
        padding=True,
        return_tensors="pt",
    )
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    # The tracer warns about Python branches on shapes; the ones in this pipeline hold for every
    # batch (tests/test_encoder.py checks batches against single texts and the PyTorch vectors).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pipeline(),
            tuple(sample[name] for name in names),
            str(folder / MODEL_FILE),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    tokenizer.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    config = model[0].auto_model.config
    return {
        "format_version": FORMAT_VERSION,
        "source": source,
        "inputs": names,
        "dimension": int(model.get_embedding_dimension()),
        "max_seq_length": int(model.max_seq_length),
        "pad_token": tokenizer.pad_token,
        "pad_id": int(tokenizer.pad_token_id),
        "model_type": str(getattr(config, "model_type", "")),
        "num_heads": int(getattr(config, "num_attention_heads", 0)),
        "hidden_size": int(getattr(config, "hidden_size", 0)),
        "torch": torch.__version__,
    }


def _quantize(path: Path, meta: dict[str, Any]) -> None:
    """Fuse the graph where ONNX Runtime knows the architecture, then int8 per channel."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = path.with_name("fused.onnx")
    try:
        optimize_model(
            str(path),
            model_type="bert",
            num_heads=meta["num_heads"],
            hidden_size=meta["hidden_size"],
            opt_level=1,
        ).save_model_to_file(str(fused))
    except Exception:  # an architecture the optimizer does not know: quantize the plain graph
        shutil.copyfile(path, fused)
    quantize_dynamic(
        str(fused),
        str(path),
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    fused.unlink()
