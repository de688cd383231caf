"""Language of a source file from its extension, else from its shebang line."""

from __future__ import annotations

import re

EXTENSIONS = {
    ".py": "python", ".pyw": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".java": "java",
    ".go": "go",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".rs": "rust",
    ".md": "markdown", ".markdown": "markdown",
    ".txt": "text", ".rst": "text",
}  # fmt: skip

# Interpreter named on a `#!` line -> language.
SHEBANG_INTERPRETERS = {
    "python": "python", "python2": "python", "python3": "python", "pypy": "python", "pypy3": "python",
    "node": "javascript", "nodejs": "javascript", "deno": "typescript", "ts-node": "typescript",
    "go": "go", "rust-script": "rust",
}  # fmt: skip

# Names used by hub datasets (e.g. The Stack's `lang` column) -> ours.
LANGUAGE_ALIASES = {
    "python": "python", "py": "python",
    "javascript": "javascript", "js": "javascript",
    "typescript": "typescript", "ts": "typescript",
    "java": "java", "go": "go", "golang": "go",
    "c": "c", "c++": "cpp", "cpp": "cpp",
    "rust": "rust", "rs": "rust",
    "markdown": "markdown", "md": "markdown", "text": "text",
}  # fmt: skip

CODE_LANGUAGES = ("python", "javascript", "typescript", "java", "go", "c", "cpp", "rust")
OTHER = "other"

_SHEBANG = re.compile(r"^#!\s*(\S+)(?:\s+(\S+))?")


def language_from_shebang(first_line: str) -> str | None:
    match = _SHEBANG.match(first_line)
    if not match:
        return None
    program = match.group(1).rsplit("/", 1)[-1]
    if program == "env" and match.group(2):  # `#!/usr/bin/env python3`
        program = match.group(2)
    program = re.sub(r"[\d.]+$", "", program) or program  # python3.11 -> python
    return SHEBANG_INTERPRETERS.get(program) or SHEBANG_INTERPRETERS.get(match.group(1).rsplit("/", 1)[-1])


def detect_language(path: str, text: str, declared: str | None = None) -> str:
    """`declared` (a dataset's own language column) wins, then the extension, then the shebang."""
    if declared:
        alias = LANGUAGE_ALIASES.get(declared.strip().lower())
        if alias:
            return alias
    dot = path.rfind(".")
    if dot > path.rfind("/"):
        lang = EXTENSIONS.get(path[dot:].lower())
        if lang:
            return lang
    if text.startswith("#!"):
        lang = language_from_shebang(text.split("\n", 1)[0])
        if lang:
            return lang
    return OTHER
