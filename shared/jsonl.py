"""JSONL reading with errors that name the file and line (plain or gzip-compressed files)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class JSONLError(ValueError):
    """A malformed JSONL line; the message starts with '<path>:<line>:'."""


def iter_jsonl(
    path: str | Path, *, skip_malformed: bool = False, error: type[ValueError] = JSONLError
) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line.

    A malformed line raises `error` naming file and line, or, with skip_malformed, is yielded as
    (line number, error instance) so the caller can count it and read on.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                exc = error(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})")
                if not skip_malformed:
                    raise exc from e
                value = exc
            yield n, value


def read_jsonl_objects(path: str | Path, error: type[ValueError] = JSONLError) -> list[dict[str, Any]]:
    """Every line of a JSONL file as a JSON object; anything else is an `error` naming file and line."""
    rows = []
    for n, value in iter_jsonl(path, error=error):
        if not isinstance(value, dict):
            raise error(f"{path}:{n}: expected a JSON object, got {type(value).__name__}")
        rows.append(value)
    return rows
