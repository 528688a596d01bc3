#!/bin/bash
# Load one `iomux serve` while it is upgraded (kill -USR2) several times: what docs/deploy.md's
# upgrade section quotes. The server runs on CPU 0, the load on CPU 1 (taskset); the load
# command's {PORT} is replaced by the server's port. Prints the load's output and, per upgrade,
# USR2 to "ready" and USR2 to the old process's exit, from the server's log.
#
#   scripts/upgrade_bench.sh epoll http 3 'wrk -t1 -c50 -d10s --latency http://127.0.0.1:{PORT}/plaintext'
#   scripts/upgrade_bench.sh uring ack 3 'build/iomux bench 127.0.0.1:{PORT} --churn -c 10 -d 10 --warmup 0'
#   (UPGRADES 0: the same run without upgrades, for the steady state)
set -euo pipefail
if [ $# -ne 4 ]; then
  echo "usage: $0 MODEL PROTOCOL UPGRADES 'LOAD COMMAND with {PORT}'" >&2
  exit 2
fi
model=$1 protocol=$2 upgrades=$3 load=$4
iomux=${IOMUX:-build/iomux}
dir=$(mktemp -d /tmp/iomux-upgrade-bench-XXXXXX)
trap 'kill $(cat "$dir/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
taskset -c 0 "$iomux" serve --model "$model" --protocol "$protocol" --host 127.0.0.1 --port 0 \
  --pid-file "$dir/pid" >"$dir/server.log" 2>&1 &
for _ in $(seq 100); do
  [ -s "$dir/pid" ] && grep -q "listening on" "$dir/server.log" && break
  sleep 0.05
done
port=$(grep -o "listening on 127.0.0.1:[0-9]*" "$dir/server.log" | head -1 | cut -d: -f2)
taskset -c 1 bash -c "${load//\{PORT\}/$port}" &
load_pid=$!
sleep 2.5
for _ in $(seq 1 "$upgrades"); do
  old=$(cat "$dir/pid")
  kill -USR2 "$old"
  while [ "$(cat "$dir/pid")" = "$old" ]; do sleep 0.001; done
  sleep 2.5
done
wait $load_pid
python3 - "$dir/server.log" <<'PY'
import re, sys
from datetime import datetime
stamp = lambda s: datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
events = []
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) info  (upgrade: started|upgrade: pid \d+ is ready|stopped:)", line)
    if m:
        events.append((stamp(m.group(1)), m.group(2)))
for i, (t, what) in enumerate(events):
    if not what.startswith("upgrade: started"):
        continue
    ready = next(e for e, w in events[i:] if "is ready" in w)
    gone = next(e for e, w in events[i:] if w.startswith("stopped"))
    print(f"upgrade: USR2 -> ready {(ready - t).total_seconds() * 1000:.0f} ms, "
          f"USR2 -> old process exit {(gone - t).total_seconds() * 1000:.0f} ms")
PY
