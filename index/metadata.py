"""A document's metadata in SQLite: stored as bounded JSON, and filtered on by key = value.

One owner for the JSON form, since filters read it back with `json_extract`: what is stored is
what a filter can match, and what every read can serialise again.
"""

import json
import math
from collections.abc import Mapping
from typing import Any

from index.errors import InvalidInput

MAX_METADATA_DEPTH = 32
"""Nesting of a document's metadata: deeper JSON is stored by SQLite but cannot be serialised
back by the web stack (its recursion limit), so every read of the document would fail."""

MAX_METADATA_BYTES = 65536
"""A document's metadata as JSON: metadata is for filters and display, not for payloads."""

MAX_FILTER_KEYS = 64
"""Keys of one metadata filter: SQLite refuses expressions of about 1,000 terms."""


def dump_metadata(metadata: Mapping[str, Any], position: int | None = None) -> str:
    """Metadata as the JSON stored, within the bounds that let every read serialise it again."""
    where = "" if position is None else f"document at position {position}: "
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise InvalidInput(
            f"{where}metadata is nested {depth} levels deep; at most {MAX_METADATA_DEPTH}: "
            "flatten it"
        )
    try:
        dumped = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=False)
        size = len(dumped.encode("utf-8"))  # a lone surrogate ("\ud800") cannot be stored
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise InvalidInput(
            f"{where}metadata must be JSON (strings of valid Unicode, finite numbers, lists, "
            f"objects): {exc}"
        ) from exc
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"{where}metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}: keep "
            "large payloads elsewhere and store a reference"
        )
    return dumped


def filter_condition(where: Mapping[str, Any]) -> tuple[str, list[str | int | float]]:
    """The SQL condition (and its parameters) on the `metadata` column that holds when the
    metadata equals every key/value of `where`; always true for an empty filter."""
    if len(where) > MAX_FILTER_KEYS:
        raise InvalidInput(
            f"the filter has {len(where)} keys; at most {MAX_FILTER_KEYS}: filter on fewer "
            "keys, and narrow the hits on the client"
        )
    clauses, params = [], []
    for key, value in where.items():
        clauses.append("json_extract(metadata, ?) = ?")
        params += [_json_path(key), _filter_value(key, value)]
    return " AND ".join(clauses or ["1"]), params


def _depth(value: Any) -> int:
    """Nesting depth of lists and objects (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        item, depth = level.pop()
        if isinstance(item, Mapping):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        deepest = max(deepest, depth + 1)
        level += [(child, depth + 1) for child in children]
    return deepest


def _json_path(key: str) -> str:
    if not isinstance(key, str) or not key or any(c in key for c in '"\\\0'):
        raise InvalidInput(
            f"filter key {key!r} must be a non-empty string without quotes, backslashes or NUL"
        )
    return f'$."{key}"'


def _filter_value(key: str, value: Any) -> str | int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise InvalidInput(
        f"filter value of {key!r} must be a string, a finite number or a boolean, got {value!r}"
    )
