// `iomux shootout`: every IO model and every peer server through one benchmark matrix, and
// iomux's RESP and HTTP servers against redis-server, nginx and h2o under their own benchmark
// tools (the "real servers"), written up as results.json, summary.md and PNG charts. The work is
// in apps/shootout (iomux_shootout), which drives the load generator (apps/loadgen).

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "interrupt_guard.hpp"
#include "iomux/models.hpp"
#include "iomux/shootout/charts.hpp"
#include "iomux/shootout/plan.hpp"
#include "iomux/shootout/real_report.hpp"
#include "iomux/shootout/real_runner.hpp"
#include "iomux/shootout/real_servers.hpp"
#include "iomux/shootout/report.hpp"
#include "iomux/shootout/runner.hpp"

namespace iomux::cli {
namespace {

namespace fs = std::filesystem;

struct ShootoutArgs {
  shootout::PlanOptions plan;
  std::vector<std::string> models, peers;
  double duration_s = 0, warmup_s = -1, budget_s = -1;
  std::string out = "results";
  std::string gp_dir;
  bool no_pin = false;
  bool dry_run = false;
  bool real_only = false;                  // --real-servers-only: skip the matrix
  bool no_real = false;                    // --no-real-servers
  std::vector<std::string> real_sections;  // --real-servers resp,http,proxy (implies --real-servers-only)
};

// Writes `text` to `path` through a temporary file, so a reader never sees half a file.
void write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << text;
    if (!f) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

// What one invocation measures: the matrix, the real servers, or both (in that order in the
// reports; the real servers run first, see below).
struct Parts {
  std::optional<shootout::Plan> matrix;
  std::optional<shootout::RealPlan> real;
  shootout::ShootoutRun matrix_run;
  std::vector<shootout::CellSummary> matrix_cells;
  shootout::RealShootoutRun real_run;
  std::vector<shootout::RealCellSummary> real_cells;
};

nlohmann::json results_of(const Parts& p) {
  nlohmann::json j;
  if (p.matrix) {
    // Before the matrix has run (results.json rewritten during the real servers' runs) its
    // summaries are not there yet: summarize what there is, nothing.
    j = shootout::results_json(*p.matrix, p.matrix_run, shootout::summarize(*p.matrix, p.matrix_run.runs));
  } else {
    j["tool"] = "iomux shootout";
    j["started_at"] = p.real_run.started_at;
    j["finished_at"] = p.real_run.finished_at;
    j["elapsed_s"] = p.real_run.elapsed_s;
    j["cancelled"] = p.real_run.cancelled;
  }
  if (p.real) j["real_servers"] = shootout::real_results_json(*p.real, p.real_run, p.real_cells);
  return j;
}

void print_dry_run(const ShootoutArgs& a, const Parts& p) {
  if (p.matrix) {
    fmt::print("{}", shootout::describe_plan(*p.matrix));
    fmt::print("cells (server, workload, active connections, idle), in run order:\n");
    for (const auto& c : p.matrix->cells)
      fmt::print("  {}  {}\n", shootout::describe_cell(*p.matrix, c),
                 c.runnable() ? fmt::format("~{:.1f} s per run", shootout::estimate_run_s(c)) : c.skip);
  }
  if (p.real) {
    fmt::print("{}", shootout::describe_real_plan(*p.real));
    fmt::print("real-server cells (protocol, server, load), one pass in run order:\n");
    for (const auto& c : p.real->cells)
      fmt::print("  {}  {}\n", shootout::describe_real_cell(*p.real, c),
                 c.runnable() ? fmt::format("~{:.1f} s per run", shootout::estimate_real_run_s(*p.real, c)) : c.skip);
  }
  if (p.matrix && p.real)
    fmt::print(
        "the real servers run first (~{:.1f} min); the matrix's later passes get what is left of the "
        "{:.1f} min budget\n",
        shootout::estimate_real_plan_s(*p.real) / 60, p.matrix->budget_s / 60);
  fmt::print("output: {}/results.json, {}/summary.md, {}/*.png\n", a.out, a.out, a.out);
  const std::string gp = shootout::find_gp_dir(a.gp_dir);
  fmt::print("gnuplot scripts: {}\n", gp.empty() ? "not found (charts would not be rendered)" : gp);
}

int run_shootout_command(ShootoutArgs& a) {
  auto& opts = a.plan;
  if (!a.models.empty()) opts.models = a.models;
  if (!a.peers.empty()) opts.peers = a.peers;
  if (a.duration_s > 0) opts.duration_s = a.duration_s;
  if (a.warmup_s >= 0) opts.warmup_s = a.warmup_s;
  if (a.budget_s >= 0) opts.budget_s = a.budget_s;

  Parts parts;
  if (!a.real_sections.empty()) a.real_only = true;
  try {
    if (!a.real_only) parts.matrix = shootout::make_plan(opts);
  } catch (const shootout::PlanError& e) {
    fmt::print(stderr, "iomux shootout: {}\n", e.what());
    return 2;
  }
  if (!a.no_real) {
    shootout::RealPlanOptions ro;
    ro.quick = opts.quick;
    ro.repeat = opts.repeat;
    if (!a.models.empty()) {
      for (const auto& m : a.models)
        if (m != "none" && !find_model(m)) {
          fmt::print(stderr, "iomux shootout: unknown model '{}' (see `iomux models`)\n", m);
          return 2;
        }
      ro.models = a.models;
    }
    ro.budget_s = opts.budget_s;
    if (!a.real_sections.empty()) ro.sections = a.real_sections;
    parts.real = shootout::make_real_plan(ro);
  }

  if (a.dry_run) {
    print_dry_run(a, parts);
    return 0;
  }

  const fs::path out_dir = a.out;
  try {
    fs::create_directories(out_dir);
  } catch (const fs::filesystem_error& e) {
    fmt::print(stderr, "iomux shootout: cannot create {}: {}\n", a.out, e.code().message());
    return 1;
  }
  if (parts.real) fmt::print(stderr, "{}", shootout::describe_real_plan(*parts.real));
  if (parts.matrix) fmt::print(stderr, "{}", shootout::describe_plan(*parts.matrix));
  fmt::print(stderr, "writing to {}/ (results.json is rewritten after every run)\n", a.out);

  // Ctrl-C / SIGTERM: stop the current run, then write the reports for what was measured.
  InterruptGuard interrupt_guard;
  auto line = [](const std::string& text) {
    fmt::print(stderr, "{}\n", text);
    std::fflush(stderr);
  };
  auto rewrite_results = [&] {
    try {
      write_file(out_dir / "results.json", results_of(parts).dump(2) + "\n");
    } catch (const std::exception&) {
      // The final write reports the problem.
    }
  };

  // The real servers first: their runs are the headline, and their time is known in advance, so
  // the matrix gets what is left of the budget (its first pass always runs).
  if (parts.real) {
    shootout::RealRunOptions ro;
    ro.pin = !a.no_pin;
    ro.cancel = &InterruptGuard::flag();
    ro.on_line = line;
    ro.on_record = [&](const std::vector<shootout::RealRunRecord>& runs) {
      parts.real_run.runs = runs;
      parts.real_run.cancelled = true;  // not finished yet
      parts.real_cells = shootout::summarize_real(*parts.real, runs);
      rewrite_results();
    };
    parts.real_run = shootout::run_real_servers(*parts.real, ro);
    parts.real_cells = shootout::summarize_real(*parts.real, parts.real_run.runs);
    for (const auto& n : parts.real_run.notes) line("real servers: " + n);
    if (parts.matrix && parts.matrix->budget_s > 0)
      parts.matrix->budget_s = std::max(0.0, parts.matrix->budget_s - parts.real_run.elapsed_s);
  }
  const bool interrupted = parts.real_run.cancelled || InterruptGuard::flag().load();
  if (parts.matrix && !interrupted) {
    shootout::RunOptions ro;
    ro.pin = !a.no_pin;
    ro.cancel = &InterruptGuard::flag();
    ro.on_line = line;
    ro.on_record = [&](const std::vector<shootout::RunRecord>& runs) {
      parts.matrix_run.runs = runs;
      parts.matrix_run.cancelled = true;  // not finished yet
      parts.matrix_cells = shootout::summarize(*parts.matrix, runs);
      rewrite_results();
    };
    parts.matrix_run = shootout::run_shootout(*parts.matrix, ro);
  } else if (parts.matrix) {
    parts.matrix_run.cancelled = true;
  }
  if (parts.matrix) parts.matrix_cells = shootout::summarize(*parts.matrix, parts.matrix_run.runs);

  const std::string gp_dir = shootout::find_gp_dir(a.gp_dir);
  shootout::ChartsOutcome charts, real_charts;
  if (parts.matrix) charts = shootout::write_charts(*parts.matrix, parts.matrix_cells, out_dir.string(), gp_dir);
  if (parts.real) real_charts = shootout::write_real_charts(*parts.real, parts.real_cells, out_dir.string(), gp_dir);
  const std::string real_md = parts.real
                                  ? shootout::real_summary_markdown(*parts.real, parts.real_run, parts.real_cells,
                                                                    real_charts.pngs, real_charts.note)
                                  : std::string();
  try {
    write_file(out_dir / "results.json", results_of(parts).dump(2) + "\n");
    std::string md;
    if (parts.matrix) {
      md = shootout::summary_markdown(*parts.matrix, parts.matrix_run, parts.matrix_cells, charts.pngs, charts.note,
                                      real_md);
    } else {
      md = "# iomux shootout: real servers\n\n" + real_md +
           "## Files\n\n- `results.json`: `real_servers` holds every run (the tools' parsed reports, the exact "
           "command lines) and the per-cell medians and ratios.\n- `data/real_*.dat`: the chart data.\n";
    }
    write_file(out_dir / "summary.md", md);
  } catch (const std::exception& e) {
    fmt::print(stderr, "iomux shootout: {}\n", e.what());
    return 1;
  }

  const double elapsed = parts.matrix_run.elapsed_s + parts.real_run.elapsed_s;
  const std::size_t runs = parts.matrix_run.runs.size() + parts.real_run.runs.size();
  const bool cancelled = parts.matrix_run.cancelled || parts.real_run.cancelled;
  fmt::print(stderr, "done in {:.1f} min{}: {} runs\n", elapsed / 60, cancelled ? " (interrupted)" : "", runs);
  if (parts.matrix && parts.matrix_run.skipped_for_budget > 0)
    fmt::print(stderr, "{} repeat runs of the matrix left out to stay within the time budget\n",
               parts.matrix_run.skipped_for_budget);
  if (parts.real && parts.real_run.skipped_for_budget > 0)
    fmt::print(stderr, "{} repeat runs of the real servers left out to stay within the time budget\n",
               parts.real_run.skipped_for_budget);
  for (const auto* note : {&charts.note, &real_charts.note})
    if (!note->empty()) fmt::print(stderr, "charts: {}\n", *note);
  fmt::print("{}\n", (out_dir / "summary.md").string());
  fmt::print("{}\n", (out_dir / "results.json").string());
  for (const auto& p : charts.pngs) fmt::print("{}\n", (out_dir / p).string());
  for (const auto& p : real_charts.pngs) fmt::print("{}\n", (out_dir / p).string());
  if (cancelled) return 130;
  const bool measured_any =
      std::any_of(parts.matrix_cells.begin(), parts.matrix_cells.end(),
                  [](const auto& c) { return c.has_numbers(); }) ||
      std::any_of(parts.real_cells.begin(), parts.real_cells.end(), [](const auto& c) { return c.has_numbers(); });
  return measured_any ? 0 : 1;
}

}  // namespace

void register_shootout(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ShootoutArgs>();
  CLI::App* sub = app.add_subcommand(
      "shootout",
      "Benchmark every IO model and every peer server (bench/peers) through a matrix of connections, idle "
      "connections and workloads, and iomux's RESP and HTTP servers against redis-server, nginx and h2o under "
      "redis-benchmark and wrk, and TCP proxies (HAProxy, nginx stream) in front of redis-server; write "
      "results.json, summary.md and charts.");
  sub->footer(
      "The default plan (see --dry-run) takes 13-15 minutes on 2 CPUs (a time budget caps it); --quick about 3.\n"
      "The real servers run first; servers or tools not installed are skipped with a note "
      "(scripts/install-deps.sh --bench installs them).\n"
      "Examples:\n"
      "  iomux shootout --out results                      what `make bench` runs\n"
      "  iomux shootout --quick --out /tmp/quick\n"
      "  iomux shootout --real-servers-only --out /tmp/real\n"
      "  iomux shootout --real-servers proxy --out /tmp/proxy\n"
      "  iomux shootout --models epoll,uring --peers floor_epoll --repeat 5\n"
      "Exit status: 0 when done (cells that failed are part of the results), 1 when nothing could be "
      "measured, 2 for bad options, 130 when interrupted (the reports cover what was measured).");
  sub->add_option("-o,--out", args->out, "Output directory")->capture_default_str();
  sub->add_flag("--quick", args->plan.quick, "A smaller plan: fewer models and points, 1 repeat, short runs");
  sub->add_option("--models", args->models,
                  "Models to measure, comma-separated (default: every available one in "
                  "the matrix, epoll,epoll-et,uring,poll,threaded against the real servers; "
                  "`none` for peers only)")
      ->delimiter(',');
  sub->add_option("--peers", args->peers,
                  "Peers to measure, comma-separated, e.g. floor_epoll,libuv (default: every "
                  "peer_* found; `none` for none)")
      ->delimiter(',');
  sub->add_option("--peers-dir", args->plan.peers_dir,
                  "Where the peer_* servers are (default: <dir of this executable>/bench/peers)");
  sub->add_option("--repeat", args->plan.repeat,
                  "Runs per cell, real servers too; the median is reported (default 3, --quick 1)")
      ->check(CLI::Range(1, 100));
  sub->add_option(
         "-d,--duration", args->duration_s,
         "Measured seconds per run, every cell (default 0.5, and 1.5 from 5,000 active connections; --quick 0.3 / 1)")
      ->check(kPositive);
  sub->add_option(
         "--warmup", args->warmup_s,
         "Warmup seconds per run, every cell (default 0.25, and 1.5 from 5,000 active connections; --quick 0.2 / 1)")
      ->check(kNonNegative);
  sub->add_option("--budget", args->budget_s,
                  "Wall-clock budget in seconds for the whole command: repeats beyond the first pass stop when it "
                  "would be exceeded; the matrix gets what the real servers leave (default 870, --quick 180; 0 = none)")
      ->check(kNonNegative);
  sub->add_flag("--no-pin", args->no_pin, "Do not pin the servers (CPU 0) and the load generator (CPU 1)");
  sub->add_option("--gp-dir", args->gp_dir, "Where the gnuplot scripts are (default: found automatically)");
  sub->add_flag("--dry-run", args->dry_run, "Print the plan and every cell, run nothing");
  auto* real_only = sub->add_flag("--real-servers-only", args->real_only,
                                  "Only the real servers: RESP vs redis-server (redis-benchmark), HTTP vs nginx and "
                                  "h2o (wrk), TCP proxies vs HAProxy and nginx stream (redis-benchmark)");
  auto* no_real = sub->add_flag("--no-real-servers", args->no_real, "Only the matrix, without the real servers");
  auto* sections = sub->add_option("--real-servers", args->real_sections,
                                   "Only these real-server sections, comma-separated: resp (vs redis-server), http (vs "
                                   "nginx and h2o), proxy (vs HAProxy and nginx stream); implies --real-servers-only")
                       ->delimiter(',')
                       ->check(CLI::IsMember(shootout::kRealSections));
  real_only->excludes(no_real);
  sections->excludes(no_real);
  sub->callback([args, &exit_code] { exit_code = run_shootout_command(*args); });
}

}  // namespace iomux::cli
