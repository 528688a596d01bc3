#!/usr/bin/env bash
# The checks beyond `make test`: the suite under sanitizers, and a bounded fuzzing run.
#
#   scripts/check.sh              all six steps (what `make check` runs)
#   scripts/check.sh asan fuzz    only the steps named: format, includes, differential, asan,
#                                 tsan, fuzz
#
#   format  every C and C++ file git knows follows .clang-format (clang-format --dry-run
#         -Werror); the files that do not are listed, with the command that fixes them.
#   includes  every translation unit of the project (library, apps, tests, benchmarks)
#         compiles on its own, as a plain non-unity build compiles it: build-includes/ is
#         configured file by file and scripts/compile_each.py runs the compiler with
#         -fsyntax-only on each source. The unity trees (build/, the sanitizers', the
#         fuzzers') cannot see an include a file forgot when a neighbour in its batch has it.
#   differential  the release tree in build/ (configured as `make build` does, if it is not
#         yet), the tests labelled `differential`: resp's replies against redis-server's, byte
#         for byte, over seeded random command sequences (tests/differential/; about 15 s).
#   asan  AddressSanitizer + UBSan build in build-asan/, the whole CTest suite but the
#         installed-package and differential tests (-LE install|differential), the
#         fd-exhaustion tests (see ASAN_EXCLUDE) and the interop tests of models other than
#         epoll and uring (see ASAN_INTEROP); leaks count.
#   tsan  ThreadSanitizer build in build-tsan/, the integration tests of the models that run
#         several threads (threaded, epoll/epoll-et and uring, and the --threads tests, which
#         run select and poll too).
#   fuzz  the libFuzzer targets of fuzz/, built with clang in build-fuzz/, each run for
#         FUZZ_SECONDS (default 60) with -max_len=4096 on a temporary copy of its corpus.
#
# A sanitizer report in any process, including servers the tests spawn and whose exit code
# they do not look at, fails the step: reports go to files under the build directory, and
# the step fails, printing them, when any exists.
#
# Environment: JOBS (parallel build and test jobs, default nproc), FUZZ_SECONDS (default 60),
# UNITY_BATCH (sources per unity file in the sanitizer and fuzzer trees, default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_MAX_LEN=4096
FUZZERS=(builtin_protocols resp http endpoint)
# Integration tests of the multi-threaded models: the parametrized suites end in /threaded,
# /epoll, /epoll_et, /uring; the io_uring engine's own tests are Uring.*; --threads tests
# carry "Threads" or "ThreadedLoops" in their names (ThreadedLoops* run select and poll too).
TSAN_TESTS='[Tt]hread|[Ee]poll|[Uu]ring'
# Not under ASan+UBSan: tests that run a server out of file descriptors. The sanitizer runtime
# probes memory with pipe(2) before it trusts a vtable pointer, so with no fd left every
# virtual call looks like a bad one to UBSan's vptr check and the server aborts (a false
# report: a correct shared_ptr release is enough to trigger it; UBSan's suppressions cannot
# help, they match the dynamic type it could not read). The same for the interop test of the
# proxy flooded past its descriptor limit (DescriptorLimit). Not under either sanitizer:
# the tests that measure the server's resident memory (the memory budget's, HTTP's idle
# connections'): a sanitizer's shadow memory and redzones multiply it, and ASan's quarantine
# keeps what was freed from being reused.
ASAN_EXCLUDE='FdExhaustion|DescriptorLimit|MemoryBudget|IdleConnectionsHold'
# The interop tests (real third-party clients against resp and http) under ASan+UBSan: on
# `epoll` and `uring` and with --threads 2, not on every model. The handlers and protocol
# cores are the same code on every model, and each engine's own paths are covered by the
# integration tests under ASan; the full interop matrix (127 tests, about 2 minutes of
# sanitized wall time) runs in `make test`.
ASAN_INTEROP='/(epoll|uring) |TwoThreads'
TSAN_EXCLUDE='MemoryBudget|IdleConnectionsHold'

steps=("$@")
if ((${#steps[@]} == 0)); then steps=(format includes differential asan tsan fuzz); fi
for s in "${steps[@]}"; do
  case "$s" in
    format | includes | differential | asan | tsan | fuzz) ;;
    *) echo "check: unknown step '$s' (steps: format includes differential asan tsan fuzz)" >&2; exit 2 ;;
  esac
done

summary=()
current=""
step_start=0
check_start=$SECONDS

header() {
  current=$1
  step_start=$SECONDS
  echo
  echo "=================================================================================="
  echo "== check: $1 — $2"
  echo "=================================================================================="
}

footer() {
  local took=$((SECONDS - step_start))
  echo "== check: $current passed in ${took} s"
  summary+=("$current ${took} s")
  current=""
}

on_exit() {
  local rc=$?
  if [[ -n "$current" ]]; then
    echo "== check: $current FAILED after $((SECONDS - step_start)) s" >&2
    summary+=("$current FAILED")
  fi
  if ((${#summary[@]} > 0)); then
    local joined
    joined=$(printf '%s, ' "${summary[@]}")
    echo "== check: ${joined%, }; total $((SECONDS - check_start)) s"
  fi
  exit "$rc"
}
trap on_exit EXIT

# configure DIR OPT ARGS...: a Ninja build tree, configured once and reconfigured when ARGS
# change. Sanitizer trees are built with line tables only (-g1): enough for symbolized
# reports, far cheaper to compile than -g. OPT is the optimization level: -O0 for the
# ASan+UBSan tree, whose build is the longest step of `make check` and whose tests are
# IO-bound (measured: build 228 s instead of 330 s at -O1, tests 58 s instead of 48 s); -O1
# for TSan, whose instrumented atomics crawl unoptimized. The trees are unity builds (CMake
# compiles a target's sources in batches of UNITY_BATCH as one file each): most of a sanitizer
# build is parsing the same headers again for every file, and batching parses them once per
# batch (measured below, in the commit that added it). This keeps CI within its budget.
UNITY_BATCH=${UNITY_BATCH:-8}
configure() {
  local dir=$1 opt=$2
  shift 2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE="$UNITY_BATCH" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt -g1" "$@" >/dev/null
}

build() {
  local dir=$1
  shift
  cmake --build "$dir" -j "$JOBS" "$@"
}

# fail_on_reports DIR NAME: fails, printing them, if sanitizer reports were written to DIR.
fail_on_reports() {
  local dir=$1 name=$2
  shopt -s nullglob
  local files=("$dir"/*)
  shopt -u nullglob
  if ((${#files[@]} > 0)); then
    echo "check: $name reported ${#files[@]} problem(s):" >&2
    for r in "${files[@]}"; do
      echo "--- $r" >&2
      head -n 80 "$r" >&2
    done
    return 1
  fi
}

# fresh_report_dir DIR: an empty directory for this run's reports.
fresh_report_dir() {
  rm -rf "$1"
  mkdir -p "$1"
}

step_format() {
  header format "clang-format --dry-run over the C and C++ files git knows"
  if ! command -v clang-format >/dev/null; then
    echo "check: clang-format is missing; run scripts/install-deps.sh" >&2
    return 1
  fi
  # One clang-format per batch of files (xargs), not per file; it names each file it would
  # change in a "FILE:LINE:COL: error:" line.
  local off
  off=$({ git ls-files -z '*.c' '*.h' '*.cpp' '*.hpp' | xargs -0 clang-format --dry-run -Werror 2>&1 || true; } |
    sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error:.*/\1/p' | sort -u | tr '\n' ' ')
  if [[ -n "$off" ]]; then
    echo "check: files that do not follow .clang-format; fix them with: clang-format -i $off" >&2
    return 1
  fi
  footer
}

# Parsing each file alone is what finds a missing include; generating code is not needed. CPU
# seconds (user + sys, GNU time, GCC 12, the 2-core development machine, when this step was
# added): -fsyntax-only over the 122 units, 129 to 153 s; the ASan tree as step_asan
# configures it, 340 s built file by file against 146 s as a unity build, 194 s more.
step_includes() {
  header includes "every translation unit compiled alone (-fsyntax-only), build-includes/"
  # Configured only, never built: compile_commands.json is what the step needs.
  cmake -S . -B build-includes -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=OFF \
    -DIOMUX_BUILD_APPS=ON -DIOMUX_BUILD_TESTS=ON -DIOMUX_BUILD_BENCH=ON >/dev/null
  python3 scripts/compile_each.py build-includes "$JOBS"
  footer
}

step_differential() {
  header differential "resp against redis-server: build/, ctest -L differential"
  if ! command -v redis-server >/dev/null; then
    echo "check: redis-server is missing; run scripts/install-deps.sh" >&2
    return 1
  fi
  # build/ as `make build` makes it; left as it is when it exists (CI ran `make test` in it).
  if [[ ! -f build/CMakeCache.txt ]]; then
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON >/dev/null
  fi
  build build --target differential_tests iomux_cli
  (cd build && ctest --output-on-failure --timeout 120 --no-tests=error -L differential)
  footer
}

step_asan() {
  header asan "AddressSanitizer + UBSan: build-asan/, ctest -LE 'install|interop', then the interop tests matching '$ASAN_INTEROP'"
  configure build-asan -O0 -DIOMUX_SANITIZE=address \
    -DIOMUX_BUILD_BENCH=OFF -DIOMUX_BUILD_TESTS=ON
  build build-asan
  local reports=$PWD/build-asan/sanitizer-reports
  fresh_report_dir "$reports"
  (
    cd build-asan
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
    # `&&`: inside a subshell whose status is tested, `set -e` does not stop at a failure.
    ctest --output-on-failure -j "$JOBS" --timeout 300 -LE 'install|interop|differential' -E "$ASAN_EXCLUDE" &&
      ctest --output-on-failure -j "$JOBS" --timeout 300 --no-tests=error -L interop -R "$ASAN_INTEROP" -E "$ASAN_EXCLUDE"
  ) || { fail_on_reports "$reports" "ASan/UBSan" || true; return 1; }
  fail_on_reports "$reports" "ASan/UBSan"
  footer
}

step_tsan() {
  header tsan "ThreadSanitizer: build-tsan/, integration tests matching '$TSAN_TESTS'"
  configure build-tsan -O1 -DIOMUX_SANITIZE=thread \
    -DIOMUX_BUILD_BENCH=OFF -DIOMUX_BUILD_TESTS=ON
  build build-tsan --target integration_tests iomux_cli
  local reports=$PWD/build-tsan/sanitizer-reports
  fresh_report_dir "$reports"
  (
    cd build-tsan
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan"
    if ! ctest -N -L integration -R "$TSAN_TESTS" | grep -q 'Total Tests: [1-9]'; then
      echo "check: no integration test matches '$TSAN_TESTS'" >&2
      exit 1
    fi
    ctest --output-on-failure -j "$JOBS" --timeout 300 -L integration -R "$TSAN_TESTS" -E "$TSAN_EXCLUDE"
  ) || { fail_on_reports "$reports" "TSan" || true; return 1; }
  fail_on_reports "$reports" "TSan"
  footer
}

step_fuzz() {
  header fuzz "libFuzzer (clang): build-fuzz/, ${FUZZ_SECONDS} s per fuzzer, -max_len=$FUZZ_MAX_LEN"
  if ! command -v clang++ >/dev/null; then
    echo "check: the fuzzers need clang++ (and libclang-rt-14-dev); run scripts/install-deps.sh" >&2
    return 1
  fi
  configure build-fuzz -O1 -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DIOMUX_FUZZ=ON -DIOMUX_BUILD_TESTS=OFF -DIOMUX_BUILD_BENCH=OFF
  local targets=()
  for f in "${FUZZERS[@]}"; do targets+=("${f}_fuzzer"); done
  build build-fuzz --target "${targets[@]}"

  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/iomux-fuzz.XXXXXX")
  local artifacts=$PWD/build-fuzz/artifacts
  mkdir -p "$artifacts"
  # The fuzzers run side by side, each on its own copy of the seeds, which grows as it runs.
  local pids=()
  for f in "${FUZZERS[@]}"; do
    mkdir -p "$work/$f"
    cp fuzz/corpus/"$f"/* "$work/$f"/
    "build-fuzz/fuzz/${f}_fuzzer" -max_len="$FUZZ_MAX_LEN" -max_total_time="$FUZZ_SECONDS" \
      -timeout=30 -print_final_stats=1 -artifact_prefix="$artifacts/${f}-" "$work/$f" \
      >"$work/$f.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for i in "${!FUZZERS[@]}"; do
    local f=${FUZZERS[$i]}
    if wait "${pids[$i]}"; then
      echo "-- ${f}_fuzzer: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$f.log" | tail -n 1)"
    else
      failed=1
      echo "-- ${f}_fuzzer FAILED; the input that fails is in $artifacts/ (replay it:" \
        "build-fuzz/fuzz/${f}_fuzzer FILE)" >&2
      # The report's first frames (where the property failed), and the failing input itself,
      # base64: CI keeps only this log, not the artifact (replay: base64 -d >FILE).
      grep -a -m 1 -A 14 -E '^==[0-9]+==' "$work/$f.log" >&2 || tail -n 40 "$work/$f.log" >&2
      local input
      input=$(grep -a -o -E "Test unit written to [^ ]+" "$work/$f.log" | tail -n 1 | cut -d' ' -f5)
      if [[ -n $input && -f $input ]]; then
        echo "-- the input that failed, base64 ($(stat -c %s "$input") bytes):" >&2
        base64 -w 0 "$input" >&2
        echo >&2
      fi
    fi
  done
  rm -rf "$work"
  ((failed == 0)) || return 1
  footer
}

for s in "${steps[@]}"; do
  "step_$s"
done
