"""Documents from files for `whitened-search ingest`: .jsonl, .txt, .csv/.tsv, .parquet.

- jsonl: one object per line, {"text": ..., "id"?: ..., "metadata"?: {...}}; blank lines skipped.
- txt: every non-blank line is a text.
- csv/tsv: a header with a `text` column, an optional `id` column; other columns become metadata.
- parquet: the same columns as csv (strings, numbers or booleans); needs pyarrow (the
  `distributed` extra). A document's place is its row, counted from 1.

A document without an id gets `FILE:LINE` (the file's name and the line it starts on), so that
running the same ingest again with --upsert after an interruption replaces what the first run
stored instead of adding it twice. A text may be empty in jsonl and csv (it is encoded as such).

Other field names can be given: `id_field="_id", text_fields=("title", "text")` reads BEIR
corpora such as SciFact's (the text fields are joined with a space, empty ones skipped).
"""

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("jsonl", "txt", "csv", "tsv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}


class SourceError(ValueError):
    """A file that cannot be read as documents; the message names the file and line."""


def detect_format(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; "
            f"use .jsonl, .txt, .csv, .tsv or .parquet, or pass --format {{{','.join(FORMATS)}}}"
        )
    return fmt


def read_documents(
    path: str | Path,
    fmt: str | None = None,
    id_field: str = "id",
    text_fields: Sequence[str] = ("text",),
) -> list[dict[str, Any]]:
    """Documents as {"text", "id"?, "metadata"?} dicts, in file order."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    fields = _Fields(id_field, tuple(text_fields))
    try:
        if fmt == "parquet":
            return _nonempty(path, _parquet(path, fields))
        with path.open(encoding="utf-8", newline="") as handle:
            if fmt == "jsonl":
                documents = _jsonl(path, handle, fields)
            elif fmt == "txt":
                documents = [
                    {"id": f"{path.name}:{number}", "text": line.strip()}
                    for number, line in enumerate(handle, start=1)
                    if line.strip()
                ]
            elif fmt in ("csv", "tsv"):
                documents = _table(path, handle, "\t" if fmt == "tsv" else ",", fields)
            else:
                raise SourceError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return _nonempty(path, documents)


def _nonempty(path: Path, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not documents:
        raise SourceError(f"{path}: no documents found")
    return documents


@dataclass(frozen=True)
class _Fields:
    id: str
    text: tuple[str, ...]

    def join(self, values: Sequence[Any]) -> str | None:
        """The text fields joined by a space ("" if all are blank), or None if one is not a
        string."""
        if not all(value is None or isinstance(value, str) for value in values):
            return None
        return " ".join(v.strip() for v in values if v and v.strip())

    @property
    def text_name(self) -> str:
        return "+".join(self.text)


def _set_id(document: dict[str, Any], value: Any, field: str, where: str) -> None:
    """A given id (a string or an integer, as text) replaces the FILE:LINE one."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SourceError(f"{where}: {field} must be a string or an integer")
    document["id"] = str(value)


def _jsonl(path: Path, lines: Any, fields: _Fields) -> list[dict[str, Any]]:
    known = {fields.id, *fields.text, "metadata"}
    documents = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise SourceError(f"{where}: expected a JSON object, got {type(record).__name__}")
        unknown = set(record) - known
        if unknown:
            raise SourceError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a line holds "
                f"{fields.text_name}, and optionally {fields.id} and metadata (put other fields "
                "inside metadata, or name them with --id-field / --text-field)"
            )
        text = fields.join([record.get(name) for name in fields.text])
        if text is None or not any(name in record for name in fields.text):
            raise SourceError(f"{where}: {fields.text_name} must be a string")
        document: dict[str, Any] = {"id": f"{path.name}:{number}", "text": text}
        _set_id(document, record.get(fields.id), fields.id, where)
        if record.get("metadata") is not None:
            if not isinstance(record["metadata"], dict):
                raise SourceError(f"{where}: metadata must be an object")
            document["metadata"] = record["metadata"]
        documents.append(document)
    return documents


def _table(path: Path, handle: Any, delimiter: str, fields: _Fields) -> list[dict[str, Any]]:
    reader = csv.DictReader(handle, delimiter=delimiter)
    missing = [name for name in fields.text if name not in (reader.fieldnames or [])]
    if missing:
        raise SourceError(
            f"{path}: the header needs a {', '.join(map(repr, missing))} column, "
            f"got {reader.fieldnames}"
        )
    documents = []
    start = reader.line_num + 1
    for row in reader:
        where = f"{path}:{start}"
        if None in row:
            raise SourceError(f"{where}: more fields than the header has")
        text = fields.join([row.pop(name) for name in fields.text])
        if text is None:
            raise SourceError(f"{where}: the {fields.text_name} column is not text")
        document: dict[str, Any] = {"id": f"{path.name}:{start}", "text": text}
        doc_id = (row.pop(fields.id, None) or "").strip()
        if doc_id:
            document["id"] = doc_id
        metadata = {key: value for key, value in row.items() if value not in (None, "")}
        if metadata:
            document["metadata"] = metadata
        documents.append(document)
        start = reader.line_num + 1
    return documents


def _parquet(path: Path, fields: _Fields) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SourceError(
            f"{path}: reading Parquet needs pyarrow: pip install -e '.[distributed]'"
        ) from exc
    path.stat()  # a missing file: the OSError (with its strerror) the other formats give
    try:
        table = pq.read_table(path)
    except ValueError as exc:  # pyarrow's ArrowInvalid; OSError is read_documents'
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    missing = [name for name in fields.text if name not in table.column_names]
    if missing:
        raise SourceError(
            f"{path}: the file needs a {', '.join(map(repr, missing))} column, "
            f"got {table.column_names}"
        )
    documents = []
    for number, row in enumerate(table.to_pylist(), start=1):
        where = f"{path} row {number}"
        values = [row.pop(name) for name in fields.text]
        if all(value is None for value in values):
            raise SourceError(f"{where}: the {fields.text_name} column is null")
        text = fields.join(values)
        if text is None:
            raise SourceError(f"{where}: the {fields.text_name} column is not text")
        document: dict[str, Any] = {"id": f"{path.name}:{number}", "text": text}
        _set_id(document, row.pop(fields.id, None), fields.id, where)
        metadata = {key: value for key, value in row.items() if value is not None}
        for key, value in metadata.items():
            if not isinstance(value, str | int | float | bool):
                raise SourceError(
                    f"{where}: column {key!r} holds {type(value).__name__}; metadata columns "
                    "must be strings, numbers or booleans (drop or convert it)"
                )
        if metadata:
            document["metadata"] = metadata
        documents.append(document)
    return documents
