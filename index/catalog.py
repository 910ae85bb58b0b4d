"""The collections of one data directory, by name, each opened once with its model's encoder."""

import re
import shutil
import threading
import uuid
from pathlib import Path

from index.collection import Collection
from index.encoder import DEFAULT_BACKEND, DEFAULT_MODEL_ID, Encoder, check_backend
from index.errors import Conflict, IndexError_, InvalidInput, NotFound
from index.snapshots import MANIFEST, Manifest, Settings

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Collection names are directory names: letters, digits, '_' and '-', no dots or separators,
so no name can reach outside the data directory."""


class Catalog:
    """Creates, opens, lists and deletes collections under `root`.

    Args:
        root: the data directory (created if missing).
        default_model: model of collections created without one (None: the bundled default).
        batch_size, backend, cache_dir, threads: of every encoder (see index.encoder.Encoder).
    """

    def __init__(
        self,
        root: str | Path,
        default_model: str | None = None,
        batch_size: int = 64,
        backend: str = DEFAULT_BACKEND,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.default_model = default_model
        self.batch_size = batch_size
        self.backend = check_backend(backend)
        self.cache_dir = cache_dir
        self.threads = threads
        self._collections: dict[str, Collection] = {}
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.RLock()
        for leftover in self.root.glob(".*"):  # creations and deletions a crash interrupted
            shutil.rmtree(leftover, ignore_errors=True)

    def names(self) -> list[str]:
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if NAME_PATTERN.fullmatch(entry.name) and (entry / MANIFEST).exists()
        )

    def get(self, name: str) -> Collection:
        """The open collection `name`; NotFound if there is none, StorageError if it is broken."""
        path = self._path(name)
        with self._lock:
            if name not in self._collections:
                if not (path / MANIFEST).exists():
                    raise NotFound(f"no collection named {name!r}: create it first")
                self._collections[name] = self._open(path)
            return self._collections[name]

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
        self, name: str, model: str | None = None, settings: Settings | None = None
    ) -> Collection:
        """Create collection `name`; Conflict if it exists. Nothing is left behind on error."""
        path = self._path(name)
        encoder = self.encoder(model if model is not None else self.default_model)
        with self._lock:
            if path.exists():
                raise Conflict(f"collection {name!r} already exists: pick another name")
            staging = self.root / f".creating-{name}-{uuid.uuid4().hex[:8]}"
            try:
                Collection.initialise(
                    staging, encoder.model_id, encoder.dimension, settings, encoder.backend
                )
                staging.rename(path)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            collection = Collection(path, encoder)
            self._collections[name] = collection
            return collection

    def delete(self, name: str) -> None:
        path = self._path(name)
        with self._lock:
            if not (path / MANIFEST).exists():
                raise NotFound(f"no collection named {name!r}")
            collection = self._collections.pop(name, None)
            if collection is not None:
                collection.close()
            doomed = self.root / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
            path.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def encoder(self, model: str | None = None) -> Encoder:
        """The shared encoder of `model` (None: the catalog's default model)."""
        model = self.default_model if model is None else model
        key = DEFAULT_MODEL_ID if model in (None, DEFAULT_MODEL_ID) else model
        with self._lock:
            if key not in self._encoders:
                self._encoders[key] = Encoder(
                    None if key == DEFAULT_MODEL_ID else key,
                    batch_size=self.batch_size,
                    backend=self.backend,
                    cache_dir=self.cache_dir,
                    threads=self.threads,
                )
            return self._encoders[key]

    def close(self) -> None:
        with self._lock:
            for collection in self._collections.values():
                collection.checkpoint()
                collection.close()
            self._collections.clear()

    def _open(self, path: Path) -> Collection:
        manifest = Manifest.load(path)
        return Collection(path, self.encoder(manifest.model_id))

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidInput(
                f"collection name {name!r} is not allowed: use 1 to 64 letters, digits, "
                "'_' or '-', starting with a letter or digit"
            )
        return self.root / name
