"""The collections of one data directory, by name, each opened once with its model's encoder.

The catalog owns the directory: its lock (one writing process) and the leftovers of its own
interrupted creates and deletes (and nothing else in it).
"""

import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from index.collection import REFIT_GROWTH, Collection
from index.data_dir import DataDirLock
from index.encoder import (
    DEFAULT_BACKEND,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MODEL_ID,
    Encoder,
    check_backend,
)
from index.errors import Conflict, IndexError_, InvalidInput, NotFound
from index.shards import LAYOUT_FILE, ShardedCollection, shard_path
from index.snapshots import MANIFEST, Manifest, Settings

Stored = Collection | ShardedCollection
"""What the catalog holds by name: a collection, or one split into shards (index.shards)."""
ShardOpener = Callable[[Path, Encoder, float], ShardedCollection]
"""(path, encoder, refit_growth) -> the sharded collection at path with its shards open: in this
process (`ShardedCollection.open`), or each in a process of its own (service.cluster)."""
EncoderMaker = Callable[..., Encoder]
"""`Encoder`'s constructor, or one taking its arguments whose model runs elsewhere."""


@dataclass(frozen=True)
class Placement:
    """Where a catalog's models run and its shards open: in this process by default; the Ray
    application (service.cluster_app) puts models in an encoder deployment and shards in actors."""

    open_shards: ShardOpener = ShardedCollection.open
    make_encoder: EncoderMaker = Encoder


IN_PROCESS = Placement()


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Collection names are directory names: letters, digits, '_' and '-', no dots or separators,
so no name can reach outside the data directory."""

LEFTOVER_PATTERN = re.compile(rf"\.(?:creating|deleting)-{NAME_PATTERN.pattern}-[0-9a-f]{{8}}")
"""Staging names of creates and deletes: the only hidden entries the catalog may remove (a
data directory can sit beside, or be, a folder holding .git or .ssh)."""


class Catalog:
    """Creates, opens, lists and deletes collections under `root`.

    Args:
        root: the data directory (created if missing).
        default_model: model of collections created without one (None: the bundled default).
        batch_size, backend, cache_dir, threads: of every encoder (see index.encoder.Encoder).
        refit_growth: see `Collection.fit_if_due`.
        placement: where models run and shards open (default: all in this process).

    It locks `root` (DataDirBusy when another catalog holds it) until `close`.
    """

    def __init__(
        self,
        root: str | Path,
        default_model: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: str = DEFAULT_BACKEND,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        refit_growth: float = REFIT_GROWTH,
        placement: Placement = IN_PROCESS,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._dir_lock = DataDirLock(self.root)
        self._dir_lock.acquire()
        self.default_model = default_model
        self.batch_size = batch_size
        self.backend = check_backend(backend)
        self.cache_dir = cache_dir
        self.threads = threads
        self.refit_growth = refit_growth
        self.placement = placement
        self._collections: dict[str, Stored] = {}
        self._unavailable: dict[str, str] = {}
        self._encoders: dict[tuple[str, str], Encoder] = {}
        self._lock = threading.Lock()  # the dictionaries above, held for no I/O
        self._name_locks: dict[str, threading.Lock] = {}
        for entry in self.root.iterdir():  # creations and deletions a crash interrupted
            if LEFTOVER_PATTERN.fullmatch(entry.name):
                shutil.rmtree(entry, ignore_errors=True)

    def names(self) -> list[str]:
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if NAME_PATTERN.fullmatch(entry.name) and _is_collection(entry)
        )

    def get(self, name: str) -> Stored:
        """The open collection `name`; NotFound if there is none, StorageError if it is broken.

        Opening (and reconciling) one collection holds only that name's lock: requests to the
        others go on meanwhile.
        """
        path = self._path(name)
        with self._lock:
            collection = self._collections.get(name)
        if collection is not None:
            return collection
        with self._name_lock(name):
            with self._lock:
                collection = self._collections.get(name)
            if collection is not None:
                return collection
            if not _is_collection(path):
                raise NotFound(f"no collection named {name!r}: create it first")
            try:
                collection = self._open(path)
            except IndexError_ as exc:
                with self._lock:
                    self._unavailable[name] = str(exc)
                raise
            with self._lock:
                self._collections[name] = collection
                self._unavailable.pop(name, None)
            return collection

    def unavailable(self) -> dict[str, str]:
        """Collections whose last attempt to open failed, with the reason (for readiness)."""
        with self._lock:
            return dict(self._unavailable)

    def open_all(self) -> dict[str, str]:
        """Open every collection; returns the error of each one that failed to open."""
        errors = {}
        for name in self.names():
            try:
                self.get(name)
            except IndexError_ as exc:
                errors[name] = str(exc)
        return errors

    def create(
        self,
        name: str,
        model: str | None = None,
        settings: Settings | None = None,
        shards: int | None = None,
    ) -> Stored:
        """Create collection `name` (split into `shards` when given); Conflict if it exists.
        Nothing is left behind on error."""
        path = self._path(name)
        encoder = self.encoder(model if model is not None else self.default_model)
        with self._name_lock(name):
            if path.exists():
                raise Conflict(f"collection {name!r} already exists: pick another name")
            staging = self.root / f".creating-{name}-{uuid.uuid4().hex[:8]}"
            described = (encoder.model_id, encoder.dimension)
            try:
                if shards is None:
                    Collection.initialise(staging, *described, settings, encoder.backend)
                else:
                    ShardedCollection.initialise(
                        staging, *described, shards, settings, encoder.backend
                    )
                staging.rename(path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            collection = self._open(path)
            with self._lock:
                self._collections[name] = collection
            return collection

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._name_lock(name):
            if not _is_collection(path):
                raise NotFound(f"no collection named {name!r}")
            with self._lock:
                collection = self._collections.pop(name, None)
                self._unavailable.pop(name, None)
            if collection is not None:
                collection.close()
            doomed = self.root / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
            path.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def encoder(self, model: str | None = None, backend: str | None = None) -> Encoder:
        """The shared encoder of `model` (None: the catalog's default model) on `backend`
        (None: the catalog's; an ingest job may run another whose vectors compare)."""
        model = self.default_model if model is None else model
        name = DEFAULT_MODEL_ID if model in (None, DEFAULT_MODEL_ID) else model
        key = (name, check_backend(backend or self.backend))
        with self._lock:
            if key not in self._encoders:
                self._encoders[key] = self.placement.make_encoder(
                    None if name == DEFAULT_MODEL_ID else name,
                    batch_size=self.batch_size,
                    backend=key[1],
                    cache_dir=self.cache_dir,
                    threads=self.threads,
                )
            return self._encoders[key]

    def close(self) -> None:
        """Checkpoint and close every collection, then unlock the directory."""
        with self._lock:
            collections = list(self._collections.values())
            self._collections.clear()
        try:
            for collection in collections:
                collection.checkpoint()
                collection.close()
        finally:
            self._dir_lock.release()

    def _open(self, path: Path) -> Stored:
        if (path / LAYOUT_FILE).exists():
            encoder = self.encoder(Manifest.load(shard_path(path, 0)).model_id)
            return self.placement.open_shards(path, encoder, self.refit_growth)
        manifest = Manifest.load(path)
        return Collection(path, self.encoder(manifest.model_id), self.refit_growth)

    def redact(self, message: str) -> str:
        """`message` with the data directory's absolute path cut out (paths become relative to
        it): what clients read must not map the server's file system."""
        root = str(self.root)
        return message.replace(root + os.sep, "").replace(root, "the data directory")

    def _name_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._name_locks.setdefault(name, threading.Lock())

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidInput(
                f"collection name {name!r} is not allowed: use 1 to 64 letters, digits, "
                "'_' or '-', starting with a letter or digit"
            )
        return self.root / name


def _is_collection(path: Path) -> bool:
    """A collection's directory has its manifest; a sharded one its layout file."""
    return (path / MANIFEST).exists() or (path / LAYOUT_FILE).exists()
