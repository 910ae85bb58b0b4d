"""whitened-search's library: encoder, whitening kernel, FAISS index, tuning, collections."""

from index.catalog import Catalog
from index.collection import Collection, Hit, WriteResult
from index.documents import Document, StoredDocument
from index.encoder import DEFAULT_MODEL_ID, Encoder
from index.errors import (
    Conflict,
    IndexError_,
    InvalidHyperparameters,
    InvalidIndexSpec,
    InvalidInput,
    InvalidTexts,
    InvalidVectors,
    ModelMismatch,
    ModelUnavailable,
    NotEnoughData,
    NotFitted,
    NotFound,
    StorageError,
)
from index.kernel import WhiteningKernel
from index.snapshots import Settings
from index.vector_index import VectorIndex

__all__ = [
    "DEFAULT_MODEL_ID",
    "Catalog",
    "Collection",
    "Conflict",
    "Document",
    "Encoder",
    "Hit",
    "IndexError_",
    "InvalidHyperparameters",
    "InvalidIndexSpec",
    "InvalidInput",
    "InvalidTexts",
    "InvalidVectors",
    "ModelMismatch",
    "ModelUnavailable",
    "NotEnoughData",
    "NotFitted",
    "NotFound",
    "Settings",
    "StorageError",
    "StoredDocument",
    "VectorIndex",
    "WhiteningKernel",
    "WriteResult",
]
