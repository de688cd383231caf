import pytest

from data_recipes.languages import detect_language, language_from_shebang

from .samples import GOOD


@pytest.mark.parametrize("language", list(GOOD))
def test_extension_of_each_evaluated_language(language):
    ext, text = GOOD[language]
    assert detect_language(f"src/file.{ext}", text) == language


@pytest.mark.parametrize(
    "path,expected",
    [("a/b.ts", "typescript"), ("x.tsx", "typescript"), ("m.h", "c"), ("m.c", "c"), ("k.hpp", "cpp"),
     ("README.md", "markdown"), ("notes.txt", "text"), ("lib.MJS", "javascript"), ("Makefile", "other"),
     ("dir.d/noext", "other")],
)  # fmt: skip
def test_extensions(path, expected):
    assert detect_language(path, "x = 1\n") == expected


@pytest.mark.parametrize(
    "line,expected",
    [("#!/usr/bin/env python3", "python"), ("#!/usr/bin/python3.11 -u", "python"), ("#! /usr/bin/env node", "javascript"),
     ("#!/bin/sh", None), ("# not a shebang", None)],
)  # fmt: skip
def test_shebang(line, expected):
    assert language_from_shebang(line) == expected


def test_shebang_used_only_without_a_known_extension():
    script = "#!/usr/bin/env python3\nprint('hi')\n"
    assert detect_language("bin/tool", script) == "python"
    assert detect_language("bin/tool.rs", script) == "rust"  # the extension wins
    assert detect_language("bin/tool", script, declared="Go") == "go"  # a dataset's own label wins
