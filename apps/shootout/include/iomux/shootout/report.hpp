// Reports of a shootout: per-cell medians, results.json (every run) and summary.md (tables).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iomux/shootout/plan.hpp"
#include "iomux/shootout/runner.hpp"

namespace iomux::shootout {

// One cell over its repeats. Every metric is the median over the runs that completed requests
// (each metric on its own, so the median req/s and the median CPU may come from different runs).
struct CellSummary {
  // "ok", "errors" (measured, but some requests failed), "failed" (nothing measured: the error
  // says why), "n/a" / "skipped" (not run: Cell::skip says why), "not run" (budget or Ctrl-C).
  std::string status;
  std::string reason;    // for everything but "ok"
  int runs = 0;          // runs made
  int measured = 0;      // runs with at least one answered request
  int problem_runs = 0;  // runs with status "errors" or "failed"
  std::optional<double> rps, cpu_us_per_req, p50_us, p99_us, rss_kib, server_cpu_pct;
  std::uint64_t errors = 0;  // failed requests summed over the runs

  [[nodiscard]] bool has_numbers() const noexcept { return measured > 0 && rps.has_value(); }
  // Server RSS per open connection (active + idle), KiB.
  [[nodiscard]] std::optional<double> rss_per_conn_kib(const Cell& c) const;
};

std::vector<CellSummary> summarize(const Plan& plan, const std::vector<RunRecord>& runs);

double median(std::vector<double> v);

// Everything: host, plan, every run (to_json's fields + the cell's parameters), the medians.
nlohmann::json results_json(const Plan& plan, const ShootoutRun& run, const std::vector<CellSummary>& cells);

// The Markdown report. `charts` lists the PNG files written (relative to the output
// directory); `charts_note` says why there are none, if there are none. `extra_sections` (the
// real servers' tables) go after the ratio tables, before the charts.
std::string summary_markdown(const Plan& plan, const ShootoutRun& run, const std::vector<CellSummary>& cells,
                             const std::vector<std::string>& charts, const std::string& charts_note,
                             const std::string& extra_sections = {});

// "41.2k", "812", "1.23M".
std::string format_rate(double rps);

}  // namespace iomux::shootout
