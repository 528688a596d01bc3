#!/usr/bin/env bash
# User-space instructions per request of a server, counted with callgrind (independent of the
# machine's load): the server runs under `valgrind --tool=callgrind` twice, once under load and
# once serving (almost) nothing, and the difference of the two totals is divided by the
# requests of the first run. Keeps the profiles in $OUT (default /tmp/iomux-callgrind) for
# callgrind_annotate.
#
#   scripts/callgrind_per_request.sh [-n N] [-c CONNS] -- SERVER COMMAND... -- LOAD...
#
# SERVER COMMAND must print `listening on HOST:PORT` and stop on SIGINT. LOAD is either
#   * arguments for `build/iomux bench HOST:PORT` (a protocol, a size: -c CONNS and -n N are
#     added); the baseline run serves 1 request; or
#   * a whole command (its first word not an option), PORT standing for the server's port,
#     e.g. `redis-benchmark -p PORT -n 200000 -P 16 -t set -q` or `wrk -d 5 http://127.0.0.1:PORT/`;
#     the baseline run gets no load, and the requests are read from the server's summary line
#     ("requests N", iomux serve's `stopped:` line).
# Examples:
#   scripts/callgrind_per_request.sh -n 100000 -c 100 -- \
#     build/iomux serve --model epoll --port 0 -q -- --protocol ack -s 64
#   scripts/callgrind_per_request.sh -- build/iomux serve --model epoll --port 0 -q --protocol resp \
#     -- redis-benchmark -p PORT -n 200000 -c 50 -P 16 -t set -q
set -euo pipefail
cd "$(dirname "$0")/.."

N=100000
CONNS=100
usage() { echo "usage: $0 [-n N] [-c CONNS] -- SERVER... -- LOAD..." >&2; exit 2; }
while [[ $# -gt 0 && $1 != -- ]]; do
  case $1 in
    -n) N=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ ${1:-} == -- ]] || usage
shift
server=()
while [[ $# -gt 0 && $1 != -- ]]; do server+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
load=("$@")
external=0
[[ ${#load[@]} -gt 0 && ${load[0]} != -* ]] && external=1
OUT=${OUT:-/tmp/iomux-callgrind}
mkdir -p "$OUT"

# run_once NAME LOADED: runs the server under callgrind, loads it (or not), stops it. Prints
# "INSTRUCTIONS REQUESTS".
run_once() {
  local name=$1 loaded=$2 log="$OUT/server-$1.log" profile="$OUT/callgrind-$1.out"
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
  local port=${endpoint##*:}
  if ((external)); then
    if ((loaded)); then "${load[@]//PORT/$port}" >"$OUT/load-$name.log" 2>&1; fi
  else
    local requests=$N conns=$CONNS
    ((loaded)) || requests=1
    ((requests < conns)) && conns=$requests
    build/iomux bench "$endpoint" -c "$conns" -n "$requests" --warmup 0 --timeout 60 -q "${load[@]}" >/dev/null
  fi
  kill -INT "$pid"
  wait "$pid" || true
  local instructions requests_served
  instructions=$(grep -E '^summary:' "$profile" | awk '{print $2}')
  requests_served=$(grep -oE 'requests [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
  echo "$instructions ${requests_served:-0}"
}

read -r full full_requests < <(run_once loaded 1)
read -r base base_requests < <(run_once baseline 0)
requests=$((full_requests - base_requests))
((external)) || requests=$((N - 1))
echo "instructions: $full under load ($full_requests requests), $base at rest ($base_requests)"
awk -v a="$full" -v b="$base" -v n="$requests" 'BEGIN { printf "per request: %.0f\n", (a - b) / n }'
