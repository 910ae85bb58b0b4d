"""The files Chroma's default embedding function loads, made offline from the bundled model.

Chroma's `DefaultEmbeddingFunction` (ONNX all-MiniLM-L6-v2) downloads an archive on first use into
`~/.cache/chroma/onnx_models/all-MiniLM-L6-v2/onnx/`: the transformer exported to ONNX (its first
output the token states, which Chroma mean-pools and normalises itself) and the tokenizer files.
Nothing may be downloaded here, so this exports the same model's transformer from the bundled
files into that layout under a home folder of the benchmark's own; the Chroma driver runs with
HOME set to it, so Chroma's own code path finds the files and runs unchanged.
"""

import shutil
import warnings
from pathlib import Path

LAYOUT = Path(".cache") / "chroma" / "onnx_models" / "all-MiniLM-L6-v2" / "onnx"
TOKENIZER_FILES = (
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "vocab.txt",
)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_folder(home: Path) -> Path:
    return home / LAYOUT


def export(source: Path, home: Path) -> Path:
    """Write model.onnx and the tokenizer files for Chroma under `home`; returns the folder."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = model_folder(home)
    if (folder / "model.onnx").is_file():
        return folder
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model = AutoModel.from_pretrained(source, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    sample = tokenizer(["A sentence to trace.", "A second, longer sentence to trace."],
                       padding=True, return_tensors="pt")  # fmt: skip
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}

    class Transformer(torch.nn.Module):
        """The model as a function of the three token tensors, for tracing: its token states."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(INPUTS, tensors, strict=True))).last_hidden_state

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Transformer(),
            tuple(sample[name] for name in INPUTS),
            str(staging / "model.onnx"),
            input_names=list(INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes={**axes, "last_hidden_state": {0: "batch", 1: "tokens"}},
            opset_version=14,
            dynamo=False,
        )
    for name in TOKENIZER_FILES:
        shutil.copy2(source / name, staging / name)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder
