#include "iomux/shootout/real_report.hpp"
#include "iomux/shootout/text.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "iomux/shootout/plan.hpp"
#include "iomux/shootout/report.hpp"

namespace iomux::shootout {
namespace {

using nlohmann::json;

json opt(const std::optional<double>& v) {
  return v ? json(*v) : json(nullptr);
}

std::string format_cpu(double us) {
  return us >= 10 ? fmt::format("{:.1f}", us) : fmt::format("{:.2f}", us);
}

std::string format_ratio(const std::optional<double>& r) {
  return r ? fmt::format("{:.2f}×", *r) : "–";
}

const RealCellSummary* summary_of(const RealPlan& plan, const std::vector<RealCellSummary>& sums, std::size_t section,
                                  std::size_t server, std::size_t load) {
  const auto i = plan.find_cell(section, server, load);
  return i ? &sums[*i] : nullptr;
}

const RealCellSummary* summary_of(const RealPlan& plan, const std::vector<RealCellSummary>& sums, std::size_t section,
                                  const std::string& server, std::size_t load) {
  const auto s = plan.sections[section].find_server(server);
  return s ? summary_of(plan, sums, section, *s, load) : nullptr;
}

std::optional<double> ratio_of(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

// What a cell without numbers shows.
std::string no_numbers(const RealCellSummary& s) {
  if (s.status == "skipped") return md_escape(s.reason);
  if (s.status == "failed") return "failed (see Problems)";
  if (s.status == "not run") return "not run";
  return "–";
}

}  // namespace

std::optional<double> RealCellSummary::cpu_spread() const {
  if (cpu_runs.size() < 2 || !cpu_us_per_req || *cpu_us_per_req <= 0) return std::nullopt;
  const auto [lo, hi] = std::minmax_element(cpu_runs.begin(), cpu_runs.end());
  return (*hi - *lo) / *cpu_us_per_req;
}

std::vector<RealCellSummary> summarize_real(const RealPlan& plan, const std::vector<RealRunRecord>& runs) {
  std::vector<RealCellSummary> out(plan.cells.size());
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    RealCellSummary& s = out[i];
    if (!plan.cells[i].runnable()) {
      s.status = "skipped";
      s.reason = plan.cells[i].skip;
      continue;
    }
    std::vector<double> rps, cpu, pct, user;
    std::string first_error;
    for (const RealRunRecord& r : runs) {
      if (r.cell != i) continue;
      ++s.runs;
      if (r.status != "ok") ++s.problem_runs;
      if (!r.error.empty() && first_error.empty()) first_error = r.error;
      if (r.status == "failed") continue;
      ++s.measured;
      if (r.rps) rps.push_back(*r.rps);
      if (r.server_cpu_us_per_req) {
        cpu.push_back(*r.server_cpu_us_per_req);
        s.cpu_runs.push_back(*r.server_cpu_us_per_req);
      }
      if (r.server_cpu_pct) pct.push_back(*r.server_cpu_pct);
      if (r.server_user_s && r.server_cpu_s && *r.server_cpu_s > 0) user.push_back(*r.server_user_s / *r.server_cpu_s);
    }
    if (s.runs == 0) {
      s.status = "not run";
      s.reason = "not run (time budget or interrupted)";
      continue;
    }
    if (s.measured == 0) {
      s.status = "failed";
      s.reason = first_error;
      continue;
    }
    s.status = s.problem_runs > 0 ? "errors" : "ok";
    s.reason = first_error;
    if (!rps.empty()) s.rps = median(rps);
    if (!cpu.empty()) s.cpu_us_per_req = median(cpu);
    if (!pct.empty()) s.server_cpu_pct = median(pct);
    if (!user.empty()) s.user_share = median(user);
  }
  return out;
}

std::optional<double> real_cpu_ratio(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                     std::size_t section, std::size_t server, std::size_t load,
                                     const std::string& against) {
  const RealCellSummary* me = summary_of(plan, sums, section, server, load);
  const RealCellSummary* base = summary_of(plan, sums, section, against, load);
  if (!me || !base || !me->has_numbers() || !base->has_numbers()) return std::nullopt;
  return ratio_of(me->cpu_us_per_req, base->cpu_us_per_req);
}

std::optional<double> real_rps_ratio(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                     std::size_t section, std::size_t server, std::size_t load,
                                     const std::string& against) {
  const RealCellSummary* me = summary_of(plan, sums, section, server, load);
  const RealCellSummary* base = summary_of(plan, sums, section, against, load);
  if (!me || !base || !me->has_numbers() || !base->has_numbers()) return std::nullopt;
  return ratio_of(me->rps, base->rps);
}

std::vector<TargetVerdict> judge_targets(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                         std::size_t section) {
  std::vector<TargetVerdict> out;
  const RealSection& sec = plan.sections[section];
  for (const RealTarget& t : sec.targets) {
    TargetVerdict v;
    v.target = t;
    const auto server = sec.find_server(t.server);
    const auto load = sec.find_load(t.load);
    if (server && load) v.ratio = real_cpu_ratio(plan, sums, section, *server, *load, t.against);
    v.verdict = v.ratio ? (*v.ratio <= t.max_ratio ? "met" : "missed")
                        : (sec.targets_note.empty() ? "not measured" : sec.targets_note);
    out.push_back(std::move(v));
  }
  return out;
}

json real_results_json(const RealPlan& plan, const RealShootoutRun& run, const std::vector<RealCellSummary>& sums) {
  json j;
  j["started_at"] = run.started_at;
  j["finished_at"] = run.finished_at;
  j["elapsed_s"] = std::round(run.elapsed_s * 10) / 10;
  j["cancelled"] = run.cancelled;
  j["loadavg_start"] = run.loadavg_start;
  j["loadavg_end"] = run.loadavg_end;
  j["pinned"] = run.pinned;
  j["quick"] = plan.quick;
  j["repeat"] = plan.repeat;
  j["budget_s"] = plan.budget_s;
  j["estimated_s"] = std::round(estimate_real_plan_s(plan));
  j["passes_started"] = run.passes_started;
  j["runs_left_out_for_budget"] = run.skipped_for_budget;
  j["versions"] = run.versions;
  j["notes"] = plan.notes;
  for (const auto& n : run.notes) j["notes"].push_back(n);
  j["method"] =
      "Each run starts the server afresh pinned to CPU 0 and runs the tool once on CPU 1. Server CPU = user + "
      "system time of the server's process tree from /proc/PID/stat, read just before and just after the tool's "
      "run; per request = that / the requests the tool counted. Medians over the runs; ratios are medians over "
      "medians from the same shootout run.";

  for (std::size_t sec = 0; sec < plan.sections.size(); ++sec) {
    const RealSection& s = plan.sections[sec];
    json o;
    o["title"] = s.title;
    o["tool"] = s.tool;
    o["tool_path"] = s.tool_program.empty() ? json(nullptr) : json(s.tool_program);
    o["baseline"] = s.baseline;
    o["also_against"] = s.also_against;
    o["skip"] = s.skip.empty() ? json(nullptr) : json(s.skip);
    json servers = json::array();
    for (const auto& v : s.servers)
      servers.push_back({{"name", v.name},
                         {"label", v.label()},
                         {"iomux", v.iomux},
                         {"path", v.program.empty() ? json(nullptr) : json(v.program)},
                         {"skip", v.skip.empty() ? json(nullptr) : json(v.skip)}});
    o["servers"] = servers;
    json loads = json::array();
    for (const auto& l : s.loads) {
      json lo = {{"key", l.key}, {"title", l.title}, {"clients", l.clients}};
      if (s.protocol != RealProtocol::http) {
        lo["test"] = l.test;
        lo["pipeline"] = l.pipeline;
        lo["requests"] = l.requests;
        if (l.value_bytes > 0) lo["value_bytes"] = l.value_bytes;
      } else {
        lo["pipeline_depth"] = l.depth;
        lo["duration_s"] = l.duration_s;
      }
      loads.push_back(std::move(lo));
    }
    o["loads"] = loads;

    json runs = json::array();
    for (const RealRunRecord& r : run.runs) {
      const RealCell& c = plan.cells[r.cell];
      if (c.section != sec) continue;
      runs.push_back({{"server", s.servers[c.server].name},
                      {"load", s.loads[c.load].key},
                      {"repeat", r.repeat},
                      {"status", r.status},
                      {"error", r.error.empty() ? json(nullptr) : json(r.error)},
                      {"rps", opt(r.rps)},
                      {"requests", r.requests},
                      {"server_cpu_s", opt(r.server_cpu_s)},
                      {"server_user_s", opt(r.server_user_s)},
                      {"server_cpu_us_per_req", opt(r.server_cpu_us_per_req)},
                      {"server_cpu_pct", opt(r.server_cpu_pct)},
                      {"server_threads", r.server_threads ? json(*r.server_threads) : json(nullptr)},
                      {"tool_cpu_pct", opt(r.tool_cpu_pct)},
                      {"tool_wall_s", std::round(r.tool_wall_s * 1000) / 1000},
                      {"wall_s", std::round(r.wall_s * 1000) / 1000},
                      {"server_command", r.server_command},
                      {"tool_command", r.tool_command},
                      {"tool", r.tool}});
    }
    o["runs"] = runs;

    json cells = json::array();
    for (std::size_t i = 0; i < plan.cells.size(); ++i) {
      const RealCell& c = plan.cells[i];
      if (c.section != sec) continue;
      const RealCellSummary& m = sums[i];
      json ratios = json::object();
      std::vector<std::string> against = {s.baseline};
      against.insert(against.end(), s.also_against.begin(), s.also_against.end());
      for (const auto& a : against)
        ratios[a] = {{"server_cpu_us_per_req", opt(real_cpu_ratio(plan, sums, sec, c.server, c.load, a))},
                     {"rps", opt(real_rps_ratio(plan, sums, sec, c.server, c.load, a))}};
      cells.push_back({{"server", s.servers[c.server].name},
                       {"load", s.loads[c.load].key},
                       {"status", m.status},
                       {"reason", m.reason.empty() ? json(nullptr) : json(m.reason)},
                       {"runs", m.runs},
                       {"measured_runs", m.measured},
                       {"median",
                        {{"rps", opt(m.rps)},
                         {"server_cpu_us_per_req", opt(m.cpu_us_per_req)},
                         {"server_cpu_pct", opt(m.server_cpu_pct)},
                         {"server_user_share", opt(m.user_share)},
                         {"mb_per_cpu_s", opt(mb_per_cpu_s(s.loads[c.load], m.cpu_us_per_req))}}},
                       {"server_cpu_us_per_req_runs", m.cpu_runs},
                       {"server_cpu_spread", opt(m.cpu_spread())},
                       {"ratio_to", ratios}});
    }
    o["cells"] = cells;

    json targets = json::array();
    for (const TargetVerdict& v : judge_targets(plan, sums, sec))
      targets.push_back({{"server", v.target.server},
                         {"load", v.target.load},
                         {"against", v.target.against},
                         {"max_ratio", v.target.max_ratio},
                         {"ratio", opt(v.ratio)},
                         {"verdict", v.verdict}});
    o["targets"] = targets;
    j[s.key] = std::move(o);
  }
  return j;
}

std::string real_summary_markdown(const RealPlan& plan, const RealShootoutRun& run,
                                  const std::vector<RealCellSummary>& sums, const std::vector<std::string>& charts,
                                  const std::string& charts_note) {
  std::string md;
  auto add = [&md](const std::string& s) { md += s + "\n"; };
  add("## Real servers");
  add("");
  add(fmt::format("Run {} → {} ({:.1f} min{}); load average {} at the start, {} at the end.", run.started_at,
                  run.finished_at, run.elapsed_s / 60, run.cancelled ? ", **interrupted**" : "", run.loadavg_start,
                  run.loadavg_end));
  add("");
  add(fmt::format(
      "Each run starts the server afresh{} and runs the benchmark tool once{}. Server CPU per request is "
      "the server's user + system time (its process tree, from `/proc/PID/stat`, 10 ms ticks) over the "
      "tool's run, divided by the requests the tool counted. Cells show the **median** of {} run{} per "
      "cell, the runs of different servers interleaved (load by load, every server in turn); ratios "
      "divide medians measured in this same run.",
      run.pinned ? " pinned to CPU 0" : "", run.pinned ? " on CPU 1" : "", plan.repeat, plan.repeat == 1 ? "" : "s"));
  if (!run.versions.empty()) {
    std::vector<std::string> v;
    for (const auto& [k, line] : run.versions) v.push_back(fmt::format("`{}`", line));
    add("");
    add("Versions: " + fmt::format("{}", fmt::join(v, ", ")) + ".");
  }
  add("");
  add("```");
  md += describe_real_plan(plan);
  add(fmt::format("passes started: {} of {}; runs left out by the time budget: {}; runs made: {}", run.passes_started,
                  plan.repeat, run.skipped_for_budget, run.runs.size()));
  add("```");
  add("");

  for (std::size_t sec = 0; sec < plan.sections.size(); ++sec) {
    const RealSection& s = plan.sections[sec];
    add("### " + s.title);
    add("");
    if (!s.skip.empty()) {
      add("Not measured: " + s.skip + ".");
      add("");
      continue;
    }
    // The table: loads in plan order, the baseline first within each.
    std::vector<std::string> against = {s.baseline};
    against.insert(against.end(), s.also_against.begin(), s.also_against.end());
    const bool bulk = std::any_of(s.loads.begin(), s.loads.end(), [](const RealLoad& l) { return is_bulk(l); });
    const std::string who = s.protocol == RealProtocol::proxy ? "proxy" : "server";
    std::string head = fmt::format("| load | {0} | req/s | {0} µs/request | in user space | {0} CPU |", who);
    std::string rule = "|---|---|---:|---:|---:|---:|";
    if (bulk) {
      head += " MB per CPU-s |";
      rule += "---:|";
    }
    for (const auto& a : against) {
      head += fmt::format(" CPU/req × {} |", a);
      rule += "---:|";
    }
    head += " runs: µs/request (spread) |";
    rule += "---|";
    add(head);
    add(rule);
    std::vector<std::size_t> order;
    if (auto b = s.find_server(s.baseline)) order.push_back(*b);
    for (const auto& a : s.also_against)
      if (auto i = s.find_server(a)) order.push_back(*i);
    for (std::size_t v = 0; v < s.servers.size(); ++v)
      if (std::find(order.begin(), order.end(), v) == order.end()) order.push_back(v);
    for (std::size_t l = 0; l < s.loads.size(); ++l) {
      for (std::size_t v : order) {
        const auto i = plan.find_cell(sec, v, l);
        if (!i) continue;
        const RealCellSummary& m = sums[*i];
        std::string row = fmt::format("| {} | {} |", s.loads[l].title, s.servers[v].label());
        if (!m.has_numbers()) {
          row += " " + no_numbers(m) + " | | | |" + (bulk ? " |" : "");
          for (std::size_t k = 0; k < against.size(); ++k) row += " |";
          row += " |";
          add(row);
          continue;
        }
        row += fmt::format(" {}{} | {} | {} | {} |", format_rate(*m.rps), m.status == "errors" ? " ⚠" : "",
                           m.cpu_us_per_req ? format_cpu(*m.cpu_us_per_req) : "–",
                           m.user_share ? fmt::format("{:.0f}%", *m.user_share * 100) : "–",
                           m.server_cpu_pct ? fmt::format("{:.0f}%", *m.server_cpu_pct) : "–");
        if (bulk) {
          const auto mb = mb_per_cpu_s(s.loads[l], m.cpu_us_per_req);
          row += fmt::format(" {} |", mb && is_bulk(s.loads[l]) ? fmt::format("{:.0f}", *mb) : "–");
        }
        for (const auto& a : against) {
          const std::string r =
              s.servers[v].name == a ? std::string("1") : format_ratio(real_cpu_ratio(plan, sums, sec, v, l, a));
          row += fmt::format(" {} |", r);
        }
        std::vector<std::string> each;
        for (double c : m.cpu_runs) each.push_back(format_cpu(c));
        row += " " + fmt::format("{}", fmt::join(each, ", "));
        if (auto sp = m.cpu_spread()) row += fmt::format(" ({:.0f}%)", *sp * 100);
        row += " |";
        add(row);
      }
    }
    add("");
    add("*In user space*: the share of the server's CPU time spent outside the kernel (the rest is system "
        "calls, TCP and scheduling); *server CPU*: of one core, over the tool's run. `⚠`: the tool reported errors "
        "in some run (see *Problems* below). Spread = (max − min) / median of the runs' CPU per request.");
    if (s.protocol == RealProtocol::proxy)
      add("\nThe proxy is alone on CPU 0; redis-server (a fresh one per run) shares CPU 1 with redis-benchmark, and "
          "only the proxy's CPU time is counted. *MB per CPU-s*: megabytes (10^6 bytes) of values the proxy moved per "
          "second of its CPU time, for the 1 MiB loads; its ratio is the inverse of the CPU ratio.");
    add("");

    // The noise, in one line.
    std::vector<double> spreads;
    std::string worst;
    double worst_v = -1;
    for (std::size_t i = 0; i < plan.cells.size(); ++i) {
      if (plan.cells[i].section != sec) continue;
      if (auto sp = sums[i].cpu_spread()) {
        spreads.push_back(*sp);
        if (*sp > worst_v) {
          worst_v = *sp;
          worst = s.servers[plan.cells[i].server].label() + ", " + s.loads[plan.cells[i].load].title;
        }
      }
    }
    if (!spreads.empty())
      add(
          fmt::format("Run-to-run spread of server CPU per request over {} cells: median {:.0f}%, worst {:.0f}% "
                      "({}).",
                      spreads.size(), median(spreads) * 100, worst_v * 100, worst));
    add("");

    const auto verdicts = judge_targets(plan, sums, sec);
    if (!verdicts.empty()) {
      add(s.protocol == RealProtocol::proxy
              ? "Targets (proxy CPU per request, medians of this run; for the 1 MiB loads ≤ 1× HAProxy's CPU per "
                "request is ≥ HAProxy's MB per CPU-second):"
              : "Targets (server CPU per request, medians of this run):");
      add("");
      add("| server | load | against | target | measured | verdict |");
      add("|---|---|---|---:|---:|---|");
      for (const TargetVerdict& v : verdicts) {
        const auto load = s.find_load(v.target.load);
        add(fmt::format("| iomux {} | {} | {} | ≤ {:.2f}× | {} | {} |", v.target.server,
                        load ? s.loads[*load].title : v.target.load, v.target.against, v.target.max_ratio,
                        format_ratio(v.ratio), v.verdict == "missed" ? "**missed**" : v.verdict));
      }
      add("");
    }

    // Exact commands: each server's and each load's, from the first run that has them.
    std::vector<std::string> server_cmds, tool_cmds;
    std::vector<bool> seen_server(s.servers.size(), false), seen_load(s.loads.size(), false);
    for (const RealRunRecord& r : run.runs) {
      const RealCell& c = plan.cells[r.cell];
      if (c.section != sec) continue;
      if (!seen_server[c.server] && !r.server_command.empty()) {
        seen_server[c.server] = true;
        server_cmds.push_back(fmt::format("{:<14} {}", s.servers[c.server].label() + ":", r.server_command));
      }
      if (!seen_load[c.load] && !r.tool_command.empty()) {
        seen_load[c.load] = true;
        tool_cmds.push_back(fmt::format("{:<14} {}", s.loads[c.load].key + ":", r.tool_command));
      }
    }
    if (!server_cmds.empty()) {
      add("Commands of the first runs (the port changes from run to run; the config files are written from "
          "apps/shootout/real_servers.cpp; servers on CPU 0 and tools on CPU 1 through sched_setaffinity, like "
          "`taskset -c 0` / `taskset -c 1`):");
      add("");
      add("```");
      for (const auto& c : server_cmds) add(c);
      for (const auto& c : tool_cmds) add(c);
      add("```");
      add("");
    }
    const std::string png = "real_" + s.key + ".png";
    if (std::find(charts.begin(), charts.end(), png) != charts.end()) {
      add(fmt::format("![{}]({})", png, png));
      add("");
    }
  }
  if (!charts_note.empty()) {
    add(charts_note);
    add("");
  }

  add("### Real servers: problems and cells not measured");
  add("");
  bool any = false;
  for (std::size_t i = 0; i < plan.cells.size(); ++i) {
    const RealCellSummary& m = sums[i];
    if (m.status == "ok") continue;
    const RealCell& c = plan.cells[i];
    const RealSection& s = plan.sections[c.section];
    any = true;
    std::string what = m.status;
    if (m.status == "errors")
      what = fmt::format("measured ({} of {} runs clean), but", m.runs - m.problem_runs, m.runs);
    std::string why = first_line(m.reason);
    if (why.size() > 400) why = why.substr(0, 397) + "...";
    const bool says_status = why.rfind(m.status, 0) == 0;  // "skipped: ..." already says it
    add(fmt::format("- {} {}, {}: {}", s.key, s.servers[c.server].label(), s.loads[c.load].title,
                    says_status ? md_escape(why) : what + ": " + md_escape(why)));
  }
  if (!any) add("None.");
  add("");
  return md;
}

}  // namespace iomux::shootout
