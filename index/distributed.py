"""Encode a corpus on a Ray cluster, fit one exact kernel, and bulk-load it into a collection.

The encoder is the whole cost of an ingest, so it is what runs on the cluster: Ray Data's
`map_batches` over a pool of encoder actors (the model loads once per actor). Their output, the
raw vectors with ids, texts and metadata, is written as Parquet: the durable result of the encode
step, so nothing after it ever re-encodes. The kernel's statistics (n, Σx, Σxᵀx in float64) are
then summed over the Parquet files, one task per file: a sum is exact across workers, and reading
them from the written output counts every document once even when Ray retried an encode task.
Loading reads the Parquet files back into a collection (`load`) without encoding anything.

Needs the `distributed` extra (`pip install -e ".[distributed]"`); nothing else imports this.
See docs/SCALING.md. About 320 lines: the encode, the statistics and the load share one output
format (the Parquet columns, the done file, the file order), which is clearer in one place.
"""

import hashlib
import itertools
import json
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from index.collection import Collection
from index.documents import Document, prepare
from index.encoder import DEFAULT_BACKEND, Encoder
from index.errors import InvalidInput, NotEnoughData
from index.kernel import WhiteningKernel
from index.snapshots import Settings
from index.statistics import Statistics

BLOCKS_PER_ACTOR = 4
"""Blocks per encoder actor at least, so that actors finish together (see `rows_per_block`)."""
MAX_BLOCK_ROWS = 2048
"""Largest default block: what a retry re-encodes and one Parquet file holds."""
POSITION = "_position"
"""A column added for the encode only: each row's place in the input, naming the batch files."""
DONE_FILE = "_encoded.json"
"""Written last into an output directory: what was encoded, by which model, how many rows."""


@dataclass(frozen=True)
class EncodeOptions:
    """How the encode step runs on the cluster.

    Args:
        model: None for the bundled model, else a local directory every node can read.
        backend: encoder backend of the actors (the service's default by default).
        actors: encoder actors in the pool.
        cpus_per_actor: CPUs Ray reserves for each (and the encoder's threads).
        gpus_per_actor: GPUs for each (the torch backend uses them).
        block_rows: documents per Ray block: a unit of scheduling, retry and Parquet file.
            None: `BLOCKS_PER_ACTOR` blocks per actor at least, of at most `MAX_BLOCK_ROWS`.
        batch_size: documents per `map_batches` call (the encoder sorts a batch by length).
    """

    model: str | None = None
    backend: str = DEFAULT_BACKEND
    actors: int = 2
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    block_rows: int | None = None
    batch_size: int = 1024

    def rows_per_block(self, documents: int) -> int:
        """The block size for `documents`: blocks are shared out whole, so 5 blocks for 2 actors
        leave one actor idle while the other encodes the fifth; several blocks per actor keep
        the last round short."""
        if self.block_rows is not None:
            return self.block_rows
        blocks = max(BLOCKS_PER_ACTOR * self.actors, -(-documents // MAX_BLOCK_ROWS))
        return max(1, -(-documents // blocks))


@dataclass(frozen=True)
class Encoded:
    """A complete encode output: its directory, row count, model and a digest of its input."""

    directory: str
    documents: int
    model_id: str
    backend: str
    dimension: int
    source: str

    @classmethod
    def read(cls, directory: Path) -> "Encoded | None":
        """The record of a finished encode in `directory`, or None if none finished there."""
        try:
            return cls(**json.loads((directory / DONE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at `address` (`auto`: the one started on this machine by
    `ray start`), or with None start a local one for this process, without its dashboard."""
    import ray

    if ray.is_initialized():
        return
    if address is None:
        ray.init(include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)


def documents_table(documents: Sequence[dict[str, Any] | Document]) -> pa.Table:
    """Check documents as a collection write would, fix every id, and lay them out as a table.

    Ids are fixed here, before any encoding, so a retried encode task reproduces its rows
    exactly; documents without an id get a generated one, as in a synchronous write.
    """
    prepared = prepare([d if isinstance(d, Document) else Document(**d) for d in documents])
    return pa.table(
        {
            "id": [d.id for d in prepared],
            "text": [d.text for d in prepared],
            "metadata": [json.dumps(d.metadata, ensure_ascii=False) for d in prepared],
        }
    )


def source_digest(table: pa.Table) -> str:
    """A digest of the documents to encode: a finished output of the same digest is reused."""
    digest = hashlib.sha256()
    for name in ("id", "text", "metadata"):
        for value in table.column(name).to_pylist():
            digest.update(value.encode())
            digest.update(b"\0")
    return digest.hexdigest()


class _EncodeBatch:
    """A Ray Data actor: loads the encoder once, then encodes each batch and writes it as one
    Parquet file named by the batch's first position in the input.

    Writing here rather than in Ray Data's write tasks matters on a small node: those tasks
    ran in worker processes started anew for each block (about 1.5 core-seconds of imports
    each), taking the cores from the encoders. A retried batch has the same first position, so
    it rewrites its file (atomically: written aside, then renamed) instead of adding one.
    """

    def __init__(self, model: str | None, backend: str, threads: int, directory: str) -> None:
        self._encoder = Encoder(model, backend=backend, threads=threads)
        self._directory = Path(directory)

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        vectors = self._encoder.encode(batch.column("text").to_pylist())
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), vectors.shape[1])
        first = batch.column(POSITION)[0].as_py()
        table = batch.drop_columns([POSITION]).append_column("vector", column)
        path = self._directory / f"part-{first:012d}.parquet"
        aside = self._directory / f".{path.name}.{uuid.uuid4().hex[:8]}"
        pq.write_table(table, aside)
        aside.replace(path)
        return {"rows": np.array([table.num_rows])}


def encode(table: pa.Table, directory: Path, options: EncodeOptions) -> Encoded:
    """Encode `table` (from `documents_table`) on the connected Ray cluster into `directory`.

    A finished output of the same documents, model and backend there is reused as it is; an
    unfinished one is replaced. Ray retries a task whose actor died; each batch is written by
    its actor under the name of its first position, so a retry rewrites its file instead of
    adding one. On a cluster `directory` must be one that every node writes (shared storage).
    """
    import ray.data

    directory = Path(directory)
    model_id = Encoder(options.model, backend=options.backend).model_id
    digest = source_digest(table)
    done = Encoded.read(directory)
    if done and (done.source, done.model_id, done.backend) == (digest, model_id, options.backend):
        return done
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    block_rows = options.rows_per_block(table.num_rows)
    numbered = table.append_column(POSITION, pa.array(range(table.num_rows), pa.int64()))
    blocks = [numbered.slice(start, block_rows) for start in range(0, table.num_rows, block_rows)]
    written = ray.data.from_arrow(blocks).map_batches(
        _EncodeBatch,
        fn_constructor_kwargs={
            "model": options.model,
            "backend": options.backend,
            "threads": max(1, int(options.cpus_per_actor)),
            "directory": str(directory),
        },
        batch_size=options.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=options.actors),
        num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor,
    )
    written.materialize()  # runs the encode; each batch's rows are in its file
    for aside in directory.glob(".part-*"):  # left by an actor killed while writing
        aside.unlink()
    files = _files(directory)
    dimension = pq.read_schema(files[0]).field("vector").type.list_size
    rows = sum(pq.read_metadata(path).num_rows for path in files)
    if rows != table.num_rows:  # never load an output that lost or repeated rows
        raise RuntimeError(f"the encode wrote {rows} rows for {table.num_rows} documents")
    encoded = Encoded(str(directory), rows, model_id, options.backend, dimension, digest)
    tmp = directory / f".{DONE_FILE}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(asdict(encoded)))
    tmp.replace(directory / DONE_FILE)
    return encoded


STATISTICS_IN_FLIGHT = 32
"""Statistics tasks at a time: each answer is d² float64 (1.2 MB at d=384), summed as it
arrives, so the driver and the object store hold a bounded number, not one per file."""


def statistics(encoded: Encoded) -> WhiteningKernel:
    """n, Σx and Σxᵀx over every vector of the output, one Ray task per Parquet file, summed,
    and derived once.

    The result is a kernel with β=γ=0 and all d dimensions; `Collection.fit_statistics` derives
    the collection's own β, γ, k from it.
    """
    import ray

    partial = ray.remote(_file_statistics)
    paths = iter(_files(Path(encoded.directory)))
    pending = [partial.remote(str(path)) for path in itertools.islice(paths, STATISTICS_IN_FLIGHT)]
    total: Statistics | None = None
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        part: Statistics = ray.get(done[0])
        total = part if total is None else total + part
        pending += [partial.remote(str(path)) for path in itertools.islice(paths, 1)]
    if total is None:
        raise NotEnoughData(f"{encoded.directory} holds no vectors to fit a kernel on")
    return WhiteningKernel().merge(total)


def _file_statistics(path: str) -> Statistics:
    return Statistics.of(_vectors(pq.read_table(path, columns=["vector"])))


def batches(encoded: Encoded) -> Iterator[tuple[list[Document], np.ndarray]]:
    """The output's documents and raw vectors, one Parquet file at a time, in input order."""
    for path in _files(Path(encoded.directory)):
        table = pq.read_table(path)
        documents = [
            Document(text, doc_id, json.loads(metadata))
            for doc_id, text, metadata in zip(
                table.column("id").to_pylist(),
                table.column("text").to_pylist(),
                table.column("metadata").to_pylist(),
                strict=True,
            )
        ]
        yield documents, _vectors(table)


def load(
    collection: Collection, encoded: Encoded, kernel: WhiteningKernel, upsert: bool = False
) -> int:
    """Store the output in `collection` file by file (each one transaction), then fit its kernel.

    A collection without a kernel gets one derived from `kernel` (the output's statistics) over
    exactly these documents; a fitted one sends them through its frozen kernel, as any write.
    A load cut short keeps the files already stored; running it again with `upsert` resumes.
    """
    fitted = collection.kernel is not None
    if not fitted and collection.count():
        raise InvalidInput(
            f"collection {collection.name} holds documents but no kernel: load into an empty "
            "collection, or a fitted one"
        )
    added = 0
    for documents, vectors in batches(encoded):
        added += collection.add_vectors(documents, vectors, upsert=upsert, fit=False).added
    if not fitted and collection.count() >= 2:
        collection.fit_statistics(kernel)
    return added


def create_and_load(
    root: Path, name: str, encoded: Encoded, kernel: WhiteningKernel, settings: Settings
) -> Collection:
    """A new collection `name` under `root` holding the output, all of it or nothing.

    It is built in a hidden staging directory and renamed into place once complete: a crash
    leaves only the staging directory, which the service removes when it starts.
    """
    path = root / name
    if path.exists():
        raise InvalidInput(f"collection {name!r} already exists: load into it without --create")
    staging = root / f".creating-{name}-{uuid.uuid4().hex[:8]}"
    try:
        Collection.initialise(
            staging, encoded.model_id, encoded.dimension, settings, encoded.backend
        )
        collection = Collection(staging)
        load(collection, encoded, kernel)
        collection.close()
        staging.rename(path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Collection(path)


def _files(directory: Path) -> list[Path]:
    files = sorted(directory.glob("*.parquet"))  # by first position: in input order
    if not files:
        raise InvalidInput(f"{directory} holds no Parquet files of an encode")
    return files


def _vectors(table: pa.Table) -> np.ndarray:
    column = table.column("vector").combine_chunks()
    return column.flatten().to_numpy().reshape(len(column), column.type.list_size)
