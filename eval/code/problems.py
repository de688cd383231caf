"""Read problems and samples files (JSONL, JSONL.gz, JSON array, or a hub dataset name) with clear errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from shared.jsonl import read_jsonl_objects


class InputError(ValueError):
    """A problems or samples file that cannot be used; the message names the file and line."""


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a .jsonl/.jsonl.gz (one object a line) or .json (an array) file."""
    path = Path(path)
    if path.name.endswith((".json", ".json.gz")):
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, list):
            raise InputError(f"{path}: expected a JSON array of objects")
        return data
    return read_jsonl_objects(path, error=InputError)


def load_problem_records(source: str, split: str = "test") -> list[dict[str, Any]]:
    """A local file, or a hub dataset name (`org/name` or `org/name:config`) through `datasets`."""
    if Path(source).exists():
        return read_records(source)
    if "/" not in source or source.startswith((".", "/")):
        raise InputError(f"problems file {source} does not exist (and is not a hub dataset name)")
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise InputError("loading problems from the hub needs the `datasets` package") from e
    name, _, config = source.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # noqa: BLE001 - offline, missing, private: say which and why
        raise InputError(f"could not load hub dataset {source!r} (split {split}): {e}") from e
    return [dict(row) for row in ds]


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    samples = read_records(path)
    for i, s in enumerate(samples, 1):
        if "task_id" not in s or not isinstance(s.get("completion", s.get("solution")), str):
            raise InputError(f"{path}: sample {i} needs a task_id and a string completion")
        s.setdefault("completion", s.get("solution", ""))
        s["task_id"] = str(s["task_id"])
    return samples
