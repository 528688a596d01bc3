// Reports of the real-servers part: per-cell medians, ratios against redis-server / nginx / h2o
// measured in the same run, the targets' verdicts, results.json's "real_servers" section and
// summary.md's tables. IO-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iomux/shootout/real_runner.hpp"
#include "iomux/shootout/real_servers.hpp"

namespace iomux::shootout {

// One cell over its runs. Medians over the runs that measured something ("ok" and "errors");
// each metric on its own.
struct RealCellSummary {
  std::string status;  // "ok", "errors", "failed", "skipped", "not run"
  std::string reason;  // for everything but "ok"
  int runs = 0, measured = 0, problem_runs = 0;
  std::optional<double> rps, cpu_us_per_req, server_cpu_pct;
  std::optional<double> user_share;  // the part of the server's CPU time spent in user space
  std::vector<double> cpu_runs;      // every measured run's CPU µs per request, in run order

  [[nodiscard]] bool has_numbers() const noexcept { return measured > 0 && rps.has_value(); }
  // (max - min) / median of the runs' CPU per request; nullopt with fewer than two runs.
  [[nodiscard]] std::optional<double> cpu_spread() const;
};

std::vector<RealCellSummary> summarize_real(const RealPlan& plan, const std::vector<RealRunRecord>& runs);

// Median CPU per request (or req/s) of `server` over that of `against`, same section and load.
std::optional<double> real_cpu_ratio(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                     std::size_t section, std::size_t server, std::size_t load,
                                     const std::string& against);
std::optional<double> real_rps_ratio(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                     std::size_t section, std::size_t server, std::size_t load,
                                     const std::string& against);

struct TargetVerdict {
  RealTarget target;
  std::optional<double> ratio;  // nullopt: one side not measured
  std::string verdict;          // "met", "missed", "not measured"
};
std::vector<TargetVerdict> judge_targets(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                         std::size_t section);

// results.json's "real_servers": per section the servers, loads, every run, the cells' medians
// and ratios, and the targets.
nlohmann::json real_results_json(const RealPlan& plan, const RealShootoutRun& run,
                                 const std::vector<RealCellSummary>& sums);

// summary.md's sections for the real servers. `charts` lists the PNGs written (relative to the
// output directory), `charts_note` why some are missing.
std::string real_summary_markdown(const RealPlan& plan, const RealShootoutRun& run,
                                  const std::vector<RealCellSummary>& sums, const std::vector<std::string>& charts,
                                  const std::string& charts_note);

}  // namespace iomux::shootout
