#include "iomux/shootout/charts.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "iomux/models.hpp"
#include "iomux/shootout/paths.hpp"

#ifndef IOMUX_SHOOTOUT_GP_DIR
#define IOMUX_SHOOTOUT_GP_DIR ""
#endif

namespace iomux::shootout {
namespace {

namespace fs = std::filesystem;

const std::array<const char*, 6> kScripts = {"style.gp",       "rps_vs_connections.gp", "p99_vs_connections.gp",
                                             "cpu_vs_idle.gp", "rss_per_connection.gp", "real_servers.gp"};

// A colour/point style per server that stays the same from chart to chart and run to run:
// models 1-10 in ladder order, peers 11-16 (style.gp draws them dashed, the floor in black).
int line_type(const ServerSpec& s) {
  if (s.peer) {
    static const std::array<const char*, 4> order = {"floor_epoll", "libevent", "libuv", "asio"};
    for (std::size_t i = 0; i < order.size(); ++i)
      if (s.name == order[i]) return 11 + static_cast<int>(i);
    return 15;
  }
  int i = 1;
  for (const ModelInfo& m : all_models()) {
    if (m.name == s.name) return i;
    ++i;
  }
  return 10;
}

// The real servers: iomux models as in the matrix, the servers they are compared with 16-18.
int real_line_type(const RealServer& s) {
  if (s.iomux) {
    ServerSpec spec;
    spec.name = s.name;
    return line_type(spec);
  }
  if (s.name == "redis-server") return 16;
  if (s.name == "nginx") return 17;
  if (s.name == "h2o" || s.name == "nginx-stream") return 18;
  if (s.name == "haproxy") return 16;
  return 15;
}

std::string num(const std::optional<double>& v) {
  return v ? fmt::format("{:.6g}", *v) : std::string("NaN");
}

// One data file: a block per server that has at least one point, each opened by a header line
// whose first field is the legend. Returns the linetypes of the blocks written ("" if none).
struct Series {
  std::string label;
  int lt;
  std::vector<std::string> rows;
};

std::string write_blocks(const fs::path& file, const std::string& columns, const std::vector<Series>& series) {
  std::ofstream f(file);
  f << "# iomux shootout chart data; columns: " << columns << "\n";
  f << "# one block per server (two blank lines between blocks), legend in the block's first line\n";
  std::string lts;
  bool first = true;
  for (const Series& s : series) {
    if (s.rows.empty()) continue;
    if (!first) f << "\n\n";
    first = false;
    f << '"' << s.label << "\" " << columns.substr(columns.find(' ') + 1) << "\n";
    for (const auto& r : s.rows) f << r << "\n";
    lts += (lts.empty() ? "" : " ") + std::to_string(s.lt);
  }
  return lts;
}

std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

// Runs argv in `cwd` with stdout+stderr appended to `log`; returns the exit status (or -1).
int run_logged(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log) {
  // The child changes directory first: a relative log path (`--out results`) must be resolved
  // here, or the output lands nowhere and gnuplot looks as if it had no PNG terminal.
  const std::string log_path = fs::absolute(log).string();
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) ::_exit(127);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Which PNG terminal this gnuplot has: "pngcairo", "png" or "".
std::string png_terminal(const std::string& gnuplot, const std::string& scratch_dir) {
  const std::string log = (fs::path(scratch_dir) / ".terminals").string();
  fs::remove(log);
  run_logged({gnuplot, "-e", "set terminal"}, scratch_dir, log);
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  fs::remove(log);
  const std::string text = ss.str();
  if (text.find("pngcairo") != std::string::npos) return "pngcairo";
  if (text.find(" png ") != std::string::npos) return "png";
  return {};
}

std::string quote_gp(const std::string& s) {
  return "'" + s + "'";
}

bool has_scripts(const fs::path& dir) {
  return std::all_of(kScripts.begin(), kScripts.end(), [&](const char* s) { return fs::exists(dir / s); });
}

}  // namespace

std::string find_gp_dir(const std::string& override_dir) {
  if (!override_dir.empty()) return has_scripts(override_dir) ? override_dir : std::string();
  const fs::path next_to_exe = fs::path(exe_dir()) / "bench" / "shootout";
  if (has_scripts(next_to_exe)) return next_to_exe.string();
  const std::string source = IOMUX_SHOOTOUT_GP_DIR;
  if (!source.empty() && has_scripts(source)) return source;
  return {};
}

ChartsOutcome write_charts(const Plan& plan, const std::vector<CellSummary>& cells, const std::string& out_dir,
                           const std::string& gp_dir) {
  ChartsOutcome out;
  const fs::path data = fs::path(out_dir) / "data";
  fs::create_directories(data);

  // Connections sweeps, one file per workload.
  struct Panel {
    std::string file, title, lts;
  };
  std::vector<Panel> conn_panels;
  std::string ack_conns_lts;
  for (std::size_t w = 0; w < workloads().size(); ++w) {
    std::vector<Series> series;
    for (std::size_t s = 0; s < plan.servers.size(); ++s) {
      Series ser{plan.servers[s].label(), line_type(plan.servers[s]), {}};
      std::vector<std::size_t> idx;
      for (std::size_t i = 0; i < plan.cells.size(); ++i)
        if (plan.cells[i].server == s && plan.cells[i].workload == w && plan.cells[i].idle == 0 &&
            cells[i].has_numbers())
          idx.push_back(i);
      std::sort(idx.begin(), idx.end(),
                [&](std::size_t a, std::size_t b) { return plan.cells[a].connections < plan.cells[b].connections; });
      for (std::size_t i : idx) {
        const CellSummary& c = cells[i];
        ser.rows.push_back(fmt::format("{} {} {} {} {} {}", plan.cells[i].connections, num(c.rps),
                                       num(c.cpu_us_per_req), num(c.p99_us), num(c.rss_per_conn_kib(plan.cells[i])),
                                       num(c.rss_kib)));
      }
      series.push_back(std::move(ser));
    }
    const std::string name = "conns_" + workloads()[w].key + ".dat";
    const std::string lts =
        write_blocks(data / name, "server connections rps cpu_us_per_req p99_us rss_kib_per_conn rss_kib", series);
    if (lts.empty()) {
      fs::remove(data / name);
      continue;
    }
    out.data_files.push_back("data/" + name);
    conn_panels.push_back({"data/" + name, workloads()[w].title, lts});
    if (w == 0) ack_conns_lts = lts;
  }

  // The idle sweep (64 B ack, 100 active).
  std::string idle_lts, idle_xtics;
  {
    constexpr std::size_t kActive = 100;
    std::vector<std::size_t> idle_points;
    std::vector<Series> series;
    bool any_idle = false;
    for (const Cell& c : plan.cells)
      if (c.workload == 0 && c.connections == kActive && c.idle > 0) any_idle = true;
    for (std::size_t s = 0; s < plan.servers.size() && any_idle; ++s) {
      Series ser{plan.servers[s].label(), line_type(plan.servers[s]), {}};
      std::vector<std::size_t> idx;
      for (std::size_t i = 0; i < plan.cells.size(); ++i)
        if (plan.cells[i].server == s && plan.cells[i].workload == 0 && plan.cells[i].connections == kActive &&
            cells[i].has_numbers())
          idx.push_back(i);
      std::sort(idx.begin(), idx.end(),
                [&](std::size_t a, std::size_t b) { return plan.cells[a].idle < plan.cells[b].idle; });
      for (std::size_t i : idx) {
        const CellSummary& c = cells[i];
        ser.rows.push_back(fmt::format("{} {} {} {} {} {}", plan.cells[i].open(), plan.cells[i].idle, num(c.rps),
                                       num(c.cpu_us_per_req), num(c.p99_us), num(c.rss_per_conn_kib(plan.cells[i]))));
        if (std::find(idle_points.begin(), idle_points.end(), plan.cells[i].idle) == idle_points.end())
          idle_points.push_back(plan.cells[i].idle);
      }
      series.push_back(std::move(ser));
    }
    if (any_idle) {
      idle_lts = write_blocks(data / "idle_ack64.dat",
                              "server open_connections idle rps cpu_us_per_req p99_us rss_kib_per_conn", series);
      if (idle_lts.empty())
        fs::remove(data / "idle_ack64.dat");
      else
        out.data_files.push_back("data/idle_ack64.dat");
      std::sort(idle_points.begin(), idle_points.end());
      for (auto p : idle_points)
        idle_xtics += fmt::format("{}\"{}\" {}", idle_xtics.empty() ? "(" : ", ",
                                  p >= 1000 && p % 1000 == 0 ? fmt::format("{}k", p / 1000) : grouped(p), p + kActive);
      if (!idle_xtics.empty()) idle_xtics += ")";
    }
  }

  const std::string gnuplot = find_program("gnuplot");
  if (gnuplot.empty()) {
    out.note =
        "gnuplot is not installed, so no PNG charts were rendered; the chart data is in data/*.dat "
        "(install gnuplot-nox, or run `make bench`, which installs it).";
    return out;
  }
  if (gp_dir.empty()) {
    out.note =
        "The gnuplot scripts (bench/shootout/*.gp) were not found next to the binary nor in the source "
        "tree, so no charts were rendered; the chart data is in data/*.dat.";
    return out;
  }
  const std::string term = png_terminal(gnuplot, out_dir);
  if (term.empty()) {
    out.note =
        "This gnuplot has neither the pngcairo nor the png terminal, so no charts were rendered; the "
        "chart data is in data/*.dat.";
    return out;
  }
  if (out_dir.find('\'') != std::string::npos) {
    out.note = "The output directory's name contains a quote; charts not rendered.";
    return out;
  }
  // The scripts go next to the data, so data/render.sh re-renders from the output directory.
  for (const char* s : kScripts) fs::copy_file(fs::path(gp_dir) / s, data / s, fs::copy_options::overwrite_existing);

  struct Chart {
    std::string png, script;
    std::vector<std::pair<std::string, std::string>> vars;
  };
  std::vector<Chart> charts;
  auto conn_vars = [&](const std::string& png) {
    std::vector<std::pair<std::string, std::string>> v = {{"nw", std::to_string(conn_panels.size())}};
    for (std::size_t i = 0; i < conn_panels.size(); ++i) {
      v.emplace_back(fmt::format("f{}", i + 1), quote_gp(conn_panels[i].file));
      v.emplace_back(fmt::format("t{}", i + 1), quote_gp(conn_panels[i].title));
      v.emplace_back(fmt::format("l{}", i + 1), quote_gp(conn_panels[i].lts));
    }
    v.emplace_back("out", quote_gp(png));
    return v;
  };
  if (!conn_panels.empty()) {
    charts.push_back({"rps_vs_connections.png", "rps_vs_connections.gp", conn_vars("rps_vs_connections.png")});
    charts.push_back({"p99_vs_connections.png", "p99_vs_connections.gp", conn_vars("p99_vs_connections.png")});
  }
  if (!idle_lts.empty())
    charts.push_back({"cpu_vs_idle.png",
                      "cpu_vs_idle.gp",
                      {{"f", quote_gp("data/idle_ack64.dat")},
                       {"l", quote_gp(idle_lts)},
                       {"xt", quote_gp(idle_xtics)},
                       {"out", quote_gp("cpu_vs_idle.png")}}});
  if (!ack_conns_lts.empty())
    charts.push_back({"rss_per_connection.png",
                      "rss_per_connection.gp",
                      {{"f", quote_gp("data/conns_ack64.dat")},
                       {"l", quote_gp(ack_conns_lts)},
                       {"out", quote_gp("rss_per_connection.png")}}});

  const std::string log = (data / "gnuplot.log").string();
  fs::remove(log);
  std::ofstream render(data / "render.sh");
  render << "#!/bin/sh\n# Re-renders the charts; run from the shootout's output directory.\nset -e\n";
  std::vector<std::string> failed;
  for (const Chart& c : charts) {
    std::string e = fmt::format("term='{}'; gpdir='data'", term);
    for (const auto& [k, v] : c.vars) e += "; " + k + "=" + v;
    const std::string script = "data/" + c.script;
    std::string sh_e;
    for (char ch : e) sh_e += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    render << "gnuplot -e '" << sh_e << "' " << script << "\n";
    fs::remove(fs::path(out_dir) / c.png);
    const int rc = run_logged({gnuplot, "-e", e, script}, out_dir, log);
    std::error_code ec;
    if (rc == 0 && fs::file_size(fs::path(out_dir) / c.png, ec) > 0 && !ec)
      out.pngs.push_back(c.png);
    else
      failed.push_back(c.png);
  }
  render.close();
  fs::permissions(data / "render.sh", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
  if (!failed.empty())
    out.note = fmt::format("gnuplot failed to render {} (see data/gnuplot.log).", fmt::join(failed, ", "));
  return out;
}

ChartsOutcome write_real_charts(const RealPlan& plan, const std::vector<RealCellSummary>& sums,
                                const std::string& out_dir, const std::string& gp_dir) {
  ChartsOutcome out;
  const fs::path data = fs::path(out_dir) / "data";
  fs::create_directories(data);

  // One file per section, two blocks: server CPU per request, then requests/s. A row per load, a
  // column per server that measured something (gnuplot's clustered histogram reads it as is).
  struct Panel {
    std::string key, file, title, lts;
    std::size_t columns = 0;
  };
  std::vector<Panel> panels;
  for (std::size_t sec = 0; sec < plan.sections.size(); ++sec) {
    const RealSection& s = plan.sections[sec];
    std::vector<std::size_t> servers;
    for (std::size_t v = 0; v < s.servers.size(); ++v)
      for (std::size_t l = 0; l < s.loads.size(); ++l)
        if (auto i = plan.find_cell(sec, v, l); i && sums[*i].has_numbers()) {
          servers.push_back(v);
          break;
        }
    if (servers.empty()) continue;
    const std::string name = "real_" + s.key + ".dat";
    std::ofstream f(data / name);
    f << "# iomux shootout, real servers (" << s.key << "): medians by load (rows) and server (columns)\n";
    f << "# block 0: server CPU per request (us); block 1: requests/s\n";
    Panel p{s.key, "data/" + name, s.title, "", servers.size()};
    for (std::size_t v : servers) p.lts += (p.lts.empty() ? "" : " ") + std::to_string(real_line_type(s.servers[v]));
    for (int block = 0; block < 2; ++block) {
      if (block == 1) f << "\n\n";
      f << "load";
      for (std::size_t v : servers) f << " \"" << s.servers[v].label() << '"';
      f << "\n";
      for (std::size_t l = 0; l < s.loads.size(); ++l) {
        if (is_bulk(s.loads[l])) continue;  // hundreds of µs a request: it would flatten the other bars
        f << '"' << s.loads[l].title << '"';
        for (std::size_t v : servers) {
          const auto i = plan.find_cell(sec, v, l);
          const RealCellSummary* m = i ? &sums[*i] : nullptr;
          f << ' ' << num(m && m->has_numbers() ? (block == 0 ? m->cpu_us_per_req : m->rps) : std::nullopt);
        }
        f << "\n";
      }
    }
    out.data_files.push_back(p.file);
    panels.push_back(std::move(p));
  }
  if (panels.empty()) return out;

  const std::string gnuplot = find_program("gnuplot");
  if (gnuplot.empty()) {
    out.note =
        "gnuplot is not installed, so the real servers' charts were not rendered; their data is in "
        "data/real_*.dat.";
    return out;
  }
  if (gp_dir.empty()) {
    out.note = "bench/shootout/real_servers.gp was not found, so the real servers' charts were not rendered.";
    return out;
  }
  const std::string term = png_terminal(gnuplot, out_dir);
  if (term.empty() || out_dir.find('\'') != std::string::npos) {
    out.note =
        "No PNG terminal in this gnuplot (or a quote in the output directory's name): the real servers' "
        "charts were not rendered.";
    return out;
  }
  for (const char* sname : {"style.gp", "real_servers.gp"})
    fs::copy_file(fs::path(gp_dir) / sname, data / sname, fs::copy_options::overwrite_existing);
  const std::string log = (data / "gnuplot.log").string();
  std::ofstream render(data / "render_real.sh");
  render << "#!/bin/sh\n# Re-renders the real servers' charts; run from the shootout's output directory.\nset -e\n";
  std::vector<std::string> failed;
  for (const Panel& p : panels) {
    const std::string png = "real_" + p.key + ".png";
    const std::string e = fmt::format("term='{}'; gpdir='data'; f={}; l={}; n={}; t={}; out={}", term, quote_gp(p.file),
                                      quote_gp(p.lts), p.columns, quote_gp(p.title), quote_gp(png));
    std::string sh_e;
    for (char ch : e) sh_e += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    render << "gnuplot -e '" << sh_e << "' data/real_servers.gp\n";
    fs::remove(fs::path(out_dir) / png);
    const int rc = run_logged({gnuplot, "-e", e, "data/real_servers.gp"}, out_dir, log);
    std::error_code ec;
    if (rc == 0 && fs::file_size(fs::path(out_dir) / png, ec) > 0 && !ec)
      out.pngs.push_back(png);
    else
      failed.push_back(png);
  }
  render.close();
  fs::permissions(data / "render_real.sh", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
  if (!failed.empty())
    out.note = fmt::format("gnuplot failed to render {} (see data/gnuplot.log).", fmt::join(failed, ", "));
  return out;
}

}  // namespace iomux::shootout
