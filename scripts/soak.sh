#!/usr/bin/env bash
# Soak one model: steady pipelined load, connection churn and misbehaving clients (slow
# readers, resets, garbage, over-long lines, half-closes) together against one server, for a
# bounded time. At the end: lost or wrong replies (goal: none), open fds back to the baseline,
# resident memory over time. Loopback only.
#
#   scripts/soak.sh MODEL MINUTES [BUILD_DIR]
set -euo pipefail
model=${1:?usage: soak.sh MODEL MINUTES [BUILD_DIR]}
minutes=${2:?usage: soak.sh MODEL MINUTES [BUILD_DIR]}
build=${3:-build}
iomux="$build/iomux"
here=$(cd "$(dirname "$0")" && pwd)
seconds=$(python3 -c "print(max(5, int(float('$minutes') * 60)))")
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

concurrent=1
connections=50
[[ "$model" == blocking ]] && { concurrent=0; connections=1; }

"$iomux" serve --model "$model" --host 127.0.0.1 --port 0 --protocol line \
  --max-pending 262144 --drain-timeout 5 -q 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
[[ -n "$port" ]] || { echo "soak: server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

fds() { ls "/proc/$server/fd" | wc -l; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
base_fds=$(fds)
echo "soak: model $model, port $port, ${seconds}s; baseline fds $base_fds, rss $(rss) KiB" >&2

# Memory and fds every 5 s.
( while kill -0 "$server" 2>/dev/null; do echo "$(date +%s) $(rss) $(fds)"; sleep 5; done ) >"$work/samples" 2>/dev/null &
sampler=$!

# blocking serves one connection at a time until it leaves: a persistent steady connection
# would hold it for the whole soak and starve every other client (its documented limit, not a
# fault). There the steady load is connections that come and go: the churn below, alone.
if ((concurrent)); then
  "$iomux" bench "127.0.0.1:$port" --protocol line -c "$connections" -p 4 -d "$seconds" --warmup 0 \
    --json -q >"$work/steady.json" 2>"$work/steady.err" &
  steady=$!
else
  echo '{"requests": 0, "rps": 0, "errors": 0, "skipped": "blocking: churn is the steady load"}' >"$work/steady.json"
  steady=""
fi
churn_c=$(( concurrent ? 5 : 1 ))
"$iomux" bench "127.0.0.1:$port" --protocol line --churn -c "$churn_c" -d "$seconds" --warmup 0 \
  --json -q >"$work/churn.json" 2>"$work/churn.err" &
churn=$!
python3 "$here/soak_faults.py" "$port" "$seconds" "$concurrent" >"$work/faults.json"
[[ -n "$steady" ]] && { wait "$steady" || true; }
wait "$churn" || true
sleep 2  # let the server finish closing what the clients closed
end_fds=$(fds)
end_rss=$(rss)
kill "$sampler" 2>/dev/null || true
kill -TERM "$server"
status=0
wait "$server" || status=$?

python3 - "$work" "$model" "$seconds" "$base_fds" "$end_fds" "$status" <<'PY'
import json, sys
work, model, seconds, base_fds, end_fds, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
def load(name):
    try:
        return json.load(open(f"{work}/{name}"))
    except Exception as e:
        return {"error": str(e)}
steady, churn, faults = load("steady.json"), load("churn.json"), load("faults.json")
samples = [l.split() for l in open(f"{work}/samples") if len(l.split()) == 3]
rss = [int(s[1]) for s in samples]
lost = sum(int(x.get("errors", 0)) for x in (steady, churn)) + faults.get("probe_failures", 0) + faults.get("wrong_replies", 0)
summary = {
    "model": model, "seconds": seconds,
    "steady_requests": steady.get("requests"), "steady_rps": round(steady.get("rps", 0)), "steady_errors": steady.get("errors"),
    "churn_requests": churn.get("requests"), "churn_errors": churn.get("errors"),
    "faults": faults,
    "lost_or_wrong_replies": lost,
    "fds_baseline": base_fds, "fds_end": end_fds,
    "rss_kib_first": rss[0] if rss else None, "rss_kib_max": max(rss) if rss else None, "rss_kib_last": rss[-1] if rss else None,
    "server_exit": status,
}
print(json.dumps(summary, indent=1))
ok = lost == 0 and end_fds == base_fds and status == 0
print(f"soak {model}: {'PASS' if ok else 'FAIL'}: {lost} lost or wrong replies, fds {base_fds} -> {end_fds}, "
      f"rss {summary['rss_kib_first']} -> {summary['rss_kib_max']} (max) -> {summary['rss_kib_last']} KiB", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
