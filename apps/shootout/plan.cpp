#include "iomux/shootout/plan.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "iomux/loadgen/bench.hpp"
#include "iomux/models.hpp"

namespace iomux::shootout {
namespace {

namespace fs = std::filesystem;

// Default timing. Short runs repeated (and medianed) beat one long run on a shared machine, and
// they keep the default plan within its 15-minute budget. With thousands of connections the
// first round of requests alone takes a while, so those runs warm up longer.
// A round of requests over thousands of connections can outlast such a short run, which would
// then measure nothing: runs with that many *active* connections get longer. (Idle
// connections cost setup time, not round time.)
constexpr double kWarmupS = 0.25, kDurationS = 0.5, kBigWarmupS = 1.5, kBigDurationS = 1.5;
constexpr double kQuickWarmupS = 0.2, kQuickDurationS = 0.3, kQuickBigWarmupS = 1.0, kQuickBigDurationS = 1.0;
constexpr std::size_t kBigCell = 5000;

// Models in the quick plan: the two ends of the ladder and the interesting middle.
const std::vector<std::string> kQuickModels = {"blocking", "select", "poll", "epoll", "uring"};
// Peers in the order the tables list them; others found follow alphabetically.
const std::vector<std::string> kPeerOrder = {"floor_epoll", "libevent", "libuv", "asio"};

// The `timeout` model visits every socket in turn with a 1 ms receive timeout and accepts one
// connection per round, so setting up thousands of connections outlasts the plan's budget.
// Those points are left out.
constexpr std::size_t kTimeoutModelMaxOpen = 1100;

std::string self_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return fs::path(std::string(buf, static_cast<std::size_t>(n))).parent_path().string();
}

std::string strip_peer_prefix(std::string name) {
  if (name.rfind("peer_", 0) == 0) name.erase(0, 5);
  return name;
}

bool is_executable_file(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// peer name -> path, in table order.
std::vector<std::pair<std::string, std::string>> find_peers(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind("peer_", 0) != 0 || !is_executable_file(entry.path())) continue;
    found.emplace_back(strip_peer_prefix(file), entry.path().string());
  }
  auto rank = [](const std::string& name) {
    const auto it = std::find(kPeerOrder.begin(), kPeerOrder.end(), name);
    return static_cast<std::size_t>(it - kPeerOrder.begin());
  };
  std::sort(found.begin(), found.end(), [&](const auto& a, const auto& b) {
    return std::pair(rank(a.first), a.first) < std::pair(rank(b.first), b.first);
  });
  return found;
}

std::vector<ServerSpec> pick_servers(const PlanOptions& opts, Plan& plan) {
  std::vector<ServerSpec> servers;
  std::vector<std::string> wanted_models;
  if (opts.models) {
    for (const auto& m : *opts.models) {
      if (m == "none") continue;
      if (!find_model(m)) throw PlanError(fmt::format("unknown model '{}' (see `iomux models`)", m));
      wanted_models.push_back(m);
    }
  } else {
    for (const ModelInfo& m : all_models())
      if (!opts.quick || std::find(kQuickModels.begin(), kQuickModels.end(), m.name) != kQuickModels.end())
        wanted_models.emplace_back(m.name);
  }
  // Ladder order whatever order --models gave.
  for (const ModelInfo& m : all_models()) {
    if (std::find(wanted_models.begin(), wanted_models.end(), m.name) == wanted_models.end()) continue;
    const Availability a = probe_model(m.name);
    if (!a.available) {
      plan.notes.push_back(fmt::format("model {} left out: not available here ({})", m.name, a.reason));
      continue;
    }
    ServerSpec s;
    s.name = std::string(m.name);
    s.one_client_at_a_time = !m.serves_concurrently;
    servers.push_back(std::move(s));
  }

  const auto peers = find_peers(plan.peers_dir);
  std::vector<std::string> wanted_peers;
  if (opts.peers) {
    for (const auto& p : *opts.peers)
      if (p != "none") wanted_peers.push_back(strip_peer_prefix(p));
    for (const auto& w : wanted_peers) {
      const bool there = std::any_of(peers.begin(), peers.end(), [&](const auto& p) { return p.first == w; });
      if (!there)
        throw PlanError(
            fmt::format("peer '{}' not found in {} (build it: see bench/peers/README.md)", w, plan.peers_dir));
    }
  }
  for (const auto& [name, path] : peers) {
    if (opts.peers && std::find(wanted_peers.begin(), wanted_peers.end(), name) == wanted_peers.end()) continue;
    ServerSpec s;
    s.name = name;
    s.peer = true;
    s.peer_path = path;
    servers.push_back(std::move(s));
  }
  if (!opts.peers) {
    for (const auto& want : kPeerOrder) {
      const bool there = std::any_of(peers.begin(), peers.end(), [&](const auto& p) { return p.first == want; });
      if (!there) plan.notes.push_back(fmt::format("peer_{} not found in {}: not measured", want, plan.peers_dir));
    }
  }
  return servers;
}

std::vector<Slice> default_slices(bool quick) {
  // workloads(): 0 = 64 B ack, 1 = 64 B echo, 2 = 16 KiB echo.
  if (quick) {
    return {
        {"conns-ack64", "connections sweep, 64 B ack, no idle connections", 0, {1, 100, 1000, 10000}, {0}, {}},
        {"conns-echo64", "64 B echo at 100 connections", 1, {100}, {0}, {}},
        {"conns-echo16k", "16 KiB echo at 100 connections", 2, {100}, {0}, {}},
        {"idle-ack64", "idle sweep, 64 B ack, 100 active connections", 0, {100}, {0, 1000}, {}},
    };
  }
  return {
      {"conns-ack64", "connections sweep, 64 B ack, no idle connections", 0, {1, 10, 100, 1000, 10000}, {0}, {}},
      {"conns-echo64", "connections sweep, 64 B echo, no idle connections", 1, {1, 100, 1000}, {0}, {}},
      {"conns-echo16k", "connections sweep, 16 KiB echo, no idle connections", 2, {1, 100, 1000}, {0}, {}},
      {"idle-ack64", "idle sweep, 64 B ack, 100 active connections", 0, {100}, {0, 1000, 10000}, {}},
      {"idle15k",
       "15,000 idle connections (+100 active), 64 B ack, scalable servers only",
       0,
       {100},
       {15000},
       {"epoll", "uring", std::string(kFloorPeer)}},
  };
}

std::string skip_reason(const ServerSpec& s, std::size_t connections, std::size_t idle) {
  if (s.one_client_at_a_time && connections + idle > 1) return "n/a: serves one client at a time";
  if (!s.peer && s.name == "timeout" && connections + idle > kTimeoutModelMaxOpen)
    return fmt::format(
        "skipped: visits each socket in turn (1 ms timeout, one accept per round); setting up {} "
        "connections takes minutes",
        grouped(connections + idle));
  return {};
}

long hard_fd_limit() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  return rl.rlim_max == RLIM_INFINITY ? -1 : static_cast<long>(rl.rlim_max);
}

}  // namespace

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> w = {
      {"ack64", "64 B ack", ProtocolMode::ack, 64},
      {"echo64", "64 B echo", ProtocolMode::echo, 64},
      {"echo16k", "16 KiB echo", ProtocolMode::echo, 16 * 1024},
  };
  return w;
}

std::string grouped(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::optional<std::size_t> Plan::find_server(std::string_view name) const {
  for (std::size_t i = 0; i < servers.size(); ++i)
    if (servers[i].name == name) return i;
  return std::nullopt;
}

std::optional<std::size_t> Plan::find_cell(std::size_t server, std::size_t workload, std::size_t connections,
                                           std::size_t idle) const {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const Cell& c = cells[i];
    if (c.server == server && c.workload == workload && c.connections == connections && c.idle == idle) return i;
  }
  return std::nullopt;
}

Plan make_plan(const PlanOptions& opts) {
  Plan plan;
  plan.quick = opts.quick;
  plan.repeat = opts.repeat > 0 ? opts.repeat : (opts.quick ? 1 : 3);
  plan.budget_s = opts.budget_s.value_or(opts.quick ? kQuickBudgetS : kDefaultBudgetS);
  const std::string dir = self_dir();
  plan.peers_dir = !opts.peers_dir.empty() ? opts.peers_dir : (fs::path(dir) / "bench" / "peers").string();
  plan.servers = pick_servers(opts, plan);
  if (plan.servers.empty()) throw PlanError("nothing to measure: no model and no peer selected");
  plan.slices = default_slices(opts.quick);

  const long fd_limit = opts.fd_limit >= 0 ? opts.fd_limit : hard_fd_limit();
  const double warmup = opts.warmup_s.value_or(opts.quick ? kQuickWarmupS : kWarmupS);
  const double big_warmup = opts.warmup_s.value_or(opts.quick ? kQuickBigWarmupS : kBigWarmupS);
  const double duration = opts.duration_s.value_or(opts.quick ? kQuickDurationS : kDurationS);
  const double big_duration = opts.duration_s.value_or(opts.quick ? kQuickBigDurationS : kBigDurationS);

  for (const Slice& slice : plan.slices) {
    for (std::size_t s = 0; s < plan.servers.size(); ++s) {
      const ServerSpec& server = plan.servers[s];
      if (!slice.only_servers.empty() &&
          std::find(slice.only_servers.begin(), slice.only_servers.end(), server.name) == slice.only_servers.end())
        continue;
      for (std::size_t idle : slice.idle) {
        for (std::size_t conns : slice.connections) {
          if (auto i = plan.find_cell(s, slice.workload, conns, idle)) {
            plan.cells[*i].slices.push_back(slice.key);
            continue;
          }
          Cell c;
          c.server = s;
          c.workload = slice.workload;
          c.connections = conns;
          c.idle = idle;
          c.slices = {slice.key};
          c.warmup_s = conns >= kBigCell ? big_warmup : warmup;
          c.duration_s = conns >= kBigCell ? big_duration : duration;
          c.skip = skip_reason(server, conns, idle);
          if (c.skip.empty() && fd_limit >= 0) {
            loadgen::BenchConfig cfg;
            cfg.connections = conns;
            cfg.idle = idle;
            if (auto why = loadgen::check_fd_budget(cfg, fd_limit)) c.skip = "skipped: " + *why;
          }
          plan.cells.push_back(std::move(c));
        }
      }
    }
  }
  return plan;
}

double estimate_run_s(const Cell& cell) {
  // Rough costs, for an estimate: 0.25 s to spawn and stop a server, 0.3 ms per connection to
  // open and close.
  return 0.25 + cell.warmup_s + cell.duration_s + 0.0003 * static_cast<double>(cell.open());
}

double estimate_plan_s(const Plan& plan) {
  double total = 0;
  for (const Cell& c : plan.cells)
    if (c.runnable()) total += estimate_run_s(c) * plan.repeat;
  return total;
}

std::string describe_plan(const Plan& plan) {
  std::string out;
  std::size_t runnable = 0;
  for (const Cell& c : plan.cells) runnable += c.runnable() ? 1 : 0;
  out += fmt::format("plan: {}{} servers x {} slices = {} cells ({} to run, {} n/a or skipped), {} repeat{} each\n",
                     plan.quick ? "quick, " : "", plan.servers.size(), plan.slices.size(), plan.cells.size(), runnable,
                     plan.cells.size() - runnable, plan.repeat, plan.repeat == 1 ? "" : "s");
  std::string names;
  for (const auto& s : plan.servers) names += (names.empty() ? "" : ", ") + s.label();
  out += "  servers: " + names + "\n";
  for (const Slice& sl : plan.slices) {
    std::string conns, idle;
    for (auto c : sl.connections) conns += (conns.empty() ? "" : ", ") + grouped(c);
    for (auto i : sl.idle) idle += (idle.empty() ? "" : ", ") + grouped(i);
    out += fmt::format(
        "  {:<14} {}: connections {{{}}} x idle {{{}}}{}\n", sl.key, sl.title, conns, idle,
        sl.only_servers.empty() ? "" : " (only " + fmt::format("{}", fmt::join(sl.only_servers, ", ")) + ")");
  }
  if (!plan.cells.empty()) {
    const Cell& small = plan.cells.front();
    const Cell& big = *std::max_element(plan.cells.begin(), plan.cells.end(), [](const Cell& a, const Cell& b) {
      return a.warmup_s + a.duration_s < b.warmup_s + b.duration_s;
    });
    out += fmt::format(
        "  each run: warmup {:g} s, measured {:g} s (from {} active connections: {:g} s + {:g} s); "
        "the median of the repeats is reported\n",
        small.warmup_s, small.duration_s, grouped(kBigCell), big.warmup_s, big.duration_s);
  }
  out += fmt::format(
      "  repeats run as passes over the whole matrix (pass 1 = every cell once); a cell that fails "
      "outright is not repeated\n");
  out += fmt::format("  estimated time: {:.1f} min; budget {}\n", estimate_plan_s(plan) / 60,
                     plan.budget_s > 0
                         ? fmt::format("{:.1f} min (later passes stop when it would be exceeded)", plan.budget_s / 60)
                         : std::string("none"));
  for (const auto& n : plan.notes) out += "  note: " + n + "\n";
  return out;
}

}  // namespace iomux::shootout
