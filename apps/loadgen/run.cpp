// A run from start to end, the coordinator's orchestration: check the fd budget, probe the
// server, plan the load (run_plan.cpp), start the workers and wait until they have connected,
// refuse to go on when nothing connected, publish the timeline, watch (watch.cpp), merge the
// figures (results.cpp). run_bench also spawns the server, and says what became of it.
#include <algorithm>
#include <chrono>
#include <system_error>

#include <fmt/format.h>

#include "coordinator.hpp"
#include "core/socket.hpp"
#include "iomux/loadgen/spawn.hpp"

namespace iomux::loadgen {
namespace engine {

Crew::Crew(const Plan& plan, const std::vector<WorkerShare>& shares, const std::atomic<bool>* cancel)
    : shared(static_cast<std::ptrdiff_t>(shares.size())) {
  shared.cancel = cancel;
  for (const auto& s : shares) {
    live.push_back(std::make_unique<LiveStats>());
    workers.push_back(std::make_unique<Worker>(plan, shared, *live.back(), s));
  }
  threads_.reserve(workers.size());
  for (auto& w : workers) threads_.emplace_back([&w] { w->run(); });
}

Crew::~Crew() {
  if (shared.go.load(std::memory_order_acquire) == 0)
    abort();
  else
    shared.stop.store(true, std::memory_order_relaxed);
  join();
}

void Crew::go(const BenchConfig& cfg) {
  const std::int64_t t0 = now_ns();
  shared.tl.t0 = t0;
  shared.tl.measure_start = t0 + seconds_to_ns(cfg.warmup_s);
  shared.tl.end = cfg.duration_s > 0 ? shared.tl.measure_start + seconds_to_ns(cfg.duration_s) : kNever;
  shared.go.store(t0, std::memory_order_release);
  shared.go.notify_all();
}

void Crew::abort() {
  shared.go.store(-1, std::memory_order_release);
  shared.go.notify_all();
}

void Crew::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

namespace {

// One blocking connect first: a clear error when nothing listens.
void probe_server(const Endpoint& ep, double timeout_s) {
  std::error_code ec;
  detail::UniqueFd probe = detail::connect_tcp(ep, std::chrono::milliseconds(seconds_to_ns(timeout_s) / 1'000'000), ec);
  if (ec || !probe)
    throw BenchError(fmt::format("cannot connect to {}: {}", ep.to_string(), ec ? ec.message() : "unknown error"));
}

// After the workers' setup: throws when the run cannot go on (nothing connected, or cancelled),
// else notes what fell short.
void check_connected(const BenchConfig& cfg, const Endpoint& ep, Crew& crew, const RunHooks& hooks,
                     std::vector<std::string>& notes) {
  std::size_t open = 0;
  std::size_t idle_open = 0;
  std::string first_error;
  for (const auto& w : crew.workers) {
    open += w->out.connections_open;
    idle_open += w->out.idle_open;
    if (first_error.empty()) first_error = w->out.first_connect_error;
    if (!w->out.pin_error.empty()) notes.push_back("pinning a load thread failed: " + w->out.pin_error);
  }
  if ((!cfg.churn && open == 0) || (hooks.cancel && hooks.cancel->load())) {
    crew.abort();
    crew.join();
    if (hooks.cancel && hooks.cancel->load()) throw BenchError("cancelled");
    throw BenchError(fmt::format("none of the {} connections to {} could be established: {}", cfg.connections,
                                 ep.to_string(), first_error.empty() ? "unknown error" : first_error));
  }
  if (!cfg.churn && open < cfg.connections)
    notes.push_back(
        fmt::format("only {} of {} connections could be established ({})", open, cfg.connections, first_error));
  if (idle_open < cfg.idle)
    notes.push_back(
        fmt::format("only {} of {} idle connections could be established ({})", idle_open, cfg.idle, first_error));
}

BenchResult run_impl(const BenchConfig& cfg, const Endpoint& ep, std::optional<pid_t> server_pid, const RunHooks& hooks,
                     const CpuPlan& cpus, std::vector<std::string> notes) {
  const long limit = detail::raise_fd_limit();
  if (auto why = check_fd_budget(cfg, limit)) throw BenchError(*why);
  probe_server(ep, cfg.timeout_s);

  const auto range = local_port_range();
  const Plan plan = make_plan(cfg, ep, range, notes);
  Crew crew(plan, split(cfg, cpus, plan.bind_ports ? range : std::pair<int, int>{0, 0}), hooks.cancel);
  const std::int64_t setup_begin = now_ns();
  crew.shared.ready.wait();
  const double connect_s = static_cast<double>(now_ns() - setup_begin) / 1e9;
  check_connected(cfg, ep, crew, hooks, notes);

  crew.go(cfg);
  Watched watched = watch(crew, server_pid, hooks);
  crew.join();
  watched.cancelled = watched.cancelled || (hooks.cancel && hooks.cancel->load());

  BenchResult r = merge_results(cfg, plan, crew, watched, server_pid, std::move(notes));
  r.target = ep.to_string();
  r.connect_s = connect_s;
  r.cancelled = watched.cancelled;
  return r;
}

}  // namespace
}  // namespace engine

BenchResult run_bench_at(const BenchConfig& cfg, const Endpoint& ep, std::optional<pid_t> server_pid,
                         const RunHooks& hooks) {
  if (auto why = validate(cfg)) throw BenchError(*why);
  std::vector<std::string> notes;
  const engine::CpuPlan cpus = engine::plan_cpus(cfg, server_pid.has_value(), notes);
  engine::CpuPlan load_only = cpus;
  load_only.server_cpu = -1;  // the caller started the server; pinning it is the caller's business
  return engine::run_impl(cfg, ep, server_pid, hooks, load_only, std::move(notes));
}

BenchResult run_bench(const BenchConfig& cfg, const RunHooks& hooks) {
  if (auto why = validate(cfg)) throw BenchError(*why);
  std::vector<std::string> notes;
  if (!cfg.spawns()) {
    Endpoint ep;
    try {
      ep = resolve_one(cfg.target);
    } catch (const std::exception& e) {
      throw BenchError(e.what());
    }
    return engine::run_impl(cfg, ep, std::nullopt, hooks, engine::CpuPlan{}, std::move(notes));
  }
  const engine::CpuPlan cpus = engine::plan_cpus(cfg, true, notes);
  SpawnSpec spec;
  try {
    std::vector<std::string> extra = cfg.server_args;
    if (cfg.reply != kDefaultReply) extra.insert(extra.begin(), {"--reply", cfg.reply});
    spec = cfg.model.empty() ? SpawnSpec::shell(cfg.spawn_command)
                             : SpawnSpec::iomux_model(cfg.model, to_string(cfg.protocol), extra, cfg.iomux_exe);
  } catch (const SpawnError& e) {
    throw BenchError(e.what());
  }
  spec.cpu = cpus.server_cpu;
  spec.ready_timeout = std::chrono::milliseconds(engine::seconds_to_ns(cfg.spawn_timeout_s) / 1'000'000);
  std::unique_ptr<SpawnedServer> server;
  try {
    server = SpawnedServer::start(spec);
  } catch (const SpawnError& e) {
    throw BenchError(e.what());
  }
  BenchResult r;
  try {
    r = engine::run_impl(cfg, server->endpoint(), server->pid(), hooks, cpus, std::move(notes));
  } catch (const BenchError& e) {
    const bool died = !server->alive();
    std::string msg = e.what();
    if (died)
      msg += fmt::format("\nthe server {}; its last output:\n{}", server->exit_description(), server->recent_output());
    server->stop();
    throw BenchError(msg);
  }
  r.server_command = server->command_line();
  if (!server->alive()) {
    r.server_exit = server->exit_description();
    r.notes.push_back("the server " + r.server_exit + " during the run; its last output:\n" + server->recent_output());
  }
  server->stop();
  return r;
}

}  // namespace iomux::loadgen
