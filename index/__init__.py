"""whitened-search's library: encoder, whitening kernel, FAISS index, metrics, tuning, collections."""

from index.errors import (
    Conflict,
    IndexError_,
    InvalidHyperparameters,
    InvalidIndexSpec,
    InvalidInput,
    InvalidTexts,
    InvalidVectors,
    ModelMismatch,
    NotEnoughData,
    NotFitted,
    NotFound,
    StorageError,
)
from index.kernel import WhiteningKernel

__all__ = [
    "Conflict",
    "IndexError_",
    "InvalidHyperparameters",
    "InvalidIndexSpec",
    "InvalidInput",
    "InvalidTexts",
    "InvalidVectors",
    "ModelMismatch",
    "NotEnoughData",
    "NotFitted",
    "NotFound",
    "StorageError",
    "WhiteningKernel",
]
