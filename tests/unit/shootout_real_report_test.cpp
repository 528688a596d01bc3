// The real servers' reports: reading a tool's run into a record, per-cell medians and spreads,
// ratios against the baseline measured in the same run, the targets' verdicts, results.json's
// section and summary.md's tables. Synthetic runs; no program is started.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "iomux/shootout/real_report.hpp"

namespace {

using namespace iomux::shootout;

RealPlan small_plan() {
  RealPlanOptions o;
  o.find_program = [](std::string_view name) { return "/usr/bin/" + std::string(name); };
  o.model_unavailable = [](std::string_view) { return std::string(); };
  o.models = std::vector<std::string>{"epoll", "uring"};
  o.wrk_script = "/src/bench/wrk/pipeline.lua";
  o.iomux_has_proxy = [] { return true; };
  o.nginx_stream_module = "/m/ngx_stream_module.so";
  return make_real_plan(o);
}

RealPlan plan_without_proxy() {
  RealPlanOptions o;
  o.find_program = [](std::string_view name) { return "/usr/bin/" + std::string(name); };
  o.model_unavailable = [](std::string_view) { return std::string(); };
  o.iomux_has_proxy = [] { return false; };
  o.nginx_stream_module = "/m/ngx_stream_module.so";
  o.sections = std::vector<std::string>{"proxy"};
  return make_real_plan(o);
}

std::size_t cell(const RealPlan& p, const std::string& section, const std::string& server, const std::string& load) {
  const std::size_t s = *p.find_section(section);
  return *p.find_cell(s, *p.sections[s].find_server(server), *p.sections[s].find_load(load));
}

RealRunRecord run(std::size_t c, int repeat, double rps, double cpu_us, std::string status = "ok") {
  RealRunRecord r;
  r.cell = c;
  r.repeat = repeat;
  r.status = std::move(status);
  r.rps = rps;
  r.requests = 100000;
  r.server_cpu_us_per_req = cpu_us;
  r.server_cpu_s = cpu_us * 0.1;
  r.server_user_s = cpu_us * 0.04;
  r.server_cpu_pct = 95;
  r.server_command = "srv";
  r.tool_command = "tool";
  if (r.status != "ok") r.error = "wrk socket errors: connect 0, read 3, write 0, timeout 0";
  return r;
}

TEST(ShootoutRealReport, ReadsARedisBenchmarkRun) {
  const RealPlan p = small_plan();
  const RealSection& resp = p.sections[0];
  const RealLoad& set16 = resp.loads[*resp.find_load("set-p16")];
  ToolRun t;
  t.out =
      "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\","
      "\"p99_latency_ms\",\"max_latency_ms\"\n\"SET\",\"500000.00\",\"1.5\",\"0.1\",\"1.4\",\"2.0\",\"2.5\",\"4.0\"\n";
  t.wall_s = 2;
  t.cpu_s = 1.9;
  RealRunRecord r;
  read_tool_run(resp, set16, t, ServerCpu{0.5, 1.0}, r);
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.requests, set16.requests);
  EXPECT_DOUBLE_EQ(*r.rps, 500000);
  EXPECT_DOUBLE_EQ(*r.server_cpu_us_per_req, 1.5e6 / static_cast<double>(set16.requests));
  EXPECT_DOUBLE_EQ(*r.server_cpu_pct, 75);
  EXPECT_DOUBLE_EQ(*r.tool_cpu_pct, 95);
  EXPECT_DOUBLE_EQ(*r.server_user_s, 0.5);
  EXPECT_EQ(r.tool["rows"][0]["test"], "SET");
}

TEST(ShootoutRealReport, AnErrorReplyFailsTheRedisBenchmarkRun) {
  const RealPlan p = small_plan();
  const RealSection& resp = p.sections[0];
  ToolRun t;
  t.out =
      "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\","
      "\"p99_latency_ms\",\"max_latency_ms\"\n";
  t.err = "Error from server: WRONGTYPE Operation against a key holding the wrong kind of value\n";
  t.exit_code = 1;
  RealRunRecord r;
  read_tool_run(resp, resp.loads[1], t, ServerCpu{0.5, 0.5}, r);
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("exited with status 1"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("WRONGTYPE"), std::string::npos) << r.error;
  EXPECT_FALSE(r.server_cpu_us_per_req.has_value());
}

TEST(ShootoutRealReport, WrkErrorsMarkTheRunButKeepItsNumbers) {
  const RealPlan p = small_plan();
  const RealSection& http = p.sections[1];
  ToolRun t;
  t.out =
      "  2000 requests in 2.00s, 1.00MB read\n  Socket errors: connect 0, read 3, write 0, timeout 2\n"
      "  Non-2xx or 3xx responses: 5\nRequests/sec:   1000.00\n";
  t.wall_s = 2.1;
  RealRunRecord r;
  read_tool_run(http, http.loads[0], t, ServerCpu{0.005, 0.015}, r);
  EXPECT_EQ(r.status, "errors");
  EXPECT_NE(r.error.find("read 3"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("timeout 2"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("5 non-2xx/3xx responses"), std::string::npos) << r.error;
  EXPECT_EQ(r.requests, 2000u);
  EXPECT_DOUBLE_EQ(*r.server_cpu_us_per_req, 10);

  ToolRun none;
  none.out = "  0 requests in 1.06s, 0.00B read\n  Socket errors: connect 0, read 3277, write 0, timeout 0\n";
  RealRunRecord r2;
  read_tool_run(http, http.loads[0], none, ServerCpu{}, r2);
  EXPECT_EQ(r2.status, "failed");
  EXPECT_NE(r2.error.find("no request answered"), std::string::npos);

  ToolRun crashed;
  crashed.err = "unable to connect to 127.0.0.1:8080 Connection refused\n";
  crashed.exit_code = 1;
  RealRunRecord r3;
  read_tool_run(http, http.loads[0], crashed, std::nullopt, r3);
  EXPECT_EQ(r3.status, "failed");
  EXPECT_NE(r3.error.find("Connection refused"), std::string::npos);
}

TEST(ShootoutRealReport, MediansSpreadAndRatios) {
  const RealPlan p = small_plan();
  const std::size_t redis = cell(p, "resp", "redis-server", "set-p16");
  const std::size_t epoll = cell(p, "resp", "epoll", "set-p16");
  const std::size_t uring = cell(p, "resp", "uring", "set-p16");
  std::vector<RealRunRecord> runs = {
      run(redis, 1, 500000, 2.0), run(epoll, 1, 600000, 1.0), run(uring, 1, 700000, 1.4),
      run(redis, 2, 520000, 2.4), run(epoll, 2, 620000, 1.2), run(uring, 2, 650000, 1.5, "errors"),
      run(redis, 3, 480000, 1.6), run(epoll, 3, 580000, 0.9), run(uring, 3, 0, 0, "failed"),
  };
  runs.back().rps.reset();
  runs.back().server_cpu_us_per_req.reset();
  const auto sums = summarize_real(p, runs);
  const RealCellSummary& r = sums[redis];
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.runs, 3);
  EXPECT_DOUBLE_EQ(*r.rps, 500000);
  EXPECT_DOUBLE_EQ(*r.cpu_us_per_req, 2.0);
  EXPECT_EQ(r.cpu_runs, (std::vector<double>{2.0, 2.4, 1.6}));
  EXPECT_NEAR(*r.cpu_spread(), 0.4, 1e-12);  // (2.4 - 1.6) / 2.0
  const RealCellSummary& u = sums[uring];
  EXPECT_EQ(u.status, "errors");
  EXPECT_EQ(u.runs, 3);
  EXPECT_EQ(u.measured, 2);
  EXPECT_EQ(u.problem_runs, 2);
  EXPECT_DOUBLE_EQ(*u.cpu_us_per_req, 1.45);

  const std::size_t resp = 0;
  const auto epoll_i = *p.sections[0].find_server("epoll");
  const auto load = *p.sections[0].find_load("set-p16");
  EXPECT_DOUBLE_EQ(*real_cpu_ratio(p, sums, resp, epoll_i, load, "redis-server"), 0.5);
  EXPECT_DOUBLE_EQ(*real_rps_ratio(p, sums, resp, epoll_i, load, "redis-server"), 1.2);
  // A load where redis-server was not measured has no ratio.
  EXPECT_FALSE(real_cpu_ratio(p, sums, resp, epoll_i, 0, "redis-server").has_value());
  // A cell never run, and a skipped one.
  EXPECT_EQ(sums[cell(p, "resp", "epoll", "get-p1")].status, "not run");
}

TEST(ShootoutRealReport, TargetVerdicts) {
  const RealPlan p = small_plan();
  std::vector<RealRunRecord> runs = {run(cell(p, "resp", "redis-server", "set-p16"), 1, 5e5, 2.0),
                                     run(cell(p, "resp", "epoll", "set-p16"), 1, 6e5, 1.2),
                                     run(cell(p, "resp", "uring", "set-p16"), 1, 6e5, 1.0)};
  const auto v = judge_targets(p, summarize_real(p, runs), 0);
  std::set<std::string> seen;
  for (const auto& t : v) {
    if (t.target.load != "set-p16") {
      EXPECT_EQ(t.verdict, "not measured");
      continue;
    }
    seen.insert(t.target.server);
    if (t.target.server == "epoll") {
      EXPECT_DOUBLE_EQ(*t.ratio, 0.6);
      EXPECT_EQ(t.verdict, "met");  // at the bound
    } else {
      EXPECT_DOUBLE_EQ(*t.ratio, 0.5);
      EXPECT_EQ(t.verdict, "met");
    }
  }
  EXPECT_EQ(seen, (std::set<std::string>{"epoll", "uring"}));
  runs[1].server_cpu_us_per_req = 1.3;
  for (const auto& t : judge_targets(p, summarize_real(p, runs), 0))
    if (t.target.server == "epoll" && t.target.load == "set-p16") {
      EXPECT_EQ(t.verdict, "missed");
    }
}

TEST(ShootoutRealReport, ResultsJsonHasEveryRunAndTheMedians) {
  const RealPlan p = small_plan();
  const std::size_t nginx = cell(p, "http", "nginx", "c100");
  const std::size_t h2o = cell(p, "http", "h2o", "c100");
  const std::size_t epoll = cell(p, "http", "epoll", "c100");
  RealShootoutRun rr;
  rr.runs = {run(nginx, 1, 1e5, 10), run(h2o, 1, 1.1e5, 8), run(epoll, 1, 1.3e5, 6)};
  rr.runs[2].tool = {{"requests", 260000}};
  rr.versions["nginx"] = "nginx version: nginx/1.22.1";
  rr.passes_started = 1;
  const auto sums = summarize_real(p, rr.runs);
  const auto j = real_results_json(p, rr, sums);
  ASSERT_TRUE(j.contains("resp"));
  ASSERT_TRUE(j.contains("http"));
  EXPECT_EQ(j["versions"]["nginx"], "nginx version: nginx/1.22.1");
  const auto& http = j["http"];
  EXPECT_EQ(http["baseline"], "nginx");
  EXPECT_EQ(http["tool"], "wrk");
  ASSERT_EQ(http["runs"].size(), 3u);
  EXPECT_EQ(http["runs"][2]["server"], "epoll");
  EXPECT_EQ(http["runs"][2]["load"], "c100");
  EXPECT_EQ(http["runs"][2]["tool"]["requests"], 260000);
  EXPECT_EQ(http["runs"][2]["server_command"], "srv");
  EXPECT_DOUBLE_EQ(http["runs"][2]["server_cpu_us_per_req"].get<double>(), 6);
  EXPECT_DOUBLE_EQ(http["runs"][2]["server_user_s"].get<double>(), 0.24);
  EXPECT_EQ(j["resp"]["runs"].size(), 0u);
  bool found = false;
  for (const auto& c : http["cells"]) {
    if (c["server"] != "epoll" || c["load"] != "c100") continue;
    found = true;
    EXPECT_EQ(c["status"], "ok");
    EXPECT_DOUBLE_EQ(c["median"]["server_cpu_us_per_req"].get<double>(), 6);
    EXPECT_DOUBLE_EQ(c["ratio_to"]["nginx"]["server_cpu_us_per_req"].get<double>(), 0.6);
    EXPECT_DOUBLE_EQ(c["ratio_to"]["h2o"]["server_cpu_us_per_req"].get<double>(), 0.75);
    EXPECT_DOUBLE_EQ(c["ratio_to"]["nginx"]["rps"].get<double>(), 1.3);
  }
  EXPECT_TRUE(found);
  bool target_found = false;
  for (const auto& t : http["targets"])
    if (t["server"] == "epoll" && t["load"] == "c100" && t["against"] == "nginx") {
      target_found = true;
      EXPECT_EQ(t["verdict"], "met");
      EXPECT_DOUBLE_EQ(t["max_ratio"].get<double>(), 0.7);
    }
  EXPECT_TRUE(target_found);
}

TEST(ShootoutRealReport, SummaryMarkdownTables) {
  const RealPlan p = small_plan();
  RealShootoutRun rr;
  rr.pinned = true;
  rr.runs = {run(cell(p, "resp", "redis-server", "set-p16"), 1, 5e5, 2.0),
             run(cell(p, "resp", "epoll", "set-p16"), 1, 6e5, 1.5),
             run(cell(p, "resp", "redis-server", "set-p16"), 2, 5e5, 2.2),
             run(cell(p, "resp", "epoll", "set-p16"), 2, 6e5, 1.3, "errors"),
             run(cell(p, "http", "nginx", "c100"), 1, 1e5, 10)};
  const auto sums = summarize_real(p, rr.runs);
  const std::string md = real_summary_markdown(p, rr, sums, {"real_resp.png"}, "");
  EXPECT_NE(md.find("## Real servers"), std::string::npos);
  EXPECT_NE(md.find("### RESP: iomux vs redis-server"), std::string::npos);
  EXPECT_NE(
      md.find("| load | server | req/s | server µs/request | in user space | server CPU | CPU/req × redis-server |"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("| CPU/req × nginx | CPU/req × h2o |"), std::string::npos);
  // redis-server's row: its own ratio is 1; epoll's: 1.4 / 2.1.
  EXPECT_NE(md.find("| SET -P 16 | redis-server | 500.0k | 2.10 | 40% | 95% | 1 | 2.00, 2.20 (10%) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| SET -P 16 | iomux epoll | 600.0k ⚠ | 1.40 | 40% | 95% | 0.67× | 1.50, 1.30 (14%) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| iomux epoll | SET -P 16 | redis-server | ≤ 0.60× | 0.67× | **missed** |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("![real_resp.png](real_resp.png)"), std::string::npos);
  EXPECT_EQ(md.find("real_http.png"), std::string::npos);
  EXPECT_NE(md.find("Run-to-run spread of server CPU per request over 2 cells: median 12%, worst 14%"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("resp iomux epoll, SET -P 16: measured (1 of 2 runs clean), but: wrk socket errors"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("srv"), std::string::npos);  // the exact commands
}

TEST(ShootoutRealReport, ReadsARedisBenchmarkRunThroughAProxy) {
  const RealPlan p = small_plan();
  const RealSection& proxy = p.sections[*p.find_section("proxy")];
  const RealLoad& bulk = proxy.loads[*proxy.find_load("get-1mib")];
  ToolRun t;
  t.out =
      "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\","
      "\"p99_latency_ms\",\"max_latency_ms\"\n\"GET\",\"1633.99\",\"1.389\",\"0.216\",\"1.095\",\"3.231\","
      "\"5.471\",\"8.615\"\n";
  t.wall_s = 1.5;
  RealRunRecord r;
  read_tool_run(proxy, bulk, t, ServerCpu{0.1, 1.1}, r);
  EXPECT_EQ(r.status, "ok");
  EXPECT_EQ(r.requests, bulk.requests);
  EXPECT_DOUBLE_EQ(*r.rps, 1633.99);
  EXPECT_DOUBLE_EQ(*r.server_cpu_us_per_req, 1.2e6 / static_cast<double>(bulk.requests));
  // 2,500 values of 1 MiB for 1.2 s of the proxy's CPU.
  EXPECT_NEAR(*mb_per_cpu_s(bulk, r.server_cpu_us_per_req), 2500 * 1.048576 / 1.2, 1e-9);
}

TEST(ShootoutRealReport, ProxyTablesRatiosAndBulk) {
  const RealPlan p = small_plan();
  const std::size_t sec = *p.find_section("proxy");
  RealShootoutRun rr;
  rr.pinned = true;
  rr.runs = {run(cell(p, "proxy", "haproxy", "set-p1"), 1, 5e4, 20.0),
             run(cell(p, "proxy", "nginx-stream", "set-p1"), 1, 5e4, 16.0),
             run(cell(p, "proxy", "epoll", "set-p1"), 1, 5e4, 15.0),
             run(cell(p, "proxy", "haproxy", "set-1mib"), 1, 1500, 500.0),
             run(cell(p, "proxy", "uring", "set-1mib"), 1, 1500, 524.288)};
  const auto sums = summarize_real(p, rr.runs);
  const std::string md = real_summary_markdown(p, rr, sums, {}, "");
  EXPECT_NE(md.find("### TCP proxies in front of redis-server"), std::string::npos);
  EXPECT_NE(md.find("| load | proxy | req/s | proxy µs/request | in user space | proxy CPU | MB per CPU-s | CPU/req × "
                    "haproxy | CPU/req × nginx-stream |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| SET -P 1 | iomux epoll | 50.0k | 15.0 | 40% | 95% | – | 0.75× | 0.94× |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| SET 1 MiB | iomux uring | 1.50k | 524.3 | 40% | 95% | 2000 | 1.05× | – |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| iomux epoll | SET -P 1 | haproxy | ≤ 0.80× | 0.75× | met |"), std::string::npos) << md;
  EXPECT_NE(md.find("| iomux uring | SET 1 MiB | haproxy | ≤ 1.00× | 1.05× | **missed** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| iomux uring | SET -P 1 | haproxy | ≤ 0.80× | – | not measured |"), std::string::npos) << md;
  // The RESP table has no bulk column.
  EXPECT_EQ(md.find("| load | server | req/s | server µs/request | in user space | server CPU | MB per CPU-s |"),
            std::string::npos);

  const auto j = real_results_json(p, rr, sums);
  const auto& proxy = j["proxy"];
  EXPECT_EQ(proxy["baseline"], "haproxy");
  EXPECT_EQ(proxy["loads"][4]["value_bytes"], 1048576);
  bool found = false;
  for (const auto& c : proxy["cells"])
    if (c["server"] == "uring" && c["load"] == "set-1mib") {
      found = true;
      EXPECT_DOUBLE_EQ(c["median"]["mb_per_cpu_s"].get<double>(), 2000);
      EXPECT_NEAR(c["ratio_to"]["haproxy"]["server_cpu_us_per_req"].get<double>(), 1.048576, 1e-12);
    }
  EXPECT_TRUE(found);
  EXPECT_EQ(judge_targets(p, sums, sec).size(), 12u);
}

TEST(ShootoutRealReport, NoProxyYetInTheTargets) {
  const RealPlan p = plan_without_proxy();
  RealShootoutRun rr;
  rr.runs = {run(cell(p, "proxy", "haproxy", "set-p1"), 1, 5e4, 20.0)};
  const auto sums = summarize_real(p, rr.runs);
  for (const auto& v : judge_targets(p, sums, 0)) EXPECT_EQ(v.verdict, "not measured: no proxy yet");
  const std::string md = real_summary_markdown(p, rr, sums, {}, "");
  EXPECT_NE(md.find("| iomux epoll | SET -P 1 | haproxy | ≤ 0.80× | – | not measured: no proxy yet |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| SET -P 1 | iomux uring | skipped: --protocol proxy is not built yet"), std::string::npos) << md;
}

}  // namespace
