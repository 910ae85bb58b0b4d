"""The index file: a FAISS index's bytes and its id map in one .npz, replaced atomically.

One owner for the format on disk, and for reading the one before it: a version that kept FAISS's
own id map (an IDMap2 index) is taken apart into the same two on read.
"""

import io
import os
from typing import Any

import faiss
import numpy as np

from index.id_map import IdMap
from index.storage import atomic_write


def write(path: str | os.PathLike[str], data: np.ndarray, ids: IdMap) -> None:
    """Write serialised FAISS `data` and `ids`: a crash leaves the previous file or this one."""
    buffer = io.BytesIO()
    np.savez(buffer, faiss=data, **ids.to_arrays())
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())


def read(path: str | os.PathLike[str], binary: bool) -> tuple[Any, IdMap]:
    """The FAISS index and id map of a file `write` wrote, or of one in the older format."""
    with open(path, "rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"
    if zipped:
        with np.load(path) as saved:
            data = saved["faiss"]
            ids = IdMap.from_arrays(saved["starts"], saved["firsts"], saved["size"], saved["live"])
        read = faiss.deserialize_index_binary if binary else faiss.deserialize_index
        return read(data), ids
    legacy = (faiss.read_index_binary if binary else faiss.read_index)(os.fspath(path))
    if not isinstance(legacy, faiss.IndexBinaryIDMap2 | faiss.IndexIDMap2):
        raise ValueError("it holds no id-mapped index")
    ids = IdMap.of(faiss.vector_to_array(legacy.id_map).astype(np.int64))
    if binary:
        inner = faiss.downcast_IndexBinary(legacy.index)
        return faiss.deserialize_index_binary(faiss.serialize_index_binary(inner)), ids
    inner = faiss.downcast_index(legacy.index)
    return faiss.deserialize_index(faiss.serialize_index(inner)), ids
