// Charts of a shootout: gnuplot data files (one block per server) and PNGs rendered by the
// scripts in bench/shootout/*.gp. Without gnuplot the data files are still written.
#pragma once

#include <string>
#include <vector>

#include "iomux/shootout/plan.hpp"
#include "iomux/shootout/real_report.hpp"
#include "iomux/shootout/report.hpp"

namespace iomux::shootout {

struct ChartsOutcome {
  std::vector<std::string> pngs;        // relative to the output directory
  std::vector<std::string> data_files;  // relative to the output directory
  std::string note;                     // why some or all charts are missing; empty when all rendered
};

// Where the .gp scripts are: `override` if given, else <dir of this executable>/bench/shootout,
// else the source tree's bench/shootout (IOMUX_SHOOTOUT_GP_DIR). Empty when none has them.
std::string find_gp_dir(const std::string& override_dir);

// Writes out_dir/data/*.dat and renders out_dir/*.png.
ChartsOutcome write_charts(const Plan& plan, const std::vector<CellSummary>& cells, const std::string& out_dir,
                           const std::string& gp_dir);

// The real servers' charts: out_dir/data/real_<section>.dat and out_dir/real_<section>.png, server
// CPU per request and requests/s by server, bars grouped by load (bench/shootout/real_servers.gp).
ChartsOutcome write_real_charts(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                const std::string& out_dir, const std::string& gp_dir);

}  // namespace iomux::shootout
