#!/usr/bin/env python3
"""A/B timing of servers against the hand-written epoll floor, measured in the same run.

Each run loads every server in turn (round-robin, so a drift of the machine's speed hits them
all alike) with `iomux bench --spawn`, which pins the server to CPU 0 and the load to CPU 1 and
reads the server's CPU time from /proc. Per server it reports the median server CPU
microseconds per request, the median ratio to the floor's in the same run, and requests/s.

  scripts/ab_timing.py --runs 5 --workload ack64 \\
      new_epoll='build/iomux serve --model epoll --host 127.0.0.1 --port 0 -q' \\
      old_epoll='/tmp/old/build/iomux serve --model epoll --host 127.0.0.1 --port 0 -q'

The floor (build/bench/peers/peer_floor_epoll) is added by itself. Workloads: ack64 (64 B ack,
100 connections), echo16k (16 KiB echo, 100 connections).
"""
import argparse
import json
import statistics
import subprocess
import sys

WORKLOADS = {
    "ack64": ["--protocol", "ack", "-s", "64", "-c", "100"],
    "echo16k": ["--protocol", "echo", "-s", "16384", "-c", "100"],
}
SERVER_PROTOCOL = {"ack64": "ack", "echo16k": "echo"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--workload", choices=WORKLOADS, default="ack64")
    ap.add_argument("--iomux", default="build/iomux", help="the load generator")
    ap.add_argument("--floor", default="build/bench/peers/peer_floor_epoll")
    ap.add_argument("servers", nargs="+", help="NAME='SERVER COMMAND' (its --protocol is added)")
    a = ap.parse_args()
    protocol = SERVER_PROTOCOL[a.workload]
    servers = [("floor", f"{a.floor} --port 0 --protocol {protocol}")]
    for s in a.servers:
        name, _, command = s.partition("=")
        servers.append((name, f"{command} --protocol {protocol}"))
    cpu = {name: [] for name, _ in servers}
    rps = {name: [] for name, _ in servers}
    ratio = {name: [] for name, _ in servers}
    for run in range(a.runs):
        this_run = {}
        for name, command in servers:
            out = subprocess.run(
                [a.iomux, "bench", "--spawn", command, "-d", str(a.duration), "--warmup", "1", "--json", "-q"]
                + WORKLOADS[a.workload], capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                print(f"run {run + 1} {name}: failed: {out.stderr.strip()[-300:]}", file=sys.stderr)
                continue
            r = json.loads(out.stdout)
            this_run[name] = r["server_cpu_us_per_req"]
            cpu[name].append(r["server_cpu_us_per_req"])
            rps[name].append(r["rps"])
        for name in this_run:
            if "floor" in this_run:
                ratio[name].append(this_run[name] / this_run["floor"])
        print(f"run {run + 1}: " + ", ".join(f"{n} {v:.2f}" for n, v in this_run.items()), file=sys.stderr)
    print(f"workload {a.workload}, {a.runs} runs of {a.duration} s, server CPU us/request (median), "
          f"ratio to the floor in the same run (median; min-max), requests/s (median)")
    for name, _ in servers:
        if not cpu[name]:
            continue
        r = ratio[name]
        print(f"{name:14} {statistics.median(cpu[name]):7.2f} us  x{statistics.median(r):.2f} "
              f"({min(r):.2f}-{max(r):.2f})  {statistics.median(rps[name]):10.0f} req/s")


if __name__ == "__main__":
    main()
