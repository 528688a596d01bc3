#!/usr/bin/env python3
"""Compiles every translation unit of a compile_commands.json on its own, with -fsyntax-only.

    scripts/compile_each.py BUILD_DIR [JOBS]

BUILD_DIR is a tree configured without a unity build (CMAKE_UNITY_BUILD=OFF), so that each
entry is one source file. The unity trees `make` and scripts/check.sh build compile eight
sources as one file, where a source that forgets an include compiles anyway when a neighbour
included it first; a user's plain `cmake -S . -B build && cmake --build build` then fails. This
parses and checks each file alone, as that build does, without generating code (about half
the cost of compiling). Exits 1, printing the compiler's errors, if any file does not compile.
"""

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Flags that name an output or a dependency file: with -fsyntax-only there is neither.
DROP_WITH_VALUE = {"-o", "-MF", "-MT", "-MQ"}
DROP = {"-c", "-MD", "-MMD"}


def syntax_only(entry):
    args = entry.get("arguments") or shlex.split(entry["command"])
    out = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in DROP_WITH_VALUE:
            skip = True
        elif arg not in DROP:
            out.append(arg)
    return out + ["-fsyntax-only"]


def check(entry):
    started = time.monotonic()
    result = subprocess.run(syntax_only(entry), cwd=entry["directory"], capture_output=True, text=True)
    return entry["file"], result.returncode, result.stderr, time.monotonic() - started


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    build_dir = sys.argv[1]
    jobs = int(sys.argv[2]) if len(sys.argv) == 3 else os.cpu_count() or 1
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        entries = json.load(f)
    unity = [e["file"] for e in entries if "/Unity/" in e["file"]]
    if unity:
        sys.exit(f"compile_each: {build_dir} is a unity build ({unity[0]}); configure it with -DCMAKE_UNITY_BUILD=OFF")

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(check, entries))
    failed = [r for r in results if r[1] != 0]
    for file, _, errors, _ in failed:
        print(f"--- {file} does not compile on its own:\n{errors}", file=sys.stderr)
    took = time.monotonic() - started
    print(f"compile_each: {len(entries)} translation units, {len(failed)} failed, {took:.0f} s with {jobs} jobs")
    if failed:
        print("compile_each: include what each file uses (" + ", ".join(os.path.relpath(r[0]) for r in failed) + ")",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
