#!/usr/bin/env bash
# User-space instructions per request of a server, counted with callgrind (independent of the
# machine's load): the server runs under `valgrind --tool=callgrind` twice, once serving N
# requests and once serving 1, and the difference of the two totals is divided by N - 1.
#
#   scripts/callgrind_per_request.sh [-n N] [-c CONNS] -- SERVER COMMAND... -- BENCH ARGS...
#
# SERVER COMMAND must print `listening on HOST:PORT` and stop on SIGINT; BENCH ARGS are given to
# `build/iomux bench HOST:PORT` (a protocol, a size; -c and -n are added). Example:
#   scripts/callgrind_per_request.sh -n 100000 -c 100 -- \
#     build/iomux serve --model epoll --port 0 -q -- --protocol ack -s 64
# Prints the two totals and the per-request figure. Keeps the profiles in $OUT (default
# /tmp/iomux-callgrind) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."

N=100000
CONNS=100
while [[ $# -gt 0 && $1 != -- ]]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    *) echo "usage: $0 [-n N] [-c CONNS] -- SERVER... -- BENCH ARGS..." >&2; exit 2 ;;
  esac
done
[[ ${1:-} == -- ]] || { echo "usage: $0 [-n N] [-c CONNS] -- SERVER... -- BENCH ARGS..." >&2; exit 2; }
shift
server=()
while [[ $# -gt 0 && $1 != -- ]]; do server+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
bench_args=("$@")
OUT=${OUT:-/tmp/iomux-callgrind}
mkdir -p "$OUT"

# run_once REQUESTS: prints the total instruction count of a server that served REQUESTS.
run_once() {
  local requests=$1 log="$OUT/server-$1.log" profile="$OUT/callgrind-$1.out"
  rm -f "$profile"
  valgrind --tool=callgrind --callgrind-out-file="$profile" "${server[@]}" >"$log" 2>&1 &
  local pid=$!
  local endpoint=""
  for _ in $(seq 1 600); do
    endpoint=$(grep -oE 'listening on [^ ]+' "$log" | head -n 1 | cut -d' ' -f3 || true)
    [[ -n $endpoint ]] && break
    sleep 0.1
  done
  if [[ -z $endpoint ]]; then
    kill "$pid" 2>/dev/null || true
    echo "server did not start; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
  local conns=$CONNS
  ((requests < conns)) && conns=$requests
  build/iomux bench "$endpoint" -c "$conns" -n "$requests" --warmup 0 --timeout 60 -q "${bench_args[@]}" >/dev/null
  kill -INT "$pid"
  wait "$pid" || true
  grep -E '^summary:' "$profile" | awk '{print $2}'
}

full=$(run_once "$N")
one=$(run_once 1)
echo "instructions: $full with $N requests, $one with 1"
awk -v a="$full" -v b="$one" -v n="$N" 'BEGIN { printf "per request: %.0f\n", (a - b) / (n - 1) }'
