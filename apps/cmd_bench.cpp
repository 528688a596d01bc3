// `iomux bench`: the load generator's command line. The work is in apps/loadgen (iomux_loadgen).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "interrupt_guard.hpp"
#include "iomux/loadgen/bench.hpp"

namespace iomux::cli {
namespace {

struct BenchArgs {
  loadgen::BenchConfig cfg;
  std::string protocol = "ack";
  bool no_pin = false;
  bool json = false;
  bool csv = false;
  bool quiet = false;
};

int run_bench_command(BenchArgs& a, bool duration_given) {
  auto& cfg = a.cfg;
  cfg.protocol = *parse_protocol_mode(a.protocol);  // CLI11 checked the name
  if (a.no_pin) cfg.pin = false;
  // --requests alone: run until that many are done (--duration, if given too, is a cap).
  if (cfg.requests > 0 && !duration_given) cfg.duration_s = 0;
  if (auto why = loadgen::validate(cfg)) {
    fmt::print(stderr, "iomux bench: {}\n", *why);
    return 2;
  }

  // Ctrl-C / SIGTERM end the run early; the report covers the time until then.
  InterruptGuard interrupt_guard;

  loadgen::RunHooks hooks;
  hooks.cancel = &InterruptGuard::flag();
  const bool live = !a.quiet && !a.json && !a.csv && ::isatty(STDERR_FILENO);
  bool printed_progress = false;
  if (live) {
    hooks.on_progress = [&printed_progress](const loadgen::Progress& p) {
      fmt::print(stderr, "\r{}\x1b[K", loadgen::format_progress(p));
      std::fflush(stderr);
      printed_progress = true;
    };
  }

  loadgen::BenchResult r;
  try {
    r = loadgen::run_bench(cfg, hooks);
  } catch (const loadgen::BenchError& e) {
    if (printed_progress) fmt::print(stderr, "\r\x1b[K");
    fmt::print(stderr, "iomux bench: {}\n", e.what());
    return 1;
  }
  if (printed_progress) fmt::print(stderr, "\r\x1b[K");

  if (a.json) {
    std::cout << loadgen::to_json(cfg, r).dump(2) << '\n';
  } else if (a.csv) {
    std::cout << loadgen::csv_header() << '\n' << loadgen::csv_row(cfg, r) << '\n';
  } else {
    std::cout << loadgen::format_text(cfg, r);
  }
  std::cout.flush();
  if (r.requests == 0 && !a.quiet)
    fmt::print(stderr, "iomux bench: no request completed\n");
  else if (r.errors > 0 && !a.quiet)
    fmt::print(stderr, "iomux bench: {} request(s) failed\n", r.errors);
  return r.exit_code();
}

}  // namespace

void register_bench(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<BenchArgs>();
  auto& cfg = args->cfg;
  CLI::App* sub =
      app.add_subcommand("bench",
                         "Load-test a server: closed loop (--connections x --pipeline requests in flight) or open loop "
                         "(--rate); every reply byte is checked.");
  sub->footer(
      "Examples:\n"
      "  iomux bench --model epoll -c 100 -d 10                 spawn `iomux serve --model epoll` and load it\n"
      "  iomux bench 127.0.0.1:7890 --protocol line --pipeline 8\n"
      "  iomux bench --spawn 'peer_floor_epoll --port 0' --rate 50000 --json\n"
      "Exit status: 0 when requests completed without errors, 1 otherwise, 2 for bad options.");

  auto* target = sub->add_option("target", cfg.target, "HOST:PORT of a running server")->capture_default_str();
  auto* spawn = sub->add_option("--spawn", cfg.spawn_command,
                                "Start this shell command as the server; it must print `listening on HOST:PORT`");
  auto* model =
      sub->add_option("--model", cfg.model, "Start `iomux serve --model M --host 127.0.0.1 --port 0` as the server");
  spawn->excludes(target)->excludes(model);
  model->excludes(target);
  sub->add_option("--server-arg", cfg.server_args, "Extra argument for the spawned `iomux serve` (repeatable)")
      ->allow_extra_args(false)
      ->needs(model);
  sub->add_option("--server-cpu", cfg.server_cpu, "CPU for the spawned server")->capture_default_str();
  sub->add_option("--load-cpu", cfg.load_cpu, "CPU for the first load thread (others follow)")->capture_default_str();
  sub->add_flag("--no-pin", args->no_pin, "Do not pin the spawned server and the load threads to CPUs");
  sub->add_option("--spawn-timeout", cfg.spawn_timeout_s, "Seconds to wait for the spawned server's listening line")
      ->capture_default_str();

  sub->add_option("--protocol", args->protocol, "ack, line or echo")
      ->check(CLI::IsMember({"ack", "line", "echo"}))
      ->capture_default_str();
  sub->add_option("--reply", cfg.reply, "The server's reply text (line mode adds \\r\\n)")->capture_default_str();
  sub->add_option("-c,--connections", cfg.connections, "Active connections")->capture_default_str();
  sub->add_option("--idle", cfg.idle, "Extra connections that stay open and silent")->capture_default_str();
  sub->add_option("-s,--size", cfg.size, "Request size in bytes, K suffix = 1024 (line mode: including the '\\n')")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  auto* duration =
      sub->add_option("-d,--duration", cfg.duration_s, "Seconds to measure (after the warmup)")->capture_default_str();
  sub->add_option("-n,--requests", cfg.requests, "Stop after this many measured requests");
  sub->add_option("--warmup", cfg.warmup_s, "Seconds of load before measuring")->capture_default_str();
  sub->add_option("-p,--pipeline", cfg.pipeline, "Requests in flight per connection (line and echo)")
      ->capture_default_str();
  sub->add_option("-r,--rate", cfg.rate, "Open loop: requests/s in total; latency counts from the scheduled send time")
      ->capture_default_str();
  sub->add_flag("--churn", cfg.churn, "A new connection per request (connect, one request, close)");
  sub->add_option("--timeout", cfg.timeout_s, "Seconds before a request (or a connect) counts as timed out")
      ->capture_default_str();
  sub->add_option("-t,--threads", cfg.threads, "Load threads, each with its own epoll loop")->capture_default_str();
  auto* json = sub->add_flag("--json", args->json, "Print one JSON object");
  auto* csv = sub->add_flag("--csv", args->csv, "Print a CSV header and one row");
  json->excludes(csv);
  sub->add_flag("-q,--quiet", args->quiet, "No progress line and no summary on stderr");

  sub->callback([args, duration, &exit_code] { exit_code = run_bench_command(*args, duration->count() > 0); });
}

}  // namespace iomux::cli
