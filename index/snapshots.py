"""A collection's manifest and its snapshots (kernel + FAISS index), switched by one rename.

A snapshot is written into a fresh directory, then the manifest is replaced atomically to point
at it, then older snapshots are removed. A crash at any moment leaves the old manifest with its
complete snapshot, or the new manifest with its complete snapshot.
"""

import json
import os
import re
import shutil
import uuid
from collections.abc import Set
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from index.errors import InvalidInput, StorageError
from index.kernel import WhiteningKernel
from index.rescoring import check_space
from index.shortlist import Shortlist
from index.storage import atomic_write, fsync_dir
from index.validation import check_hyperparameter
from index.vector_index import VectorIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SNAPSHOTS = "snapshots"
KERNEL_FILE = "kernel.npz"
INDEX_FILE = "index.npz"
SHORTLIST_FILE = "shortlist.npz"
"""The shortlist's quantizer and code file name, in a snapshot whose settings keep one."""
LEGACY_INDEX_FILE = "index.faiss"
"""The index file of snapshots written before ids left FAISS (`VectorIndex.load` converts it)."""
SNAPSHOT_PATTERN = re.compile(r"(?:\.staging-)?\d{8}T\d{6}-[0-9a-f]{8}")
"""Names `write_snapshot` gives (and its staging names): the only entries it may remove."""


@dataclass(frozen=True)
class Settings:
    """What a collection's next fit uses (kernel hyperparameters, FAISS index spec) and how its
    searches re-score candidates by default (`index.rescoring`: "off", "raw" or "kernel" at
    `rescore_k` dimensions, None: every meaningful one; `candidates` per query, None: a few
    per requested hit). The one options object that create, fit, tune and query pass along.

    Its defaults are the project's, for the library and the server alike (the server's
    WHITENED_SEARCH_* settings start from them): a rotation (β=γ=0) to k=128 dimensions in an
    SQ8 index, candidates re-scored by exact cosine in the kernel's space, which for a rotation
    at every dimension is raw cosine. 128 bytes a vector kept SciFact's nDCG@10 to the second
    decimal (bench/results/served_bytes_scifact.md). A model of fewer than 128 dimensions keeps
    all of them (`for_dimension`). `shortlist` (None: none) keeps SQ8 codes of the kernel
    vectors on disk, and re-scores only the best `shortlist` of the candidates by their codes
    (`index.shortlist`): for indexes of a few bytes that need thousands of candidates.
    """

    beta: float = 0.0
    gamma: float = 0.0
    k: int | None = 128
    index_spec: str = "SQ8"
    rescore: str = "kernel"
    rescore_k: int | None = None
    candidates: int | None = None
    shortlist: int | None = None

    def __post_init__(self) -> None:
        check_hyperparameter(self.beta, "beta")
        check_hyperparameter(self.gamma, "gamma")
        # true and false in manifests written before re-scoring spaces
        object.__setattr__(self, "rescore", check_space(self.rescore))
        for name in ("k", "rescore_k", "candidates", "shortlist"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidInput(f"{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.index_spec, str) or not self.index_spec.strip():
            raise InvalidInput(f"index_spec must be a non-empty string, got {self.index_spec!r}")

    def for_dimension(self, dimension: int) -> "Settings":
        """These settings for a model of `dimension`: a k above it becomes the dimension (for
        defaults; a k asked for explicitly is checked by `Collection.initialise` instead)."""
        return self if self.k is None or self.k <= dimension else replace(self, k=dimension)

    def updated(self, **changes: Any) -> "Settings":
        """These settings with every one of `changes` applied, so a refit can also go back to a
        default: None sets k, rescore_k, candidates or shortlist to theirs (and is refused for
        the others);
        settings left out are kept; an unknown name is an InvalidInput."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise InvalidInput(
                f"unknown setting(s) {', '.join(unknown)}: settings are "
                f"{', '.join(f.name for f in fields(self))}"
            )
        return replace(self, **changes)

    def search(self, **overrides: Any) -> "Settings":
        """These settings with a query's own re-scoring choices (SEARCH_FIELDS) applied; a None
        choice is the collection's."""
        unknown = sorted(set(overrides) - set(SEARCH_FIELDS))
        if unknown:
            raise InvalidInput(f"a query cannot set {', '.join(unknown)}: only {SEARCH_FIELDS}")
        return self.updated(**{key: value for key, value in overrides.items() if value is not None})


SEARCH_FIELDS = ("rescore", "rescore_k", "candidates", "shortlist")
"""Settings a query may override for itself; the others take a fit."""


@dataclass(frozen=True)
class Manifest:
    model_id: str
    dimension: int
    settings: Settings
    backend: str = "torch"
    """The encoder backend that created the collection (manifests before backends: torch)."""
    snapshot: str | None = None
    fitted_at: str | None = None
    created_at: str = field(default_factory=lambda: now())
    format_version: int = FORMAT_VERSION

    def save(self, directory: Path) -> None:
        with atomic_write(directory / MANIFEST) as handle:
            handle.write(json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, directory: Path) -> "Manifest":
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise StorageError(f"{directory} is not a collection: it has no {MANIFEST}") from exc
        except (OSError, ValueError) as exc:
            raise StorageError(f"manifest {path} is unreadable: {exc}") from exc
        version = data.get("format_version") if isinstance(data, dict) else None
        if version != FORMAT_VERSION:
            raise StorageError(
                f"collection {directory.name} has format version {version}; this version of "
                f"whitened-search reads version {FORMAT_VERSION}"
            )
        try:
            data["settings"] = Settings(**data["settings"])
            return cls(**data)
        except (KeyError, TypeError, InvalidInput) as exc:
            raise StorageError(f"manifest {path} is incomplete or damaged: {exc}") from exc


def now() -> str:
    """UTC, to the millisecond: `fitted_at` tells two refits apart (one takes longer than 1 ms)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_snapshot(
    directory: Path, kernel: WhiteningKernel, index: VectorIndex, shortlist: Shortlist | None
) -> str:
    """Write kernel, index (and the shortlist's quantizer) into a new snapshot directory; return
    its name."""
    root = directory / SNAPSHOTS
    root.mkdir(exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    staging = root / f".staging-{name}"
    staging.mkdir()
    try:
        kernel.save(staging / KERNEL_FILE)
        index.save(staging / INDEX_FILE)
        if shortlist is not None:
            shortlist.save(staging / SHORTLIST_FILE)
        os.rename(staging, root / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(root)
    return name


def read_snapshot(
    directory: Path, manifest: Manifest
) -> tuple[WhiteningKernel, VectorIndex, Shortlist | None]:
    assert manifest.snapshot is not None
    path = directory / SNAPSHOTS / manifest.snapshot
    try:
        kernel = WhiteningKernel.load(path / KERNEL_FILE)
        index_file = path / INDEX_FILE
        if not index_file.exists() and (path / LEGACY_INDEX_FILE).exists():
            index_file = path / LEGACY_INDEX_FILE
        index = VectorIndex.load(index_file, manifest.settings.index_spec, kernel.k_)
        saved = path / SHORTLIST_FILE
        shortlist = Shortlist.load(saved, directory, kernel) if saved.exists() else None
    except FileNotFoundError as exc:
        raise StorageError(f"snapshot {path} is missing a file: {exc.filename}") from exc
    except InvalidInput as exc:  # a spec this version refuses: the collection is unavailable
        raise StorageError(
            f"collection {directory.name} cannot be served: {exc}. Delete it, or restore a "
            "backup written with a supported index spec"
        ) from exc
    if kernel.n_features_in_ != manifest.dimension or index.dim != kernel.k_:
        raise StorageError(f"snapshot {path} does not match the manifest's dimensions")
    return kernel, index, shortlist


def remove_stale_snapshots(directory: Path, keep: Set[str | None]) -> None:
    """Delete every snapshot but those in `keep`, and leftovers of writes that crashed."""
    root = directory / SNAPSHOTS
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.name not in keep and SNAPSHOT_PATTERN.fullmatch(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
