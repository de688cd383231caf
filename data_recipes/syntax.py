"""Syntax validity with real tree-sitter grammars (the per-language wheels, which work offline)."""

from __future__ import annotations

import importlib
from functools import cache

# language -> (module of the grammar wheel, name of its language function)
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "java": ("tree_sitter_java", "language"),
    "go": ("tree_sitter_go", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "rust": ("tree_sitter_rust", "language"),
}


@cache
def parser_for(language: str):
    """A tree-sitter Parser for `language`, or None when its grammar wheel is not installed."""
    spec = GRAMMARS.get(language)
    if spec is None:
        return None
    try:
        module = importlib.import_module(spec[0])
    except ImportError:
        return None
    import tree_sitter

    return tree_sitter.Parser(tree_sitter.Language(getattr(module, spec[1])()))


def has_grammar(language: str) -> bool:
    return parser_for(language) is not None


def is_valid_syntax(language: str, text: str) -> bool | None:
    """True/False from the grammar's parse tree (no ERROR or MISSING node); None when there is no grammar."""
    parser = parser_for(language)
    if parser is None:
        return None
    tree = parser.parse(text.encode("utf-8"))
    return not tree.root_node.has_error
