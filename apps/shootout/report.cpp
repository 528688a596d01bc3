#include "iomux/shootout/report.hpp"
#include "iomux/shootout/text.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <thread>

#include <fmt/format.h>

namespace iomux::shootout {
namespace {

using nlohmann::json;

std::optional<double> median_of(const std::vector<RunRecord>& runs, const std::vector<std::size_t>& idx,
                                const std::function<std::optional<double>(const json&)>& get) {
  std::vector<double> v;
  for (std::size_t i : idx)
    if (auto x = get(runs[i].result)) v.push_back(*x);
  if (v.empty()) return std::nullopt;
  return median(std::move(v));
}

std::optional<double> number(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return std::nullopt;
  return j[key].get<double>();
}

std::string shorten(const std::string& s, std::size_t n) {
  if (s.size() <= n) return s;
  return s.substr(0, n - 3) + "...";
}

std::string kernel() {
  struct utsname u {};
  if (::uname(&u) != 0) return "?";
  return std::string(u.sysname) + " " + u.release + " " + u.machine;
}

std::string conn_header(std::size_t conns, std::size_t idle) {
  return idle == 0 ? grouped(conns) : fmt::format("{} + {} idle", grouped(conns), grouped(idle));
}

std::string format_mib(double kib) {
  return fmt::format("{:.1f} MiB", kib / 1024.0);
}

std::string format_kib(double kib) {
  if (kib >= 100) return fmt::format("{:.0f} KiB", kib);
  if (kib >= 10) return fmt::format("{:.1f} KiB", kib);
  return fmt::format("{:.2f} KiB", kib);
}

std::string format_us(double us) {
  if (us >= 1e6) return fmt::format("{:.2f} s", us / 1e6);
  if (us >= 1e4) return fmt::format("{:.1f} ms", us / 1e3);
  if (us >= 1e3) return fmt::format("{:.2f} ms", us / 1e3);
  return fmt::format("{:.0f} µs", us);
}

// A cell that has no numbers: what to print instead.
std::string no_numbers(const CellSummary& s) {
  if (s.status == "n/a") return md_escape(s.reason);
  if (s.status == "skipped") return "skipped (see notes)";
  if (s.status == "failed") {
    // "no request completed: 8,794 failed requests (8,794 closed by server)" -> the details.
    std::string why = first_line(s.reason);
    const std::string prefix = "no request completed: ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    return "failed: " + md_escape(shorten(why, 56));
  }
  if (s.status == "not run") return "not run";
  return "–";
}

// A table over some cells of the plan: rows = servers, one column per (connections, idle) point.
struct Column {
  std::size_t workload, connections, idle;
  std::string header;
};

std::string table(const Plan& plan, const std::vector<CellSummary>& sums, const std::vector<Column>& cols,
                  const std::function<std::string(std::size_t server, const Cell&, const CellSummary&)>& text) {
  std::string out = "| server |";
  std::string rule = "|---|";
  for (const Column& c : cols) {
    out += " " + c.header + " |";
    rule += "---:|";
  }
  out += "\n" + rule + "\n";
  for (std::size_t s = 0; s < plan.servers.size(); ++s) {
    std::string row = "| " + plan.servers[s].label() + " |";
    bool any = false;
    for (const Column& c : cols) {
      const auto i = plan.find_cell(s, c.workload, c.connections, c.idle);
      if (!i) {
        row += " |";
        continue;
      }
      any = true;
      row += " " + text(s, plan.cells[*i], sums[*i]) + " |";
    }
    if (any) out += row + "\n";
  }
  return out;
}

// The (connections, idle) points of one workload that the plan has, for the sweep tables:
// idle == 0 points sorted by connections.
std::vector<Column> conn_columns(const Plan& plan, std::size_t workload) {
  std::vector<std::size_t> conns;
  for (const Cell& c : plan.cells)
    if (c.workload == workload && c.idle == 0 && std::find(conns.begin(), conns.end(), c.connections) == conns.end())
      conns.push_back(c.connections);
  std::sort(conns.begin(), conns.end());
  std::vector<Column> cols;
  for (auto n : conns) cols.push_back({workload, n, 0, grouped(n)});
  return cols;
}

// The idle points at 100 active connections (the idle sweep and the 15k point).
std::vector<Column> idle_columns(const Plan& plan, std::size_t workload, std::size_t active) {
  std::vector<std::size_t> idle;
  bool has_idle = false;
  for (const Cell& c : plan.cells)
    if (c.workload == workload && c.connections == active) {
      if (std::find(idle.begin(), idle.end(), c.idle) == idle.end()) idle.push_back(c.idle);
      has_idle = has_idle || c.idle > 0;
    }
  if (!has_idle) return {};
  std::sort(idle.begin(), idle.end());
  std::vector<Column> cols;
  for (auto n : idle) cols.push_back({workload, active, n, grouped(n)});
  return cols;
}

std::string rate_and_cpu(const CellSummary& s) {
  if (!s.has_numbers()) return no_numbers(s);
  std::string t = format_rate(*s.rps) + " · " + (s.cpu_us_per_req ? fmt::format("{:.2f} µs", *s.cpu_us_per_req) : "–");
  if (s.status == "errors") t += " ⚠";
  return t;
}

std::optional<double> geomean(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  double sum = 0;
  for (double x : v) sum += std::log(x);
  return std::exp(sum / static_cast<double>(v.size()));
}

}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string format_rate(double rps) {
  if (rps >= 1e6) return fmt::format("{:.2f}M", rps / 1e6);
  if (rps >= 1e4) return fmt::format("{:.1f}k", rps / 1e3);
  if (rps >= 1e3) return fmt::format("{:.2f}k", rps / 1e3);
  return fmt::format("{:.0f}", rps);
}

std::optional<double> CellSummary::rss_per_conn_kib(const Cell& c) const {
  if (!rss_kib || c.open() == 0) return std::nullopt;
  return *rss_kib / static_cast<double>(c.open());
}

std::vector<CellSummary> summarize(const Plan& plan, const std::vector<RunRecord>& runs) {
  std::vector<CellSummary> out(plan.cells.size());
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    const Cell& cell = plan.cells[i];
    CellSummary& s = out[i];
    if (!cell.runnable()) {
      s.status = cell.skip.rfind("n/a", 0) == 0 ? "n/a" : "skipped";
      s.reason = cell.skip;
      continue;
    }
    std::vector<std::size_t> measured;
    std::string first_error;
    bool any_errors = false;
    for (std::size_t r = 0; r < runs.size(); ++r) {
      if (runs[r].cell != i) continue;
      ++s.runs;
      if (!runs[r].error.empty() && first_error.empty()) first_error = runs[r].error;
      if (runs[r].status != "ok") {
        any_errors = true;
        ++s.problem_runs;
      }
      if (!runs[r].result.is_null()) s.errors += runs[r].result.value("errors", std::uint64_t{0});
      if (runs[r].status != "failed") measured.push_back(r);
    }
    s.measured = static_cast<int>(measured.size());
    if (s.runs == 0) {
      s.status = "not run";
      s.reason = "not run (time budget or interrupted)";
      continue;
    }
    if (measured.empty()) {
      s.status = "failed";
      s.reason = first_error;
      continue;
    }
    s.status = any_errors ? "errors" : "ok";
    s.reason = first_error;
    s.rps = median_of(runs, measured, [](const json& j) { return number(j, "rps"); });
    s.cpu_us_per_req = median_of(runs, measured, [](const json& j) { return number(j, "server_cpu_us_per_req"); });
    s.server_cpu_pct = median_of(runs, measured, [](const json& j) { return number(j, "server_cpu_pct"); });
    s.rss_kib = median_of(runs, measured, [](const json& j) { return number(j, "server_rss_kib"); });
    s.p50_us = median_of(runs, measured, [](const json& j) { return number(j["latency_us"], "p50"); });
    s.p99_us = median_of(runs, measured, [](const json& j) { return number(j["latency_us"], "p99"); });
  }
  return out;
}

json results_json(const Plan& plan, const ShootoutRun& run, const std::vector<CellSummary>& cells) {
  json j;
  j["tool"] = "iomux shootout";
  j["started_at"] = run.started_at;
  j["finished_at"] = run.finished_at;
  j["elapsed_s"] = std::round(run.elapsed_s * 10) / 10;
  j["cancelled"] = run.cancelled;
  j["host"] = {{"kernel", kernel()},
               {"cpus", std::thread::hardware_concurrency()},
               {"loadavg_start", run.loadavg_start},
               {"loadavg_end", run.loadavg_end}};

  json servers = json::array();
  for (const auto& s : plan.servers)
    servers.push_back({{"name", s.name},
                       {"label", s.label()},
                       {"peer", s.peer},
                       {"path", s.peer ? json(s.peer_path) : json(nullptr)}});
  json slices = json::array();
  for (const auto& sl : plan.slices)
    slices.push_back({{"key", sl.key},
                      {"title", sl.title},
                      {"workload", workloads()[sl.workload].key},
                      {"connections", sl.connections},
                      {"idle", sl.idle},
                      {"only_servers", sl.only_servers}});
  j["plan"] = {{"quick", plan.quick},
               {"repeat", plan.repeat},
               {"budget_s", plan.budget_s},
               {"estimated_s", std::round(estimate_plan_s(plan))},
               {"passes_started", run.passes_started},
               {"runs_left_out_for_budget", run.skipped_for_budget},
               {"servers", servers},
               {"slices", slices},
               {"notes", plan.notes},
               {"cell_count", plan.cells.size()}};

  json runs = json::array();
  for (const RunRecord& r : run.runs) {
    const Cell& c = plan.cells[r.cell];
    const ServerSpec& s = plan.servers[c.server];
    const Workload& w = workloads()[c.workload];
    json o = r.result.is_null() ? json::object() : r.result;
    o["server"] = s.name;
    o["server_label"] = s.label();
    o["peer"] = s.peer;
    o["workload"] = w.key;
    o["workload_title"] = w.title;
    o["protocol"] = std::string(to_string(w.protocol));
    o["size"] = w.size;
    o["connections"] = c.connections;
    o["idle"] = c.idle;
    o["slices"] = c.slices;
    o["cell_warmup_s"] = c.warmup_s;
    o["cell_duration_s"] = c.duration_s;
    o["repeat"] = r.repeat;
    o["status"] = r.status;
    o["error"] = r.error.empty() ? json(nullptr) : json(r.error);
    o["wall_s"] = std::round(r.wall_s * 1000) / 1000;
    runs.push_back(std::move(o));
  }
  j["runs"] = std::move(runs);

  json out_cells = json::array();
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    const Cell& c = plan.cells[i];
    const CellSummary& s = cells[i];
    auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
    out_cells.push_back({{"server", plan.servers[c.server].name},
                         {"workload", workloads()[c.workload].key},
                         {"connections", c.connections},
                         {"idle", c.idle},
                         {"slices", c.slices},
                         {"status", s.status},
                         {"reason", s.reason.empty() ? json(nullptr) : json(s.reason)},
                         {"runs", s.runs},
                         {"measured_runs", s.measured},
                         {"errors", s.errors},
                         {"median",
                          {{"rps", opt(s.rps)},
                           {"server_cpu_us_per_req", opt(s.cpu_us_per_req)},
                           {"server_cpu_pct", opt(s.server_cpu_pct)},
                           {"p50_us", opt(s.p50_us)},
                           {"p99_us", opt(s.p99_us)},
                           {"server_rss_kib", opt(s.rss_kib)},
                           {"server_rss_kib_per_connection", opt(s.rss_per_conn_kib(c))}}}});
  }
  j["cells"] = std::move(out_cells);
  return j;
}

std::string summary_markdown(const Plan& plan, const ShootoutRun& run, const std::vector<CellSummary>& sums,
                             const std::vector<std::string>& charts, const std::string& charts_note,
                             const std::string& extra_sections) {
  std::string md;
  auto add = [&md](const std::string& s) { md += s + "\n"; };
  add("# iomux shootout");
  add("");
  add(fmt::format("Run {} → {} ({:.1f} min){}, {} with {} CPUs. Load average {} at the start, {} at the end.",
                  run.started_at, run.finished_at, run.elapsed_s / 60, run.cancelled ? ", **interrupted**" : "",
                  kernel(), std::thread::hardware_concurrency(), run.loadavg_start, run.loadavg_end));
  {
    const double load = std::atof(run.loadavg_start.c_str());
    if (load > static_cast<double>(std::thread::hardware_concurrency()) * 0.5)
      add("\n**The machine was busy** (load average above half the CPU count): other processes competed for "
          "both the server's and the load generator's CPU, so absolute numbers are noisy; ratios measured in the "
          "same run are more trustworthy than absolute values.");
  }
  add("");
  add("Every server is spawned fresh for every run, pinned to CPU 0; the load generator runs on CPU 1. Cells show "
      "the **median** over the repeats of requests/s and of server CPU time per request (user + system, from "
      "/proc, 10 ms ticks). `⚠` marks a cell where some requests failed (see *Problems*).");
  add("");
  add("## Plan");
  add("");
  add("```");
  md += describe_plan(plan);
  add(fmt::format("passes started: {} of {}; runs left out by the time budget: {}; runs made: {}", run.passes_started,
                  plan.repeat, run.skipped_for_budget, run.runs.size()));
  add("```");
  add("");

  const auto floor = plan.find_server(kFloorPeer);
  auto floor_summary = [&](const Cell& c) -> const CellSummary* {
    if (!floor) return nullptr;
    const auto i = plan.find_cell(*floor, c.workload, c.connections, c.idle);
    if (!i || !sums[*i].has_numbers()) return nullptr;
    return &sums[*i];
  };

  // Headline: each server against the floor at the 64 B ack, 100-connection point and over
  // the whole 64 B ack sweep.
  add("## Against the floor");
  add("");
  if (!floor) {
    add("`peer_floor_epoll` was not measured in this run, so there are no ratios.");
  } else {
    add("`peer_floor_epoll` is the least work a server can do per request (bench/peers/README.md). "
        "Ratios are taken against the floor measured in this same run; CPU/req below 1 × floor would mean less "
        "work than the floor (usually noise), req/s above 1 × floor more throughput.");
    add("");
    const auto ack_cols = conn_columns(plan, 0);
    for (std::size_t s = 0; s < plan.servers.size(); ++s) {
      if (s == *floor) continue;
      std::vector<double> cpu_r, rps_r;
      std::string at100;
      for (const Column& col : ack_cols) {
        const auto i = plan.find_cell(s, col.workload, col.connections, col.idle);
        if (!i || !sums[*i].has_numbers()) continue;
        const CellSummary* f = floor_summary(plan.cells[*i]);
        if (!f) continue;
        const CellSummary& me = sums[*i];
        std::optional<double> cr;
        if (me.cpu_us_per_req && f->cpu_us_per_req && *f->cpu_us_per_req > 0 && *me.cpu_us_per_req > 0)
          cr = *me.cpu_us_per_req / *f->cpu_us_per_req;
        const double rr = *f->rps > 0 ? *me.rps / *f->rps : 0;
        if (cr) cpu_r.push_back(*cr);
        if (rr > 0) rps_r.push_back(rr);
        if (col.connections == 100)
          at100 = fmt::format("CPU/req = {} × floor, req/s = {:.2f} × floor at 100 connections",
                              cr ? fmt::format("{:.2f}", *cr) : std::string("?"), rr);
      }
      const auto gc = geomean(cpu_r), gr = geomean(rps_r);
      if (at100.empty() && !gc) {
        add(fmt::format("- **{}**: no 64 B ack point measured alongside the floor", plan.servers[s].label()));
        continue;
      }
      std::string line = fmt::format("- **{}** (64 B ack): {}", plan.servers[s].label(),
                                     at100.empty() ? std::string("not measured at 100 connections") : at100);
      if (gc && gr)
        line +=
            fmt::format("; over {} points: CPU/req {:.2f} ×, req/s {:.2f} × (geometric means)", cpu_r.size(), *gc, *gr);
      add(line);
    }
  }
  add("");

  add("## Requests/s and server CPU per request, by workload");
  add("");
  for (std::size_t w = 0; w < workloads().size(); ++w) {
    const auto cols = conn_columns(plan, w);
    if (cols.empty()) continue;
    add(fmt::format("### {} (no idle connections): req/s · CPU µs/request, by active connections",
                    workloads()[w].title));
    add("");
    md += table(plan, sums, cols, [](std::size_t, const Cell&, const CellSummary& s) { return rate_and_cpu(s); });
    add("");
  }

  add("## p99 latency, by workload");
  add("");
  for (std::size_t w = 0; w < workloads().size(); ++w) {
    const auto cols = conn_columns(plan, w);
    if (cols.empty()) continue;
    add(fmt::format("### {}: p99 latency by active connections", workloads()[w].title));
    add("");
    md += table(plan, sums, cols, [](std::size_t, const Cell&, const CellSummary& s) {
      if (!s.has_numbers() || !s.p99_us) return no_numbers(s);
      return format_us(*s.p99_us) + (s.status == "errors" ? " ⚠" : "");
    });
    add("");
  }

  const auto idle_cols = idle_columns(plan, 0, 100);
  if (!idle_cols.empty()) {
    add("## Idle connections (64 B ack, 100 active)");
    add("");
    add("req/s · CPU µs/request, by idle connections held open besides the 100 active ones:");
    add("");
    md += table(plan, sums, idle_cols, [](std::size_t, const Cell&, const CellSummary& s) { return rate_and_cpu(s); });
    add("");
    add("An empty cell is a point the plan does not measure for that server.");
    add("");
  }

  {
    std::vector<Column> mem_cols = conn_columns(plan, 0);
    for (const Column& c : idle_cols)
      if (c.idle > 0) mem_cols.push_back({0, c.connections, c.idle, conn_header(c.connections, c.idle)});
    if (!mem_cols.empty()) {
      add("## Memory: server RSS (64 B ack)");
      add("");
      add("Resident set of the server at the end of the run, and that divided by the open connections (active + "
          "idle); at few connections it is mostly the process's baseline.");
      add("");
      md += table(plan, sums, mem_cols, [](std::size_t, const Cell& c, const CellSummary& s) {
        if (!s.has_numbers() || !s.rss_kib) return no_numbers(s);
        return format_mib(*s.rss_kib) + " (" + format_kib(*s.rss_per_conn_kib(c)) + "/conn)";
      });
      add("");
    }
  }

  if (floor) {
    add("## Ratios against the floor (same run)");
    add("");
    add("CPU/request ÷ floor's · req/s ÷ floor's, per cell.");
    add("");
    auto ratio_text = [&](std::size_t s, const Cell& c, const CellSummary& me) -> std::string {
      if (!me.has_numbers()) return no_numbers(me);
      if (s == *floor) return "1 (floor)";
      const CellSummary* f = floor_summary(c);
      if (!f) return "floor not measured";
      std::string cpu = "?";
      if (me.cpu_us_per_req && f->cpu_us_per_req && *f->cpu_us_per_req > 0)
        cpu = fmt::format("{:.2f}×", *me.cpu_us_per_req / *f->cpu_us_per_req);
      return fmt::format("CPU {} · req/s {:.2f}×", cpu, *f->rps > 0 ? *me.rps / *f->rps : 0.0);
    };
    for (std::size_t w = 0; w < workloads().size(); ++w) {
      const auto cols = conn_columns(plan, w);
      if (cols.empty()) continue;
      add(fmt::format("### {}, by active connections", workloads()[w].title));
      add("");
      md += table(plan, sums, cols, ratio_text);
      add("");
    }
    if (!idle_cols.empty()) {
      add("### 64 B ack, 100 active, by idle connections");
      add("");
      md += table(plan, sums, idle_cols, ratio_text);
      add("");
    }
  }

  md += extra_sections;

  add("## Charts");
  add("");
  if (charts.empty()) {
    add(charts_note.empty() ? std::string("No charts.") : charts_note);
  } else {
    for (const auto& c : charts) add(fmt::format("![{}]({})", c, c));
    if (!charts_note.empty()) add("\n" + charts_note);
  }
  add("");

  add("## Problems and cells not measured");
  add("");
  bool any = false;
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    const CellSummary& s = sums[i];
    if (s.status == "ok" || s.status == "n/a") continue;
    const Cell& c = plan.cells[i];
    any = true;
    std::string what = s.status;
    if (s.status == "errors")
      what = fmt::format("measured ({} of {} runs clean; {} failed requests in all), but", s.runs - s.problem_runs,
                         s.runs, grouped(s.errors));
    const std::string why = md_escape(shorten(first_line(s.reason), 300));
    const bool says_status = s.reason.rfind(s.status, 0) == 0;  // "skipped: ..." already says it
    add(fmt::format("- {}, {}, {}: {}", plan.servers[c.server].label(), workloads()[c.workload].title,
                    conn_header(c.connections, c.idle), says_status ? why : what + ": " + why));
  }
  std::vector<std::string> na;
  for (std::size_t i = 0; i < plan.cells.size(); ++i)
    if (sums[i].status == "n/a") {
      const std::string& name = plan.servers[plan.cells[i].server].label();
      if (std::find(na.begin(), na.end(), name) == na.end()) na.push_back(name);
    }
  for (const auto& n : na) {
    any = true;
    add(
        fmt::format("- {}: measured at 1 connection only; every other cell is n/a (it serves one client at a time, "
                    "the others wait in the listen queue)",
                    n));
  }
  if (!any) add("None.");
  add("");
  add("## Files");
  add("");
  add("- `results.json`: every run (all fields of `iomux bench --json` plus the cell's parameters, status and "
      "error) and the per-cell medians.");
  add("- `data/*.dat`: the chart data (gnuplot blocks, one per server); `data/*.gp` are the scripts used.");
  return md;
}

}  // namespace iomux::shootout
