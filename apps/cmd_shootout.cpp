// `iomux shootout`: every IO model and every peer server through one benchmark matrix, written
// up as results.json, summary.md and PNG charts. The work is in apps/shootout (iomux_shootout),
// which drives the load generator (apps/loadgen).

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "interrupt_guard.hpp"
#include "iomux/shootout/charts.hpp"
#include "iomux/shootout/plan.hpp"
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

int run_shootout_command(ShootoutArgs& a) {
  auto& opts = a.plan;
  if (!a.models.empty()) opts.models = a.models;
  if (!a.peers.empty()) opts.peers = a.peers;
  if (a.duration_s > 0) opts.duration_s = a.duration_s;
  if (a.warmup_s >= 0) opts.warmup_s = a.warmup_s;
  if (a.budget_s >= 0) opts.budget_s = a.budget_s;

  shootout::Plan plan;
  try {
    plan = shootout::make_plan(opts);
  } catch (const shootout::PlanError& e) {
    fmt::print(stderr, "iomux shootout: {}\n", e.what());
    return 2;
  }

  if (a.dry_run) {
    fmt::print("{}", shootout::describe_plan(plan));
    fmt::print("cells (server, workload, active connections, idle), in run order:\n");
    for (const auto& c : plan.cells)
      fmt::print("  {}  {}\n", shootout::describe_cell(plan, c),
                 c.runnable() ? fmt::format("~{:.1f} s per run", shootout::estimate_run_s(c)) : c.skip);
    fmt::print("output: {}/results.json, {}/summary.md, {}/*.png\n", a.out, a.out, a.out);
    const std::string gp = shootout::find_gp_dir(a.gp_dir);
    fmt::print("gnuplot scripts: {}\n", gp.empty() ? "not found (charts would not be rendered)" : gp);
    return 0;
  }

  const fs::path out_dir = a.out;
  try {
    fs::create_directories(out_dir);
  } catch (const fs::filesystem_error& e) {
    fmt::print(stderr, "iomux shootout: cannot create {}: {}\n", a.out, e.code().message());
    return 1;
  }
  fmt::print(stderr, "{}", shootout::describe_plan(plan));
  fmt::print(stderr, "writing to {}/ (results.json is rewritten after every run)\n", a.out);

  // Ctrl-C / SIGTERM: stop the current run, then write the reports for what was measured.
  InterruptGuard interrupt_guard;

  shootout::RunOptions ro;
  ro.pin = !a.no_pin;
  ro.cancel = &InterruptGuard::flag();
  ro.on_line = [](const std::string& line) {
    fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
  };
  ro.on_record = [&](const std::vector<shootout::RunRecord>& runs) {
    shootout::ShootoutRun partial;
    partial.runs = runs;
    partial.cancelled = true;  // not finished yet
    try {
      write_file(out_dir / "results.json",
                 shootout::results_json(plan, partial, shootout::summarize(plan, runs)).dump(2) + "\n");
    } catch (const std::exception&) {
      // The final write reports the problem.
    }
  };

  const shootout::ShootoutRun run = shootout::run_shootout(plan, ro);
  const auto cells = shootout::summarize(plan, run.runs);
  const shootout::ChartsOutcome charts =
      shootout::write_charts(plan, cells, out_dir.string(), shootout::find_gp_dir(a.gp_dir));
  try {
    write_file(out_dir / "results.json", shootout::results_json(plan, run, cells).dump(2) + "\n");
    write_file(out_dir / "summary.md", shootout::summary_markdown(plan, run, cells, charts.pngs, charts.note));
  } catch (const std::exception& e) {
    fmt::print(stderr, "iomux shootout: {}\n", e.what());
    return 1;
  }

  fmt::print(stderr, "done in {:.1f} min{}: {} runs\n", run.elapsed_s / 60, run.cancelled ? " (interrupted)" : "",
             run.runs.size());
  if (run.skipped_for_budget > 0)
    fmt::print(stderr, "{} repeat runs left out to stay within the time budget ({:.1f} min)\n",
               run.skipped_for_budget, plan.budget_s / 60);
  if (!charts.note.empty()) fmt::print(stderr, "charts: {}\n", charts.note);
  fmt::print("{}\n", (out_dir / "summary.md").string());
  fmt::print("{}\n", (out_dir / "results.json").string());
  for (const auto& p : charts.pngs) fmt::print("{}\n", (out_dir / p).string());
  if (run.cancelled) return 130;
  const bool measured_any = std::any_of(cells.begin(), cells.end(), [](const auto& c) { return c.has_numbers(); });
  return measured_any ? 0 : 1;
}

}  // namespace

void register_shootout(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ShootoutArgs>();
  CLI::App* sub = app.add_subcommand(
      "shootout",
      "Benchmark every IO model and every peer server (bench/peers) through a matrix of connections, idle "
      "connections and workloads; write results.json, summary.md and charts.");
  sub->footer(
      "The default plan (see --dry-run) takes 11-15 minutes on 2 CPUs (a time budget caps it); --quick about 1.\n"
      "Examples:\n"
      "  iomux shootout --out results                      what `make bench` runs\n"
      "  iomux shootout --quick --out /tmp/quick\n"
      "  iomux shootout --models epoll,uring --peers floor_epoll --repeat 5\n"
      "Exit status: 0 when done (cells that failed are part of the results), 1 when nothing could be "
      "measured, 2 for bad options, 130 when interrupted (the reports cover what was measured).");
  sub->add_option("-o,--out", args->out, "Output directory")->capture_default_str();
  sub->add_flag("--quick", args->plan.quick, "A smaller plan: fewer models and points, 1 repeat, short runs");
  sub->add_option("--models", args->models, "Models to measure, comma-separated (default: every available one; "
                                            "`none` for peers only)")
      ->delimiter(',');
  sub->add_option("--peers", args->peers, "Peers to measure, comma-separated, e.g. floor_epoll,libuv (default: every "
                                          "peer_* found; `none` for none)")
      ->delimiter(',');
  sub->add_option("--peers-dir", args->plan.peers_dir,
                  "Where the peer_* servers are (default: <dir of this executable>/bench/peers)");
  sub->add_option("--repeat", args->plan.repeat, "Runs per cell; the median is reported (default 3, --quick 1)")
      ->check(CLI::Range(1, 100));
  sub->add_option("-d,--duration", args->duration_s, "Measured seconds per run, every cell (default 0.5, and 1.5 from 5,000 active connections; --quick 0.3 / 1)")
      ->check(kPositive);
  sub->add_option("--warmup", args->warmup_s,
                  "Warmup seconds per run, every cell (default 0.25, and 1.5 from 5,000 active connections; --quick 0.2 / 1)")
      ->check(kNonNegative);
  sub->add_option("--budget", args->budget_s,
                  "Wall-clock budget in seconds: repeats beyond the first pass stop when it would be exceeded "
                  "(default 870, --quick 180; 0 = none)")
      ->check(kNonNegative);
  sub->add_flag("--no-pin", args->no_pin, "Do not pin the servers (CPU 0) and the load generator (CPU 1)");
  sub->add_option("--gp-dir", args->gp_dir, "Where the gnuplot scripts are (default: found automatically)");
  sub->add_flag("--dry-run", args->dry_run, "Print the plan and every cell, run nothing");
  sub->callback([args, &exit_code] { exit_code = run_shootout_command(*args); });
}

}  // namespace iomux::cli
