"""Sources: every file under a folder, local JSONL / parquet files, or a hub dataset streamed by name.

Each reader yields `Item`s in a deterministic order: a document (text) or a rejected input (reason and where),
so that unreadable files, invalid UTF-8, binary or empty files and malformed JSONL lines are counted in the
report and listed, never dropped silently and never fatal.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from data_recipes.config import SourceConfig

STDLIB = "<stdlib>"


@dataclass
class Item:
    source: str
    doc_id: str  # where it came from: source:relative/path, source:file:line, source:row
    path: str  # file name used for language detection ("" when unknown)
    text: str | None = None
    reason: str | None = None  # set for rejected inputs
    n_bytes: int = 0
    declared_language: str | None = None
    duplicate_of: str | None = None  # doc_id of an earlier item with the same normalised text (exact dedup)


def resolve_path(path: str) -> str:
    return sysconfig.get_paths()["stdlib"] if path == STDLIB else os.path.expanduser(path)


def decode(data: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason) for bytes read from a file."""
    if not data.strip():
        return None, "empty"
    if b"\x00" in data:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "invalid_utf8"


def tree_files(cfg: SourceConfig, errors: list[OSError] | None = None) -> Iterator[tuple[str, str]]:
    """(absolute path, relative path) of every file under the folder, sorted, minus `exclude` globs.

    Folders that cannot be listed are appended to `errors` (os.walk would skip them silently)."""
    root = resolve_path(cfg.path)
    for folder, dirs, files in os.walk(root, onerror=None if errors is None else errors.append):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if not any(fnmatch.fnmatch(rel, pattern) for pattern in cfg.exclude):
                yield full, rel


def _folder_errors(cfg: SourceConfig, errors: list[OSError]) -> Iterator[Item]:
    root = resolve_path(cfg.path)
    while errors:
        e = errors.pop(0)
        rel = os.path.relpath(e.filename, root).replace(os.sep, "/") if e.filename else "?"
        yield Item(cfg.name, f"{cfg.name}:{rel}/", rel, reason=f"unreadable folder ({type(e).__name__})")


def read_tree(cfg: SourceConfig, max_file_bytes: int, skip: int = 0) -> Iterator[Item]:
    """Items of a folder; the first `skip` (all when negative) are placeholders: stat-ed, never opened."""
    total = n = 0
    errors: list[OSError] = []
    for full, rel in tree_files(cfg, errors):
        for item in _folder_errors(cfg, errors):
            n += 1
            yield item
        doc_id = f"{cfg.name}:{rel}"
        n += 1
        try:
            size = os.stat(full).st_size
        except OSError as e:
            yield Item(cfg.name, doc_id, rel, reason=f"unreadable ({type(e).__name__})")
            continue
        if cfg.max_bytes and total + size > cfg.max_bytes:
            return  # the read budget of this source is spent
        total += size
        if size > max_file_bytes:
            yield Item(cfg.name, doc_id, rel, reason="too_large", n_bytes=size)
            continue
        if skip < 0 or n <= skip:
            yield Item(cfg.name, doc_id, rel, reason="skipped", n_bytes=size)
            continue
        try:
            with open(full, "rb") as f:
                data = f.read()
        except OSError as e:
            yield Item(cfg.name, doc_id, rel, reason=f"unreadable ({type(e).__name__})", n_bytes=size)
            continue
        text, reason = decode(data)
        yield Item(cfg.name, doc_id, rel, text=text, reason=reason, n_bytes=len(data))
    yield from _folder_errors(cfg, errors)


def record_item(cfg: SourceConfig, doc_id: str, record: object, n_bytes: int) -> Item:
    """A document from one JSON record / parquet row / hub row, or the reason it is not one."""
    if not isinstance(record, dict):
        return Item(cfg.name, doc_id, "", reason="not_an_object", n_bytes=n_bytes)
    text = record.get(cfg.text_field)
    if text is None:
        return Item(cfg.name, doc_id, "", reason="missing_text_field", n_bytes=n_bytes)
    if not isinstance(text, str):
        return Item(cfg.name, doc_id, "", reason="text_not_a_string", n_bytes=n_bytes)
    path = str(record.get(cfg.path_field) or "") if cfg.path_field else ""
    lang = str(record.get(cfg.language_field) or "") if cfg.language_field else None
    if not text.strip():
        return Item(cfg.name, doc_id, path, reason="empty", n_bytes=n_bytes)
    if "\x00" in text:
        return Item(cfg.name, doc_id, path, reason="binary", n_bytes=n_bytes)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in JSON): no valid UTF-8 for it
        return Item(cfg.name, doc_id, path, reason="invalid_utf8", n_bytes=n_bytes)
    return Item(cfg.name, doc_id, path, text=text, n_bytes=size, declared_language=lang)


def local_files(cfg: SourceConfig) -> list[str]:
    path = resolve_path(cfg.path)
    if os.path.isdir(path):
        suffix = ".parquet" if cfg.kind == "parquet" else ".jsonl"
        return sorted(str(p) for p in Path(path).rglob(f"*{suffix}*"))
    return sorted(glob.glob(path)) or [path]


def read_jsonl(cfg: SourceConfig, max_file_bytes: int, skip: int = 0) -> Iterator[Item]:
    """Records of JSONL files; the first `skip` items are unparsed placeholders (lines only counted)."""
    n = 0
    for file in local_files(cfg):
        name = os.path.basename(file)
        try:
            f = open(file, "rb")
        except OSError as e:
            yield Item(cfg.name, f"{cfg.name}:{name}", "", reason=f"unreadable ({type(e).__name__})")
            continue
        with f:
            for lineno, raw in enumerate(f, 1):
                doc_id = f"{cfg.name}:{name}:{lineno}"
                if not raw.strip():
                    continue  # blank separator lines are not records
                n += 1
                if n <= skip:
                    yield Item(cfg.name, doc_id, "", reason="skipped", n_bytes=len(raw))
                    continue
                if len(raw) > max_file_bytes:
                    yield Item(cfg.name, doc_id, "", reason="too_large", n_bytes=len(raw))
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield Item(cfg.name, doc_id, "", reason="invalid_utf8", n_bytes=len(raw))
                    continue
                except json.JSONDecodeError:
                    yield Item(cfg.name, doc_id, "", reason="malformed_jsonl", n_bytes=len(raw))
                    continue
                yield record_item(cfg, doc_id, record, len(raw))


def read_parquet(cfg: SourceConfig, max_file_bytes: int) -> Iterator[Item]:
    import pyarrow.parquet as pq

    for file in local_files(cfg):
        name = os.path.basename(file)
        try:
            table = pq.ParquetFile(file)
        except Exception as e:  # missing, truncated or not parquet: one reject for the file
            yield Item(cfg.name, f"{cfg.name}:{name}", "", reason=f"unreadable ({type(e).__name__})")
            continue
        row = 0
        for batch in table.iter_batches(batch_size=1024):
            for record in batch.to_pylist():
                yield record_item(cfg, f"{cfg.name}:{name}:{row}", record, 0)
                row += 1


def read_hub(cfg: SourceConfig, max_file_bytes: int) -> Iterator[Item]:
    import datasets

    kwargs: dict = {"data_files": list(cfg.data_files)} if cfg.data_files else {}
    if cfg.hub_data_dir:
        kwargs["data_dir"] = cfg.hub_data_dir
    stream = datasets.load_dataset(cfg.hub_name, cfg.hub_config, split=cfg.split, streaming=True, **kwargs)
    for row, record in enumerate(stream):
        yield record_item(cfg, f"{cfg.name}:{row}", record, 0)


def read_code_problems(cfg: SourceConfig, max_file_bytes: int) -> Iterator[Item]:
    """Generated Python modules of solved training problems (the tiny code default's learnable part)."""
    from data_recipes.code_problems import pretrain_documents

    for path, text in pretrain_documents(cfg.problems, cfg.problems_seed):
        yield Item(cfg.name, f"{cfg.name}:{path}", path, text=text, n_bytes=len(text.encode("utf-8")))


READERS = {"tree": read_tree, "jsonl": read_jsonl, "parquet": read_parquet, "hub": read_hub,
           "code_problems": read_code_problems}


def read_source(cfg: SourceConfig, max_file_bytes: int) -> Iterator[Item]:
    """The items of one source, stopping once its `max_bytes` read budget is spent."""
    total = 0
    for item in READERS[cfg.kind](cfg, max_file_bytes):
        if cfg.kind != "tree" and cfg.max_bytes:
            if total + item.n_bytes > cfg.max_bytes:
                return
            total += item.n_bytes
        yield item


def estimated_bytes(cfg: SourceConfig) -> int | None:
    """Bytes this source will read (for the ETA), or None when unknown (hub streams)."""
    if cfg.kind in ("hub", "code_problems"):
        return None
    if cfg.kind == "tree":
        total = 0
        for full, _ in tree_files(cfg):
            try:
                total += os.stat(full).st_size
            except OSError:
                pass
    else:
        total = sum(os.path.getsize(f) for f in local_files(cfg) if os.path.exists(f))
    return min(total, cfg.max_bytes) if cfg.max_bytes else total
