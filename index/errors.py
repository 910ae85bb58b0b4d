"""Exceptions of the index library: each names what went wrong and what to change.

Every class derives from `IndexError_` so callers (the HTTP layer) can map them in one place:
`InvalidInput` and its children are the caller's mistake (4xx), `NotFound` an unknown name or id,
`Conflict` an existing one, `StorageError` a problem with files on disk (`StorageFull`: the
disk refused a write).
"""


class IndexError_(Exception):
    """Base of all errors raised by the index library."""


class InvalidInput(IndexError_, ValueError):
    """Input the caller can fix: bad texts, vectors, hyperparameters or specs."""


class InvalidTexts(InvalidInput):
    """Texts that cannot be encoded: empty, not strings, or no texts at all."""


class InvalidVectors(InvalidInput):
    """Vectors of the wrong shape, dimension, or with NaN/inf values."""


class InvalidHyperparameters(InvalidInput):
    """beta, gamma or k that the kernel cannot use (not finite, k > d, k above the rank...)."""


class NotEnoughData(InvalidInput):
    """Too few vectors to fit a kernel or to train an index."""


class InvalidIndexSpec(InvalidInput):
    """A FAISS index_factory string that FAISS rejects or that this library does not support."""


class NotFitted(IndexError_):
    """The kernel or collection has no fitted state yet (fit first, or add at least 2 documents)."""


class NotFound(IndexError_, KeyError):
    """An unknown collection, document id or file."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Conflict(IndexError_):
    """A name that already exists."""


class ModelMismatch(IndexError_):
    """A collection written by one model opened with another: their vectors are not comparable."""


class ModelUnavailable(IndexError_):
    """A collection's model cannot be loaded here (missing path, no network for a hub name)."""


class StorageError(IndexError_):
    """A collection's files are missing, corrupt or of an unknown format version."""


class StorageFull(StorageError):
    """The disk refused a write (no space, quota, file-size limit): nothing of it was stored."""
