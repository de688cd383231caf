"""Runs a Python test program inside the sandbox and prints the parent's token only if it ran to completion.

Usage (in the sandbox): python -I python_runner.py program.py, with the token as the first line of stdin.
The token is read before any sample code runs and stdin is closed, so the program cannot echo it from a
file or the environment; SystemExit (an early exit(0)) counts as not finishing, and os._exit skips the token.
"""

import os
import sys
import traceback


def main() -> None:
    # Bound before any sample code runs: a program that patches os._exit or os.write cannot reach these.
    exit_now, write = os._exit, os.write
    token = sys.stdin.readline().strip()
    sys.stdin.close()
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    namespace = {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__}
    finished = False
    try:
        exec(compile(source, path, "exec"), namespace)
        finished = True
    except BaseException:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are failures too
        traceback.print_exc(limit=5)
    if not finished:
        exit_now(1)
    else:
        sys.stdout.flush()
        write(1, ("\n" + token + "\n").encode())
        exit_now(0)  # skip atexit handlers and non-daemon threads the program may have left


if __name__ == "__main__":
    main()
