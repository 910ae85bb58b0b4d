"""The document store: id, text, metadata and raw vector of every document, in one SQLite file.

It is the collection's source of truth; its raw vectors are read from a mapped copy beside it
(`index.row_file`), written before each commit. Each write is one transaction, so a crash
keeps it whole; the FAISS index is derived from it and reconciled with it on open. Internal row
numbers are FAISS ids: AUTOINCREMENT never reuses them, so a stale index can always be told
apart."""

import errno
import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import Conflict, InvalidInput, NotFound, StorageError, StorageFull
from index.metadata import dump_metadata, filter_condition
from index.row_file import RowFile
from index.sqlite_connections import ThreadConnections
from index.validation import check_texts

MAX_ID_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Characters an id may not hold: a line break cannot travel in a URL path segment (the id
could be stored but never fetched or deleted by URL) and would forge lines in logs."""

MAX_ROW_OFFSET = 2**62
"""Largest page offset: SQLite integers are 64-bit."""

_CHUNK = 500
"""Ids or rows per IN (...) list: SQLite caps the parameters of one statement."""

_FILL_CHUNK = 10_000
"""Vectors per SQLite read when the raw vector file is filled on open."""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class Document:
    """A document as callers give it: `id` None gets a generated one."""

    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocument:
    id: str
    text: str
    metadata: dict[str, Any]
    row: int


class DocumentStore:
    """SQLite in WAL mode: readers (one connection per thread) never wait for the writer. Raw
    vectors are read from a mapped file beside it (`index.row_file`), filled here on open."""

    def __init__(self, path: str | Path, dimension: int) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self._sqlite = ThreadConnections(self.path)
        with self._sqlite.get() as connection:
            connection.executescript(_SCHEMA)
        self._raw = RowFile(self.path.with_suffix(".vectors"), dimension)
        self._fill_raw()

    def close(self) -> None:
        """Close every connection; the store cannot be used (or reopened by path) afterwards."""
        self._sqlite.close()
        self._raw.close()

    # ---- writes (callers serialise them) ----------------------------------------------------

    def write(
        self, documents: Sequence[Document], vectors: np.ndarray, replace: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Insert documents with their raw vectors in one transaction.

        Returns the new rows and the rows they replaced (an id that exists is a Conflict unless
        `replace`, in which case its old row is deleted in the same transaction).
        """
        ids = [document.id for document in documents]
        records = [
            (doc_id, document.text, dump_metadata(document.metadata), vector.tobytes())
            for doc_id, document, vector in zip(ids, documents, vectors.astype("<f4"), strict=True)
        ]
        connection = self._sqlite.get()
        try:
            with connection:
                existing = dict(self._select_in("id, row", "id", ids))
                if existing and not replace:
                    shown = ", ".join(sorted(existing)[:5])
                    raise Conflict(
                        f"{len(existing)} document id(s) already exist ({shown}): "
                        "upsert to replace them, or give new ids"
                    )
                old_rows = np.fromiter(existing.values(), np.int64, len(existing))
                connection.executemany(
                    "DELETE FROM documents WHERE row = ?", [(int(r),) for r in old_rows]
                )
                new_rows = np.asarray(
                    [
                        connection.execute(
                            "INSERT INTO documents (id, text, metadata, vector) "
                            "VALUES (?, ?, ?, ?)",
                            record,
                        ).lastrowid
                        for record in records
                    ],
                    np.int64,
                )
                self._raw.write(new_rows, vectors)  # synced before the commit
        except (sqlite3.Error, OSError) as exc:
            raise _write_error(f"could not store documents in {self.path}", exc) from exc
        self._raw.release(old_rows)
        return new_rows, old_rows

    def delete(self, ids: Sequence[str]) -> np.ndarray:
        """Delete all `ids` in one transaction, or none if any is unknown; returns their rows."""
        connection = self._sqlite.get()
        try:
            with connection:
                rows = dict(self._select_in("id, row", "id", ids))
                missing = [doc_id for doc_id in ids if doc_id not in rows]
                if missing:
                    raise NotFound(f"unknown document id(s): {', '.join(missing[:5])}")
                connection.executemany(
                    "DELETE FROM documents WHERE row = ?", [(row,) for row in rows.values()]
                )
        except sqlite3.Error as exc:
            raise _write_error(f"could not delete documents in {self.path}", exc) from exc
        deleted = np.fromiter(rows.values(), np.int64, len(rows))
        self._raw.release(deleted)
        return deleted

    # ---- reads ------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self._fetch("SELECT COUNT(*) FROM documents")[0][0])

    def rows(self) -> np.ndarray:
        found = self._fetch("SELECT row FROM documents ORDER BY row")
        return np.fromiter((row for (row,) in found), np.int64, len(found))

    def vectors(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and raw vectors (n, d) of `rows` (all documents when None), in row order.

        Given rows must have been committed; one deleted since keeps its last vector (a search
        drops it when it reads the documents).
        """
        wanted = self.rows() if rows is None else np.unique(rows.astype(np.int64, copy=False))
        return wanted, self._raw.read(wanted).astype(np.float32, copy=False)

    def get(self, ids: Sequence[str]) -> list[StoredDocument]:
        """Documents by id, in the order asked; NotFound names the unknown ones."""
        found = {
            record[0]: _stored(record)
            for record in self._select_in("id, text, metadata, row", "id", list(ids))
        }
        missing = [doc_id for doc_id in ids if doc_id not in found]
        if missing:
            raise NotFound(f"unknown document id(s): {', '.join(missing[:5])}")
        return [found[doc_id] for doc_id in ids]

    def ids_by_row(self) -> dict[int, str]:
        """Every document's id by row, without reading texts (tuning maps rows to ids)."""
        return {int(row): doc_id for row, doc_id in self._fetch("SELECT row, id FROM documents")}

    def by_rows(self, rows: Iterable[int]) -> dict[int, StoredDocument]:
        """Documents by row; rows deleted meanwhile are simply absent."""
        found = self._select_in("id, text, metadata, row", "row", [int(row) for row in rows])
        return {record[3]: _stored(record) for record in found}

    def matching(self, where: Mapping[str, Any]) -> np.ndarray:
        """Rows whose metadata equals every key/value of `where`."""
        condition, params = filter_condition(where)
        found = self._fetch("SELECT row FROM documents WHERE " + condition, params)
        return np.fromiter((row for (row,) in found), np.int64, len(found))

    def existing(self, ids: Sequence[str]) -> list[str]:
        """The ids among `ids` that are stored, in the order given."""
        found = {doc_id for (doc_id,) in self._select_in("id", "id", list(ids))}
        return [doc_id for doc_id in ids if doc_id in found]

    def page(self, offset: int, limit: int) -> list[StoredDocument]:
        for name, value in (("offset", offset), ("limit", limit)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{name} must be an integer, got {value!r}")
            if not 0 <= value <= MAX_ROW_OFFSET:
                raise InvalidInput(f"{name} must be between 0 and {MAX_ROW_OFFSET}, got {value}")
        found = self._fetch(
            "SELECT id, text, metadata, row FROM documents ORDER BY row LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_stored(record) for record in found]

    # ---- internals --------------------------------------------------------------------------

    def _fill_raw(self) -> None:
        """Copy the vectors of rows past the raw vector file's end from SQLite into it."""
        while True:
            found = self._fetch(
                "SELECT row, vector FROM documents WHERE row > ? ORDER BY row LIMIT ?",
                (self._raw.rows, _FILL_CHUNK),
            )
            if not found:
                return
            rows = np.fromiter((row for row, _ in found), np.int64, len(found))
            blob = b"".join(vector for _, vector in found)
            try:
                self._raw.write(rows, np.frombuffer(blob, "<f4").reshape(len(found), -1))
            except OSError as exc:  # an open, not a request: nothing to send again
                raise StorageError(
                    f"could not fill {self._raw.path} from {self.path}: {exc}; free disk space, "
                    "then open the collection again (restart the service)"
                ) from exc

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All records of a read; SQLite's failures (a damaged file, I/O) are StorageErrors."""
        try:
            return self._sqlite.get().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"could not read documents from {self.path}: {exc}") from exc

    def _select_in(self, columns: str, key: str, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """`columns` of the records whose `key` (id or row) is among `values`, in chunks."""
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(values), _CHUNK):
            chunk = list(values[start : start + _CHUNK])
            placeholders = ",".join("?" * len(chunk))
            found += self._fetch(
                f"SELECT {columns} FROM documents WHERE {key} IN ({placeholders})", chunk
            )
        return found


def prepare(documents: Sequence[Document]) -> list[Document]:
    """Check texts, ids and metadata of a batch; give a fresh id to documents without one."""
    if not documents:
        raise InvalidInput("no documents given: pass at least one")
    check_texts([document.text for document in documents], allow_empty=True)
    prepared = []
    for position, document in enumerate(documents):
        doc_id = uuid.uuid4().hex if document.id is None else document.id
        if not isinstance(doc_id, str) or not doc_id or len(doc_id) > MAX_ID_LENGTH:
            raise InvalidInput(
                f"document at position {position}: id must be a string of 1 to "
                f"{MAX_ID_LENGTH} characters, got {doc_id!r}"
            )
        if _CONTROL.search(doc_id):
            raise InvalidInput(
                f"document at position {position}: id {doc_id!r} holds a control character "
                "(line break, tab, NUL...): ids must be printable, so that every id can be "
                "fetched and deleted by URL"
            )
        if not isinstance(document.metadata, Mapping):
            raise InvalidInput(f"document at position {position}: metadata must be an object")
        dump_metadata(document.metadata, position)
        prepared.append(Document(document.text, doc_id, dict(document.metadata)))
    ids = [document.id for document in prepared]
    if len(set(ids)) != len(ids):
        repeated = sorted({doc_id for doc_id in ids if ids.count(doc_id) > 1})[:5]
        raise InvalidInput(f"document ids repeat within the batch: {', '.join(repeated)}")
    return prepared


def _write_error(what: str, exc: sqlite3.Error | OSError) -> StorageError:
    """StorageFull when SQLite or the raw vector file could not grow (a full disk gives
    SQLITE_FULL or ENOSPC, a file-size limit SQLITE_IOERR_WRITE or EFBIG); the transaction was
    rolled back either way."""
    code = getattr(exc, "sqlite_errorcode", None)
    full = code is not None and (code & 0xFF == sqlite3.SQLITE_FULL or code == _SQLITE_IOERR_WRITE)
    if full or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return StorageFull(
            f"{what}: {exc} (the disk is full or over a size limit); nothing of this request "
            "was stored: free disk space, then send it again"
        )
    return StorageError(f"{what}: {exc}")


_SQLITE_IOERR_WRITE = getattr(sqlite3, "SQLITE_IOERR_WRITE", 778)


def _stored(record: tuple[Any, ...]) -> StoredDocument:
    doc_id, text, metadata, row = record
    return StoredDocument(id=doc_id, text=text, metadata=json.loads(metadata), row=int(row))
