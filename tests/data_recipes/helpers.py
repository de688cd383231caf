"""Building small recipes and input trees for the pipeline tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

from data_recipes.config import CorpusRecipe
from shared.config import from_dict

from .samples import GOOD


def recipe(out_dir: Path, sources: list[dict], **extra) -> CorpusRecipe:
    data = {
        "name": "test",
        "out_dir": str(out_dir),
        "sources": sources,
        "languages": ["python", "javascript", "java", "go", "cpp", "rust", "markdown", "text"],
        "heuristics": {"min_bytes": 16},
        "decontamination": {"enabled": False},
        "workers": 1,
        "chunk_docs": 4,
        "log_every_s": 60,
    }
    data.update(extra)
    return from_dict(CorpusRecipe, data)


def write_tree(root: Path) -> dict[str, str | None]:
    """Good files in six languages, duplicates, and every kind of bad input. -> relative path: text (None: bad)."""
    root.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str | None] = {}
    for language, (ext, text) in GOOD.items():
        texts[f"{language}/mean.{ext}"] = text
        texts[f"{language}/mean_copy.{ext}"] = text.replace("\n", "  \n")  # exact duplicate after normalisation
    texts["python/special.py"] = 'MARK = "<|endoftext|> and <|im_start|> are plain text here"\nprint(MARK)\n'
    texts["docs/README.md"] = "# Stats\n\nThe `mean` helpers in six languages, used by the tests.\n"
    texts["python/broken.py"] = "def mean(values:\n    return sum(values) /\n"
    texts["python/long_line.py"] = "x = '" + "a" * 1500 + "'\n"
    for rel, text in texts.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "python/bad_utf8.py").write_bytes(b"x = '\xff\xfe not utf-8'\n")
    (root / "python/binary.py").write_bytes(b"\x00\x01\x02binary\x00")
    (root / "python/empty.py").write_bytes(b"")
    (root / "python/huge.py").write_bytes(b"# " + b"y" * 3000 + b"\n")  # over the test's max_file_bytes
    os.symlink(root / "does-not-exist.py", root / "python/dangling.py")  # unreadable (root can read chmod 000)
    for rel in ("python/bad_utf8.py", "python/binary.py", "python/empty.py", "python/huge.py", "python/dangling.py"):
        texts[rel] = None
    return texts


def write_jsonl(path: Path) -> dict[int, str | None]:
    """Records with a `content` field; line -> text or None for a bad line."""
    lines = [
        json.dumps({"content": GOOD["go"][1].replace("Mean", "Average"), "path": "avg.go"}),
        "{not json",
        json.dumps({"text": "no content field"}),
        json.dumps({"content": "def twice(x):\n    return 2 * x\n\n\nprint(twice(21))\n", "path": "twice.py"}),
        json.dumps(["not", "an", "object"]),
        '{"content": "lone surrogate \\ud800 in JSON"}',
    ]
    path.write_text("\n".join(lines) + "\n")
    return {1: json.loads(lines[0])["content"], 2: None, 3: None, 4: json.loads(lines[3])["content"], 5: None, 6: None}
