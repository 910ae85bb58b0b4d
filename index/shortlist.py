"""The shortlist: one byte per dimension of the kernel vectors, on disk, narrowing thousands of
candidates to the few that exact re-scoring reads.

An index of 8 bytes a vector (PQ16x4fs at k=64) keeps the exact top 10 among its first few
thousand candidates, not among its first few hundred, and re-scoring thousands reads 1.5 kB of
raw vector each (3,200 candidates: +1.27 ms a query on 100,000 Reuters sentences). The codes here
are SQ8 codes of the unit kernel vectors at SHORTLIST_K dimensions (or k, if larger), by row in
a mapped file like the raw vectors; the best hundred of 6,400 candidates by the cosine of their
codes held 99.1 % of the exact top 10 there (bench/results/served_bytes_reuters.json), and only
those are re-scored. Like the raw vectors they are read from disk per query: the process holds
per vector what the index holds, nothing more.

The file belongs to one kernel: a fit writes a new one (named in its snapshot), writes add the
codes of their rows (synced) before the index gets them, and a reopened collection writes the
codes of every stored row past the file's end (a file lost or cut short) and of the rows stored
since its snapshot, from the stored raw vectors, before it serves.
"""

import uuid
from pathlib import Path

import faiss
import numpy as np

from index import rescoring
from index.kernel import WhiteningKernel
from index.row_file import RowFile
from index.vector_index import FAISS_THREADS

SHORTLIST_K = 128
"""Dimensions the codes keep (the kernel's k where that is more, the meaningful ones where they
are fewer): 128 bytes a document on disk, read for each of a query's candidates."""

CODES_DIRECTORY = "shortlist"
"""The collection's folder of code files, one per kernel that a snapshot names."""

_SUFFIX = ".sq8"


class Shortlist:
    """A kernel's codes: the kernel at the codes' dimensions, its SQ8 quantizer, the code file."""

    def __init__(
        self, name: str, projector: WhiteningKernel, quantizer: faiss.ScalarQuantizer, path: Path
    ) -> None:
        self.name = name
        self.projector = projector
        self.quantizer = quantizer
        self.codes = RowFile(path, projector.k_, "u1")

    @classmethod
    def build(
        cls, directory: Path, kernel: WhiteningKernel, rows: np.ndarray, vectors: np.ndarray
    ) -> "Shortlist":
        """Codes of the stored `rows` (their raw `vectors`) through `kernel`, in a new file in
        the collection `directory`; the quantizer learns each dimension's range from them."""
        projector = _projector(kernel)
        quantizer = faiss.ScalarQuantizer(projector.k_, faiss.ScalarQuantizer.QT_8bit)
        units = _unit(projector, vectors)
        faiss.omp_set_num_threads(FAISS_THREADS)
        quantizer.train(units)
        name = uuid.uuid4().hex
        (directory / CODES_DIRECTORY).mkdir(exist_ok=True)
        shortlist = cls(name, projector, quantizer, _path(directory, name))
        shortlist._write_units(rows, units)
        return shortlist

    def write(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Write and sync the codes of `rows` (their raw `vectors`): before the index has them,
        so that every candidate the index proposes has its code."""
        if len(rows):
            self._write_units(rows, _unit(self.projector, vectors))

    def _write_units(self, rows: np.ndarray, units: np.ndarray) -> None:
        """`write` for vectors through the projector already (a build trains on them first)."""
        faiss.omp_set_num_threads(FAISS_THREADS)
        self.codes.write(np.asarray(rows, np.int64), self.quantizer.compute_codes(units))

    def narrow(self, raw_queries: np.ndarray, candidates: np.ndarray, keep: int) -> np.ndarray:
        """The best `keep` of each query's candidate rows (−1 pads) by the cosine of their
        codes: (len(raw_queries), at most keep), −1 where a query had fewer."""
        keep = min(keep, candidates.shape[1])  # a shortlist of 10**18 allocates no more
        queries = _unit(self.projector, raw_queries)
        out = np.full((len(candidates), keep), -1, np.int64)
        faiss.omp_set_num_threads(FAISS_THREADS)
        for q, query_rows in enumerate(candidates):
            rows = np.sort(query_rows[query_rows >= 0])  # the file is read in order
            if len(rows) > keep:
                decoded = self.quantizer.decode(np.ascontiguousarray(self.codes.read(rows)))
                rows = rows[np.argpartition(-(decoded @ queries[q]), keep - 1)[:keep]]
            out[q, : len(rows)] = rows
        return out

    def save(self, path: Path) -> None:
        """What a snapshot keeps of it: the file's name and the quantizer (the projector is the
        snapshot's kernel at the codes' dimensions)."""
        np.savez(path, name=self.name, trained=faiss.vector_to_array(self.quantizer.trained))

    @classmethod
    def load(cls, path: Path, directory: Path, kernel: WhiteningKernel) -> "Shortlist":
        """The shortlist a snapshot saved (`save`) for `kernel` of the collection `directory`."""
        with np.load(path) as saved:
            name, trained = str(saved["name"]), saved["trained"]
        projector = _projector(kernel)
        quantizer = faiss.ScalarQuantizer(projector.k_, faiss.ScalarQuantizer.QT_8bit)
        faiss.copy_array_to_vector(trained.astype(np.float32), quantizer.trained)
        return cls(name, projector, quantizer, _path(directory, name))

    def close(self) -> None:
        self.codes.close()


def remove_stale_codes(directory: Path, keep: set[str]) -> None:
    """Delete the code files of kernels no snapshot in use names (`keep`: their names)."""
    folder = directory / CODES_DIRECTORY
    if folder.is_dir():
        for entry in folder.glob(f"*{_SUFFIX}"):
            if entry.stem not in keep:
                entry.unlink(missing_ok=True)


def _projector(kernel: WhiteningKernel) -> WhiteningKernel:
    """The kernel at the codes' dimensions: SHORTLIST_K, at least k, at most the meaningful."""
    return rescoring.rescoring_kernel(
        kernel, min(max(kernel.k_, SHORTLIST_K), rescoring.meaningful_k(kernel))
    )


def _unit(projector: WhiteningKernel, vectors: np.ndarray) -> np.ndarray:
    """Unit kernel vectors (the kernel normalises), laid out as FAISS reads them."""
    return np.ascontiguousarray(projector.transform(vectors))


def _path(directory: Path, name: str) -> Path:
    return directory / CODES_DIRECTORY / f"{name}{_SUFFIX}"
