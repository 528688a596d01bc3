#!/usr/bin/env python3
"""HAProxy in front of 1, 2 and 3 `iomux serve --protocol http` backends against the same with
nginx backends, in one run (issue 19, "Measured"; the table in docs/benchmarks.md, "Scaling out").

    bench/cluster_bench.py [--runs 5] [--duration 5] [--connections 64] [--backends 1,2,3]
                           [--servers epoll,nginx,uring] [--haproxy-cpu 0|1] [--out DIR]

Every run starts a fresh cluster with scripts/cluster.sh (`http N`, `--backend nginx` for the
nginx rows), so the HAProxy configuration is docs/deploy/haproxy.cfg's (HTTP mode, health checks
on /health every second, retries, round robin) with one line added: `nbthread 1`. The cluster
is pinned to CPU 0 (cluster.sh is started under `taskset -c 0`, and everything it starts
inherits that); --haproxy-cpu 1 moves HAProxy to CPU 1, beside wrk. wrk runs on CPU 1: one
unmeasured warm-up second, then `wrk -t1 -cC -dDs` on /plaintext through HAProxy.

Around the measured wrk run, utime + stime of HAProxy and of every backend are read from
/proc/PID/stat: CPU per request = that CPU time / the requests wrk counted. Cells are
interleaved (epoll-1, nginx-1, epoll-2, nginx-2, ... then the next pass), so a drift of the
machine's speed hits every cell alike; the table has each cell's medians over its passes and
the spread, (max - min) / median.

Writes DIR/results.json (every run, the commands) and DIR/summary.md (the table), and prints
the table. Exits 0 when every run was measured without an error, 1 otherwise, 77 (a skip, for
CTest) when a program it needs is missing or CPUs 0 and 1 are not both usable. Needs haproxy,
nginx, wrk, taskset and build/iomux (--iomux, or IOMUX=...).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
TEMPLATE = os.path.join(ROOT, "docs", "deploy", "haproxy.cfg")
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLUSTER_CPU, WRK_CPU = 0, 1
WARMUP_S = 1
EXIT_SKIP = 77


def die(msg, code=1):
    print(f"cluster_bench: {msg}", file=sys.stderr)
    sys.exit(code)


def cpu_seconds(pid):
    """utime + stime of process `pid` (all its threads), seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow
    # the last ')'. utime and stime are fields 14 and 15.
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


CPU_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times():
    """Per CPU, its /proc/stat columns (seconds since boot), whoever used them."""
    times = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                ticks = [int(x) / CLK_TCK for x in m.group(2).split()]
                times[int(m.group(1))] = dict(zip(CPU_COLUMNS, ticks))
    return times


def busy(columns):
    return sum(v for k, v in columns.items() if k not in ("idle", "iowait"))


def threads_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def affinity_of(pid):
    try:
        return sorted(os.sched_getaffinity(pid))
    except OSError:
        return None


def parse_wrk(out):
    """The figures of wrk's report that the table needs; None without a report."""
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or not rps:
        return None
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}.get(m.group(3), 1.0)
    report = {"requests": int(m.group(1)), "duration_s": float(m.group(2)) * unit, "rps": float(rps.group(1))}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    report["socket_errors"] = sum(int(x) for x in errors.groups()) if errors else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    report["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if p99:
        report["p99_ms"] = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return report


def run_wrk(argv):
    """Runs wrk to its end: its exit status, stdout and stderr."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def write_template(path):
    """docs/deploy/haproxy.cfg with `nbthread 1` in its global section, nothing else changed."""
    with open(TEMPLATE) as f:
        lines = f.read().splitlines(keepends=True)
    out = []
    for line in lines:
        out.append(line)
        if line.strip() == "global":
            out.append("    nbthread 1\n")
    if not any(line.strip() == "nbthread 1" for line in out):
        die(f"no `global` section in {TEMPLATE}")
    with open(path, "w") as f:
        f.writelines(out)


class Cluster:
    """One cluster of scripts/cluster.sh, in its own state directory."""

    def __init__(self, state, server, backends, template, iomux):
        self.state = state
        self.env = dict(os.environ, CLUSTER_DIR=state, IOMUX=iomux)
        argv = ["taskset", "-c", str(CLUSTER_CPU), "bash", CLUSTER_SH, "http", str(backends), "--template", template]
        argv += ["--backend", "nginx"] if server == "nginx" else ["--model", server]
        self.command = " ".join(argv)
        # Whatever goes wrong from here, nothing of this cluster is left running.
        try:
            started = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
            if started.returncode != 0:
                raise RuntimeError(f"cluster.sh did not start the cluster: {started.stderr.strip()[-600:]}")
            self.front = started.stdout.strip().splitlines()[-1]
            self.haproxy = int(self.read("balancer.pid"))
            self.backends = [int(self.read(f"backend-{i}.pid")) for i in range(1, backends + 1)]
        except (RuntimeError, subprocess.SubprocessError, OSError, ValueError) as e:
            self.stop()
            raise RuntimeError(str(e)) from e

    def read(self, name):
        with open(os.path.join(self.state, name)) as f:
            return f.read().strip()

    def stop(self):
        subprocess.run(["bash", CLUSTER_SH, "stop"], env=self.env, capture_output=True, text=True, timeout=120)


def one_run(args, server, backends, template, scratch, run_no):
    state = os.path.join(scratch, f"{server}-{backends}-{run_no}")
    rec = {"server": server, "backends": backends, "run": run_no, "status": "failed"}
    try:
        cluster = Cluster(state, server, backends, template, args.iomux)
    except RuntimeError as e:
        rec["error"] = str(e)
        return rec
    try:
        rec["cluster_command"] = cluster.command
        if args.haproxy_cpu != CLUSTER_CPU:
            subprocess.run(["taskset", "-a", "-p", "-c", str(args.haproxy_cpu), str(cluster.haproxy)],
                           check=True, capture_output=True)
        rec["haproxy_cpus"] = affinity_of(cluster.haproxy)
        rec["backend_cpus"] = sorted({c for p in cluster.backends for c in (affinity_of(p) or [])})
        rec["haproxy_threads"] = threads_of(cluster.haproxy)
        url = f"http://{cluster.front}/plaintext"
        pin = ["taskset", "-c", str(WRK_CPU)]
        warm = subprocess.run(pin + ["wrk", "-t1", f"-c{args.connections}", f"-d{WARMUP_S}s", url],
                              capture_output=True, text=True, timeout=60)
        if warm.returncode != 0:
            rec["error"] = f"the warm-up wrk failed: {warm.stderr.strip()}"
            return rec
        wrk = pin + ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url]
        rec["wrk_command"] = " ".join(wrk)
        pids = [cluster.haproxy] + cluster.backends
        before = [cpu_seconds(p) for p in pids]
        times_before = cpu_times()
        t0 = time.monotonic()
        code, out, err = run_wrk(wrk)
        wall = time.monotonic() - t0
        times_after = cpu_times()
        after = [cpu_seconds(p) for p in pids]
        if None in before or None in after:
            rec["error"] = "a process of the cluster exited during the run"
            return rec
        report = parse_wrk(out)
        if code != 0 or report is None:
            rec["error"] = f"wrk exited with {code}: {err.strip()}"
            return rec
        used = [a - b for a, b in zip(after, before)]
        rec.update(report)
        rec["wall_s"] = wall
        rec["haproxy_cpu_s"] = used[0]
        rec["backend_cpu_s"] = used[1:]
        n = report["requests"]
        rec["haproxy_us_per_req"] = used[0] * 1e6 / n
        rec["backends_us_per_req"] = sum(used[1:]) * 1e6 / n
        # CPU 0's load: what the pinned cluster used of the wall time of the run (100%: the core
        # was never idle). With HAProxy on CPU 1 it is the backends only.
        on_cpu0 = sum(used[1:]) + (used[0] if args.haproxy_cpu == CLUSTER_CPU else 0)
        rec["cpu0_busy_pct"] = on_cpu0 / wall * 100
        # Each CPU's whole load over the run, whoever used it: what CPU 0 did besides the
        # cluster is other programs (or softirq work the kernel charged to no process).
        rec["cpu_total_busy_pct"] = {str(c): (busy(times_after[c]) - busy(times_before[c])) / wall * 100
                                     for c in (CLUSTER_CPU, WRK_CPU)}
        rec["cpu_columns_pct"] = {str(c): {k: (times_after[c][k] - times_before[c][k]) / wall * 100
                                           for k in CPU_COLUMNS}
                                  for c in (CLUSTER_CPU, WRK_CPU)}
        rec["haproxy_share_pct"] = used[0] / sum(used) * 100 if sum(used) > 0 else None
        bad = report["socket_errors"] + report["non_2xx_3xx"]
        rec["status"] = "ok" if bad == 0 else "errors"
        if bad:
            rec["error"] = f"{report['socket_errors']} socket errors, {report['non_2xx_3xx']} non-2xx/3xx"
        return rec
    except (subprocess.SubprocessError, OSError) as e:
        rec["status"] = "failed"
        rec["error"] = str(e)
        return rec
    finally:
        cluster.stop()


def median_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    med = statistics.median(values)
    spread = (max(values) - min(values)) / med if len(values) > 1 and med > 0 else None
    return med, spread


def label(server):
    return "nginx" if server == "nginx" else f"iomux {server}"


def summarize(runs, servers, backend_counts):
    cells = []
    for n in backend_counts:
        for server in servers:
            measured = [r for r in runs if r["server"] == server and r["backends"] == n and r["status"] != "failed"]
            cell = {"server": server, "backends": n, "runs": len(measured),
                    "failed": sum(1 for r in runs if r["server"] == server and r["backends"] == n and r["status"] == "failed"),
                    "with_errors": sum(1 for r in measured if r["status"] == "errors")}
            for key in ("rps", "backends_us_per_req", "haproxy_us_per_req", "cpu0_busy_pct", "haproxy_share_pct", "p99_ms"):
                cell[key], cell[key + "_spread"] = median_spread([r.get(key) for r in measured])
            cell["cpu0_total_busy_pct"], _ = median_spread([r["cpu_total_busy_pct"]["0"] for r in measured])
            cell["cpu1_total_busy_pct"], _ = median_spread([r["cpu_total_busy_pct"]["1"] for r in measured])
            cells.append(cell)
    for cell in cells:
        if cell["server"] == "nginx":
            continue
        nginx = next((c for c in cells if c["server"] == "nginx" and c["backends"] == cell["backends"]), None)
        if nginx and nginx["backends_us_per_req"] and cell["backends_us_per_req"]:
            cell["backends_cpu_vs_nginx"] = cell["backends_us_per_req"] / nginx["backends_us_per_req"]
            cell["rps_vs_nginx"] = cell["rps"] / nginx["rps"]
    return cells


def pct(spread):
    return "" if spread is None else f" ({spread * 100:.0f}%)"


def table(cells):
    """The Markdown table: one row per cell, medians, each metric's spread in parentheses."""
    rows = ["| backends | server | req/s | backends' CPU µs/req | HAProxy CPU µs/req | HAProxy's share | "
            "CPU 0: cluster / all | backends' CPU/req vs nginx | runs |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in cells:
        if not c["runs"]:
            rows.append(f"| {c['backends']} | {label(c['server'])} | not measured | | | | | | 0 ({c['failed']} failed) |")
            continue
        ratio = f"**{c['backends_cpu_vs_nginx']:.2f}×**" if c.get("backends_cpu_vs_nginx") else ""
        runs = f"{c['runs']}" + (f", {c['with_errors']} with errors" if c["with_errors"] else "") + \
            (f", {c['failed']} failed" if c["failed"] else "")
        rows.append(f"| {c['backends']} | {label(c['server'])} | {c['rps']:,.0f}{pct(c['rps_spread'])} | "
                    f"{c['backends_us_per_req']:.2f}{pct(c['backends_us_per_req_spread'])} | "
                    f"{c['haproxy_us_per_req']:.2f}{pct(c['haproxy_us_per_req_spread'])} | "
                    f"{c['haproxy_share_pct']:.0f}% | {c['cpu0_busy_pct']:.0f}% / {c['cpu0_total_busy_pct']:.0f}% | "
                    f"{ratio} | {runs} |")
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="passes over every cell (default 5)")
    ap.add_argument("--duration", type=int, default=5, help="wrk -d, seconds (default 5)")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    ap.add_argument("--backends", default="1,2,3", help="backend counts (default 1,2,3)")
    ap.add_argument("--servers", default="epoll,nginx,uring",
                    help="iomux models and/or nginx, comma-separated (default epoll,nginx,uring)")
    ap.add_argument("--haproxy-cpu", type=int, choices=(0, 1), default=0,
                    help="0: HAProxy with the backends on CPU 0 (default); 1: with wrk on CPU 1")
    ap.add_argument("--out", default="results/cluster", help="where results.json and summary.md go")
    ap.add_argument("--iomux", default=os.environ.get("IOMUX", os.path.join(ROOT, "build", "iomux")))
    args = ap.parse_args()

    for tool in ("haproxy", "nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            die(f"{tool} not found (scripts/install-deps.sh installs it)", EXIT_SKIP)
    if not os.access(args.iomux, os.X_OK):
        die(f"{args.iomux} is not an executable (build it, or pass --iomux)")
    if not {CLUSTER_CPU, WRK_CPU} <= os.sched_getaffinity(0):
        die(f"CPUs {CLUSTER_CPU} and {WRK_CPU} must both be usable", EXIT_SKIP)
    servers = args.servers.split(",")
    backend_counts = [int(n) for n in args.backends.split(",")]
    os.makedirs(args.out, exist_ok=True)

    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    with tempfile.TemporaryDirectory(prefix="iomux-cluster-bench-") as scratch:
        template = os.path.join(scratch, "haproxy.cfg")
        write_template(template)
        total = args.runs * len(backend_counts) * len(servers)
        for run_no in range(1, args.runs + 1):
            for n in backend_counts:
                for server in servers:
                    rec = one_run(args, server, n, template, scratch, run_no)
                    runs.append(rec)
                    if rec["status"] == "failed":
                        line = "FAILED: " + rec.get("error", "")
                    else:
                        line = (f"{rec['rps']:>9,.0f} req/s  backends {rec['backends_us_per_req']:5.2f} µs/req  "
                                f"haproxy {rec['haproxy_us_per_req']:5.2f} µs/req  CPU 0 {rec['cpu0_busy_pct']:3.0f}%"
                                + (f"  ! {rec['error']}" if rec["status"] == "errors" else ""))
                    print(f"[{len(runs):>2}/{total}] pass {run_no}  {label(server):<12} x{n}  {line}", flush=True)
        with open(template) as f:
            template_text = f.read()
    finished = datetime.datetime.now(datetime.timezone.utc)

    cells = summarize(runs, servers, backend_counts)
    versions = {}
    for name, argv in (("haproxy", ["haproxy", "-v"]), ("nginx", ["nginx", "-v"]), ("wrk", ["wrk", "-v"])):
        p = subprocess.run(argv, capture_output=True, text=True)
        versions[name] = ((p.stdout or p.stderr).strip().splitlines() or [""])[0]
    command = " ".join([os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    results = {"command": command, "started_at": started.isoformat(timespec="seconds"),
               "finished_at": finished.isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "loadavg_end": open("/proc/loadavg").read().split()[:3], "versions": versions,
               "haproxy_cpu": args.haproxy_cpu, "wrk_cpu": WRK_CPU, "backend_cpu": CLUSTER_CPU,
               "connections": args.connections, "duration_s": args.duration, "haproxy_template": template_text,
               "cells": cells, "runs": runs}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    where = "HAProxy and the backends on CPU 0" if args.haproxy_cpu == CLUSTER_CPU else \
        "the backends on CPU 0, HAProxy on CPU 1 with wrk"
    md = (f"`{command}`, {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC: wrk -t1 -c{args.connections} "
          f"-d{args.duration}s on CPU 1, {where}; medians of {args.runs} interleaved runs, in parentheses "
          f"the spread, (max - min) / median; load average after: {' '.join(results['loadavg_end'])}.\n\n"
          + table(cells))
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(md)
    print()
    print(md, end="")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
