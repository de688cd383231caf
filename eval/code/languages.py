"""The six HumanEvalPack languages: program assembly (code + tests + token harness), compile and run commands.

Every program ends by printing a random per-run token that the parent checks, read from stdin at start
(never written into a file the sample could read). A sample passes only when the token arrives after the
tests ran to completion and the process exited 0, so an early exit(0), a killed parent, or a harness the
sample defined away does not count. JavaScript's `console.assert` prints and carries on: the tests' asserts
are rebound to a harness assert that counts failures, and the token is withheld when any failed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eval.code import toolchains
from eval.code.sandbox import Limits, SandboxResult

PYTHON_RUNNER = Path(__file__).with_name("python_runner.py")
COMPILE_LIMITS = Limits(timeout_s=60.0, memory_mb=4096, file_size_mb=256)
RUN_LIMITS = Limits(timeout_s=20.0, memory_mb=4096)


@dataclass
class Step:
    argv: list[str]
    limits: Limits
    env: dict[str, str] = field(default_factory=dict)
    writable: list[Path] = field(default_factory=list)  # shared caches, bound read-write (compile steps only)
    hidden: list[Path] = field(default_factory=list)  # folders the step must not see (expected outputs)


@dataclass
class Program:
    files: dict[str, str | bytes]  # name -> text (UTF-8) or bytes
    run: Step
    compile: Step | None = None
    # (run result, token) -> did the tests run to completion and succeed?
    verdict: Callable[[SandboxResult, str], bool] = lambda r, token: token_is_last_line(r, token)
    collect: tuple[str, ...] = ()  # files the parent reads back after a successful run
    server_compile: str | None = None  # source file a warm compile server may compile instead of `compile`
    collect_max_bytes: int = 256 << 20

    def write_files(self, folder: Path) -> None:
        for name, content in self.files.items():
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))


@dataclass(frozen=True)
class Language:
    name: str  # our short name: python, js, java, go, cpp, rust
    dataset: str  # HumanEvalPack file name: python, javascript, ...
    task_prefix: str  # HumanEvalPack task id prefix: Python, JavaScript, ...
    fence_names: tuple[str, ...]  # Markdown fence tags a chat model may use
    stop: tuple[str, ...]  # stop sequences for base-model completion of a function body
    check_environment: Callable[[], None]
    build: Callable[[dict, str], Program]  # (problem, completion) -> program


def token_is_last_line(result: SandboxResult, token: str) -> bool:
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return result.ok and bool(lines) and lines[-1] == token


# ----------------------------------------------------------------------------- python


def build_python(problem: dict, completion: str) -> Program:
    code = problem["prompt"] + completion + "\n\n" + problem["test"] + "\n"
    return Program(files={"program.py": code},
                   run=Step([sys.executable, "-I", str(PYTHON_RUNNER), "program.py"], Limits(timeout_s=15.0)))


# ----------------------------------------------------------------------------- javascript

JS_PRELUDE = """const __qsHarness = (() => {
  const token = require('fs').readFileSync(0, 'utf8').split('\\n')[0].trim();
  let failures = 0;
  return Object.freeze({
    assert: (ok, ...msg) => { if (!ok) { failures++; process.stderr.write('Assertion failed ' + msg.join(' ') + '\\n'); } },
    done: () => { if (failures === 0) { process.stdout.write('\\n' + token + '\\n'); } else { process.exitCode = 1; } },
  });
})();
"""


def build_js(problem: dict, completion: str) -> Program:
    test = problem["test"].replace("console.assert(", "__qsHarness.assert(")
    code = JS_PRELUDE + problem["prompt"] + completion + "\n\n" + test + "\n__qsHarness.done();\n"
    env = {"NODE_PATH": toolchains.node_path()}
    run = Step(["node", "--max-old-space-size=1024", "--stack-size=4096", "main.js"], RUN_LIMITS, env)
    return Program(files={"main.js": code}, run=run)


# ----------------------------------------------------------------------------- java

JAVA_RUNNER = """
class QsJavaRunner {
    public static void main(String[] args) throws Exception {
        String token = new java.io.BufferedReader(new java.io.InputStreamReader(System.in)).readLine();
        Main.main(args);
        System.out.flush();
        System.out.println();
        System.out.println(token);
        System.out.flush();
        System.exit(0);
    }
}
"""
JVM_FLAGS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-XX:-UsePerfData"]


def build_java(problem: dict, completion: str) -> Program:
    code = problem["declaration"] + completion + "\n\n" + problem["test"] + "\n" + JAVA_RUNNER
    compile_ = Step(["javac", *(f"-J{f}" for f in JVM_FLAGS), "-proc:none", "-nowarn", "-d", ".", "Main.java"],
                    Limits(timeout_s=60.0, memory_mb=None))
    run = Step(["java", *JVM_FLAGS, "-Xmx1024m", "-cp", ".", "QsJavaRunner"], Limits(timeout_s=15.0, memory_mb=None))
    return Program(files={"Main.java": code}, compile=compile_, run=run, server_compile="Main.java")


# ----------------------------------------------------------------------------- go

GO_TEST_MAIN = """
func TestMain(m *testing.M) {
    token, _ := qsBufio.NewReader(qsOs.Stdin).ReadString('\\n')
    code := m.Run()
    if code == 0 {
        qsFmt.Println()
        qsFmt.Println(token)
    }
    qsOs.Exit(code)
}
"""
_GO_IMPORT_PATH = re.compile(r'"([^"]+)"')
# Standard packages imported when the code refers to them (as the bigcode harness does): a completion of
# a function body cannot add imports, and some canonical solutions rely on this too (Go/17, Go/20).
GO_AUTO_IMPORTS = ("math", "sort", "strings", "strconv", "fmt", "bytes", "regexp", "unicode", "math/rand",
                   "crypto/md5")


_GO_COMMENTS_AND_STRINGS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|`[^`]*`|\'(?:\\.|[^\'\\\n])+\'', re.S)


def build_go(problem: dict, completion: str) -> Program:
    import_block = problem.get("import", "")
    body = (problem["prompt"].replace(import_block, "") if import_block else problem["prompt"]) + completion
    body += "\n\n" + problem["test"] + "\n" + GO_TEST_MAIN
    setup = problem.get("test_setup", "")
    paths = dict.fromkeys(_GO_IMPORT_PATH.findall(setup) + _GO_IMPORT_PATH.findall(import_block)
                          + list(GO_AUTO_IMPORTS))
    # Go refuses unused imports: keep a package only when the code refers to it.
    code_only = _GO_COMMENTS_AND_STRINGS.sub(" ", body)  # "then sort." in a comment is not a use of sort
    used = [p for p in paths if re.search(rf"\b{re.escape(p.rsplit('/', 1)[-1])}\.", code_only)]
    imports = "\n".join(f'    "{p}"' for p in used)
    code = (f'package main\n\nimport (\n{imports}\n    qsBufio "bufio"\n    qsFmt "fmt"\n    qsOs "os"\n)\n\n'
            + body)
    env = toolchains.go_env()
    cache = Path(env["GOCACHE"])
    compile_ = Step(["go", "test", "-c", "-vet=off", "-ldflags=-s -w", "-o", "qs.test", "main_test.go"],
                    Limits(timeout_s=90.0, memory_mb=4096, file_size_mb=256), env, [cache])
    run = Step(["./qs.test", "-test.timeout=19s"], RUN_LIMITS, {k: v for k, v in env.items() if k != "GOCACHE"})
    return Program(files={"main_test.go": code}, compile=compile_, run=run)


# ----------------------------------------------------------------------------- c++

CPP_MAIN = """
#include <iostream>
#include <string>
int main() {
    std::string qs_token;
    std::getline(std::cin, qs_token);
    qs_test_main();
    std::cout << std::endl << qs_token << std::endl;
    return 0;
}
"""


def build_cpp(problem: dict, completion: str) -> Program:
    test = problem["test"].rstrip()
    if test.endswith("}"):  # the test's main may fall off its end; as a plain function it must return
        test = test[:-1] + "    return 0;\n}"
    # The prompt, after the declaration's headers: the declaration adds includes (<algorithm>, <stdlib.h>)
    # that canonical solutions rely on, but CPP/38's declaration also carries half a function body.
    headers = [line.strip() for line in problem.get("declaration", "").splitlines()
               if line.strip().startswith(("#include", "using namespace"))]
    code = ("\n".join(headers) + "\n" + problem["prompt"] + completion + "\n\n#define main qs_test_main\n" + test
            + "\n#undef main\n" + CPP_MAIN)
    libs = ["-lcrypto"] if "openssl" in code else []
    standard = tuple(h for h in headers if h.startswith("#include") and "<" in h and "boost" not in h)
    pch = toolchains.cpp_precompiled_header(standard) if standard else None
    forced = ["-include", str(pch)] if pch else []
    compile_ = Step(["g++", *toolchains.CPP_FLAGS, *forced, "-o", "a.out", "main.cpp", *libs, "-lm"],
                    COMPILE_LIMITS)
    return Program(files={"main.cpp": code}, compile=compile_, run=Step(["./a.out"], RUN_LIMITS))


# ----------------------------------------------------------------------------- rust

RUST_TOKEN_TEST = """
#[test]
fn zzzz_qs_harness_token() {
    let mut token = String::new();
    std::io::stdin().read_line(&mut token).unwrap();
    println!("\\n{}", token.trim());
}
"""


def rust_verdict(result: SandboxResult, token: str) -> bool:
    """libtest runs tests in name order with one thread: the token test runs last, then the summary."""
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if not result.ok or token not in lines:
        return False
    after = lines[lines.index(token) + 1:]
    return any(line.startswith("test result: ok.") for line in after)


def build_rust(problem: dict, completion: str) -> Program:
    code = problem["declaration"] + completion + "\n\n" + problem["test"] + "\n" + RUST_TOKEN_TEST
    compile_ = Step([toolchains.rustc_binary(), "--edition", "2021", "--test", "-C", "debuginfo=0", "-A", "warnings",
                     "-o", "qs_test", "main.rs", *toolchains.rust_externs()], COMPILE_LIMITS)
    run = Step(["./qs_test", "--test-threads=1", "--nocapture"], RUN_LIMITS)
    return Program(files={"main.rs": code}, compile=compile_, run=run, verdict=rust_verdict)


# ----------------------------------------------------------------------------- registry


def _needs(*commands: str) -> Callable[[], None]:
    def check() -> None:
        toolchains.require(*commands)

    return check


def _check_go() -> None:
    toolchains.go_env()


def _check_rust() -> None:
    toolchains.rust_externs()


def _check_js() -> None:
    toolchains.require("node")
    if not toolchains.js_md5_available():
        raise toolchains.EnvironmentProblem("JavaScript/162 needs the npm package js-md5 in NODE_PATH or "
                                            f"{toolchains.cache_root() / 'node'} (run .ci/install-toolchains.sh)")


def _check_cpp() -> None:
    toolchains.require("g++")
    for header in ("/usr/include/boost/any.hpp", "/usr/include/openssl/md5.h"):
        if not Path(header).exists():
            raise toolchains.EnvironmentProblem(f"C++ tests need {header}: apt-get install libboost-dev libssl-dev")


LANGUAGES: dict[str, Language] = {
    "python": Language("python", "python", "Python", ("python", "py"),
                       ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert "),
                       _needs(), build_python),
    "js": Language("js", "javascript", "JavaScript", ("javascript", "js"),
                   ("\nconst ", "\nfunction ", "\nconsole.", "\n/*", "\n//", "\nmodule."), _check_js, build_js),
    "java": Language("java", "java", "Java", ("java",), ("\npublic class", "\nclass ", "\n//", "\n/*"),
                     _needs("javac", "java"), build_java),
    "go": Language("go", "go", "Go", ("go", "golang"), ("\nfunc ", "\n//", "\ntype ", "\nvar ", "\nconst "),
                   _check_go, build_go),
    "cpp": Language("cpp", "cpp", "CPP", ("cpp", "c++"), ("\nint main", "\n#", "\n/*", "\n//", "\nusing "),
                    _check_cpp, build_cpp),
    "rust": Language("rust", "rust", "Rust", ("rust", "rs"), ("\nfn ", "\n#[", "\n//", "\nuse ", "\nmod "),
                     _check_rust, build_rust),
}
ALIASES = {"javascript": "js", "c++": "cpp", "rs": "rust", "py": "python", "golang": "go"}


def get_language(name: str) -> Language:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in LANGUAGES:
        raise ValueError(f"unknown language {name!r}; choose from {sorted(LANGUAGES)}")
    return LANGUAGES[key]


def language_of_task(task_id: str) -> Language:
    prefix = task_id.split("/", 1)[0]
    for lang in LANGUAGES.values():
        if lang.task_prefix.lower() == prefix.lower():
            return lang
    raise ValueError(f"task id {task_id!r} names no HumanEvalPack language")
