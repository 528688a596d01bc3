// The real-servers plan of `iomux shootout`: which cells, in which order, what is skipped and
// why, and the exact command lines and configuration files of a run. No program is run: the
// lookups are injected.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "iomux/shootout/real_servers.hpp"

namespace {

using namespace iomux::shootout;

// Every program "installed" under /usr/bin except those listed; every model available.
RealPlanOptions options(std::set<std::string> missing = {}) {
  RealPlanOptions o;
  o.find_program = [missing](std::string_view name) {
    return missing.count(std::string(name)) ? std::string() : "/usr/bin/" + std::string(name);
  };
  o.model_unavailable = [](std::string_view) { return std::string(); };
  o.wrk_script = "/src/bench/wrk/pipeline.lua";
  o.iomux_has_proxy = [] { return true; };
  o.nginx_stream_module = "/usr/lib/nginx/modules/ngx_stream_module.so";
  return o;
}

std::size_t runnable(const RealPlan& p) {
  return static_cast<std::size_t>(
      std::count_if(p.cells.begin(), p.cells.end(), [](const RealCell& c) { return c.runnable(); }));
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(ShootoutRealPlan, DefaultServersLoadsAndCells) {
  const RealPlan p = make_real_plan(options());
  EXPECT_EQ(p.repeat, 3);
  ASSERT_EQ(p.sections.size(), 3u);
  const RealSection& resp = p.sections[0];
  const RealSection& http = p.sections[1];
  EXPECT_EQ(resp.key, "resp");
  EXPECT_EQ(resp.baseline, "redis-server");
  ASSERT_EQ(resp.servers.size(), 6u);
  EXPECT_EQ(resp.servers[0].name, "redis-server");
  EXPECT_FALSE(resp.servers[0].iomux);
  std::vector<std::string> models;
  for (std::size_t i = 1; i < resp.servers.size(); ++i) {
    EXPECT_TRUE(resp.servers[i].iomux);
    models.push_back(resp.servers[i].name);
  }
  EXPECT_EQ(models, kRealModels);
  EXPECT_EQ(resp.servers[1].label(), "iomux epoll");

  std::vector<std::string> keys;
  for (const auto& l : resp.loads) keys.push_back(l.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"ping-p1", "set-p1", "get-p1", "ping-p16", "set-p16", "get-p16"}));
  for (const auto& l : resp.loads) {
    EXPECT_EQ(l.clients, 50);
    EXPECT_GT(l.requests, 0u);
  }
  EXPECT_EQ(resp.loads[4].test, "SET");
  EXPECT_EQ(resp.loads[4].pipeline, 16);

  EXPECT_EQ(http.baseline, "nginx");
  EXPECT_EQ(http.also_against, std::vector<std::string>{"h2o"});
  ASSERT_EQ(http.servers.size(), 7u);
  EXPECT_EQ(http.servers[0].name, "nginx");
  EXPECT_EQ(http.servers[1].name, "h2o");
  keys.clear();
  for (const auto& l : http.loads) keys.push_back(l.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"c100", "c100-pipe16", "c1000", "c1000-pipe16"}));
  EXPECT_EQ(http.loads[3].clients, 1000);
  EXPECT_EQ(http.loads[3].depth, 16);
  EXPECT_DOUBLE_EQ(http.loads[0].duration_s, 2);

  EXPECT_EQ(p.sections[2].key, "proxy");
  EXPECT_EQ(p.cells.size(), 6u * 6 + 7u * 4 + 4u * 6);
  EXPECT_EQ(runnable(p), p.cells.size());
  EXPECT_TRUE(p.notes.empty());
}

TEST(ShootoutRealPlan, OnePassGoesRoundRobinOverTheServers) {
  const RealPlan p = make_real_plan(options());
  // Load-major: within a load every server in turn, so two runs of a server are never adjacent.
  for (std::size_t i = 1; i < p.cells.size(); ++i) {
    const RealCell& a = p.cells[i - 1];
    const RealCell& b = p.cells[i];
    if (a.section == b.section) {
      EXPECT_NE(a.server, b.server) << i;
      EXPECT_TRUE(b.load == a.load || (b.load == a.load + 1 && b.server == 0)) << i;
    }
  }
  // Every (section, server, load) exactly once.
  std::set<std::tuple<std::size_t, std::size_t, std::size_t>> seen;
  for (const auto& c : p.cells) EXPECT_TRUE(seen.insert({c.section, c.server, c.load}).second);
  ASSERT_TRUE(p.find_cell(1, 1, 2).has_value());
  EXPECT_EQ(p.cells[*p.find_cell(1, 1, 2)].server, 1u);
}

TEST(ShootoutRealPlan, QuickIsOneShortRunPerCell) {
  RealPlanOptions o = options();
  o.quick = true;
  const RealPlan quick = make_real_plan(o);
  const RealPlan full = make_real_plan(options());
  EXPECT_EQ(quick.repeat, 1);
  EXPECT_LT(quick.sections[0].loads[0].requests, full.sections[0].loads[0].requests);
  EXPECT_LT(quick.sections[1].loads[0].duration_s, full.sections[1].loads[0].duration_s);
  EXPECT_LT(estimate_real_plan_s(quick), estimate_real_plan_s(full) / 3);
  o.repeat = 5;
  EXPECT_EQ(make_real_plan(o).repeat, 5);
}

TEST(ShootoutRealPlan, MissingServersAreSkippedWithTheirPackage) {
  const RealPlan p = make_real_plan(options({"redis-server", "h2o"}));
  EXPECT_TRUE(contains(p.notes, "redis-server not found: install redis-server"));
  EXPECT_TRUE(contains(p.notes, "h2o not found: install h2o"));
  for (const auto& c : p.cells) {
    const auto& server = p.sections[c.section].servers[c.server];
    if (p.sections[c.section].key == "proxy") {  // redis-server is every proxy's upstream
      EXPECT_EQ(c.skip, "skipped: redis-server not found: install redis-server");
      continue;
    }
    EXPECT_EQ(c.runnable(), server.name != "redis-server" && server.name != "h2o") << server.name;
    if (!c.runnable()) {
      EXPECT_EQ(c.skip, "skipped: " + server.name + " not found: install " + server.name);
    }
  }
}

TEST(ShootoutRealPlan, MissingToolSkipsItsSection) {
  const RealPlan p = make_real_plan(options({"redis-benchmark"}));
  EXPECT_EQ(p.sections[0].skip, "redis-benchmark not found: install redis-tools");
  EXPECT_TRUE(contains(p.notes, "resp section skipped: redis-benchmark not found: install redis-tools"));
  for (const auto& c : p.cells) EXPECT_EQ(c.runnable(), c.section == 1);
  const RealPlan q = make_real_plan(options({"wrk"}));
  for (const auto& c : q.cells) EXPECT_EQ(c.runnable(), c.section != 1);
}

TEST(ShootoutRealPlan, WithoutThePipelineScriptOnlyPipelinedLoadsAreSkipped) {
  RealPlanOptions o = options();
  o.wrk_script = "";
  const RealPlan p = make_real_plan(o);
  EXPECT_TRUE(contains(p.notes, "bench/wrk/pipeline.lua not found: the pipelined HTTP loads are skipped"));
  for (const auto& c : p.cells) EXPECT_EQ(c.runnable(), c.section != 1 || p.sections[1].loads[c.load].depth == 0);
}

TEST(ShootoutRealPlan, ModelsUnavailableOrChosen) {
  RealPlanOptions o = options();
  o.model_unavailable = [](std::string_view m) {
    return m == "uring" ? std::string("io_uring disabled") : std::string();
  };
  RealPlan p = make_real_plan(o);
  EXPECT_TRUE(contains(p.notes, "model uring not available here: io_uring disabled"));
  const auto uring = p.sections[0].find_server("uring");
  ASSERT_TRUE(uring.has_value());
  EXPECT_FALSE(p.cells[*p.find_cell(0, *uring, 0)].runnable());

  o = options();
  o.models = std::vector<std::string>{"uring", "epoll", "none"};
  p = make_real_plan(o);
  ASSERT_EQ(p.sections[0].servers.size(), 3u);  // redis-server + the two, in ladder order
  EXPECT_EQ(p.sections[0].servers[1].name, "epoll");
  EXPECT_EQ(p.sections[0].servers[2].name, "uring");
  o.models = std::vector<std::string>{"none"};
  p = make_real_plan(o);
  EXPECT_EQ(p.sections[1].servers.size(), 2u);  // nginx, h2o
}

TEST(ShootoutRealPlan, TargetsNameServersAndLoadsOfThePlan) {
  const RealPlan p = make_real_plan(options());
  for (const auto& s : p.sections) {
    EXPECT_FALSE(s.targets.empty());
    for (const auto& t : s.targets) {
      EXPECT_TRUE(s.find_server(t.server).has_value()) << t.server;
      EXPECT_TRUE(s.find_load(t.load).has_value()) << t.load;
      EXPECT_TRUE(s.find_server(t.against).has_value()) << t.against;
      EXPECT_GT(t.max_ratio, 0);
    }
  }
  // The headline numbers.
  auto target = [&](std::size_t sec, const std::string& server, const std::string& load, const std::string& against) {
    for (const auto& t : p.sections[sec].targets)
      if (t.server == server && t.load == load && t.against == against) return t.max_ratio;
    return -1.0;
  };
  EXPECT_DOUBLE_EQ(target(0, "epoll", "set-p16", "redis-server"), 0.6);
  EXPECT_DOUBLE_EQ(target(0, "uring", "get-p1", "redis-server"), 0.8);
  EXPECT_DOUBLE_EQ(target(1, "epoll", "c100", "nginx"), 0.7);
  EXPECT_DOUBLE_EQ(target(1, "uring", "c100-pipe16", "nginx"), 0.5);
  EXPECT_DOUBLE_EQ(target(1, "epoll", "c1000", "h2o"), 1.0);
}

TEST(ShootoutRealPlan, RedisBenchmarkCommandIsOneTest) {
  const RealPlan p = make_real_plan(options());
  const RealSection& resp = p.sections[0];
  const auto argv = tool_argv(p, resp, resp.loads[*resp.find_load("set-p16")], 6380);
  EXPECT_EQ(join_argv(argv), "/usr/bin/redis-benchmark -h 127.0.0.1 -p 6380 -c 50 -P 16 -n 600000 -t set --csv");
  EXPECT_EQ(tool_argv(p, resp, resp.loads[0], 6380)[12], "ping_inline");
  EXPECT_EQ(join_argv(resp_seed_argv(resp, resp.loads[0], 6380)),
            "/usr/bin/redis-benchmark -h 127.0.0.1 -p 6380 -c 1 -n 100 -t set --csv");
}

TEST(ShootoutRealPlan, WrkCommands) {
  const RealPlan p = make_real_plan(options());
  const RealSection& http = p.sections[1];
  EXPECT_EQ(join_argv(tool_argv(p, http, http.loads[0], 8080)),
            "/usr/bin/wrk -t1 -c100 -d2s --latency http://127.0.0.1:8080/plaintext");
  EXPECT_EQ(join_argv(tool_argv(p, http, http.loads[3], 8080)),
            "/usr/bin/wrk -t1 -c1000 -d2s --latency -s /src/bench/wrk/pipeline.lua http://127.0.0.1:8080 -- "
            "/plaintext 16");
}

TEST(ShootoutRealPlan, ServerCommands) {
  const RealPlan p = make_real_plan(options());
  const ServerFiles files{"/tmp/x", "root"};
  const RealSection& resp = p.sections[0];
  EXPECT_EQ(join_argv(server_argv(resp.servers[0], RealProtocol::resp, 6380, files, "/b/iomux")),
            "/usr/bin/redis-server --port 6380 --bind 127.0.0.1 --save '' --appendonly no --io-threads 1 "
            "--daemonize no --dir /tmp/x --logfile '' --loglevel warning");
  EXPECT_EQ(join_argv(server_argv(resp.servers[1], RealProtocol::resp, 6380, files, "/b/iomux")),
            "/b/iomux serve --model epoll --protocol resp --host 127.0.0.1 --port 6380 -q");
  const RealSection& http = p.sections[1];
  EXPECT_EQ(join_argv(server_argv(http.servers[0], RealProtocol::http, 8080, files, "/b/iomux")),
            "/usr/bin/nginx -p /tmp/x -c /tmp/x/nginx.conf -e /tmp/x/error.log");
  EXPECT_EQ(join_argv(server_argv(http.servers[1], RealProtocol::http, 8080, files, "/b/iomux")),
            "/usr/bin/h2o -c /tmp/x/h2o.conf");
  EXPECT_EQ(server_argv(http.servers[6], RealProtocol::http, 8080, files, "/b/iomux")[3], "threaded");
}

TEST(ShootoutRealPlan, NginxConfig) {
  const std::string c = nginx_config(8080, "/tmp/x");
  for (const char* want :
       {"worker_processes 1;", "master_process off;", "daemon off;", "access_log off;", "error_log /tmp/x/error.log;",
        "keepalive_requests 1000000000;", "listen 127.0.0.1:8080 backlog=4096;", "location = /plaintext {",
        "default_type text/plain;", "return 200 \"Hello, World!\";", "pid /tmp/x/nginx.pid;"})
    EXPECT_NE(c.find(want), std::string::npos) << want;
}

TEST(ShootoutRealPlan, H2oConfig) {
  const std::string c = h2o_config(8081, "/tmp/x", "root");
  for (const char* want :
       {"user: root\n", "num-threads: 1\n", "error-log: /tmp/x/error.log\n", "  host: 127.0.0.1\n", "  port: 8081\n",
        "      /plaintext:\n", "file.file: /tmp/x/www/plaintext.txt\n", "file.etag: OFF\n"})
    EXPECT_NE(c.find(want), std::string::npos) << want;
  EXPECT_EQ(c.find("access-log"), std::string::npos);
  EXPECT_EQ(h2o_config(8081, "/tmp/x", "").find("user:"), std::string::npos);
}

TEST(ShootoutRealPlan, SlowerServersGetShorterRespRuns) {
  const RealPlan p = make_real_plan(options());
  const RealLoad& set1 = p.sections[0].loads[*p.sections[0].find_load("set-p1")];
  ASSERT_EQ(set1.requests, 50000u);
  // The counts are sized for 35k/s at -P 1: a server at 17.5k/s gets half, rounded to thousands.
  EXPECT_EQ(resp_requests_for_rate(set1, 17600), 25000u);
  EXPECT_EQ(resp_requests_for_rate(set1, 1e6), 50000u);  // never more than planned
  EXPECT_EQ(resp_requests_for_rate(set1, 10), 6250u);    // never less than an eighth
}

TEST(ShootoutRealPlan, DescribesItself) {
  const RealPlan p = make_real_plan(options({"h2o"}));
  const std::string d = describe_real_plan(p);
  EXPECT_NE(d.find("real servers: 88 cells (84 to run, 4 skipped), 3 runs each"), std::string::npos) << d;
  EXPECT_NE(d.find("iomux epoll-et"), std::string::npos);
  EXPECT_NE(d.find("h2o (skipped)"), std::string::npos);
  EXPECT_NE(d.find("note: h2o not found: install h2o"), std::string::npos);
  EXPECT_NE(d.find("SET -P 16 -n 600000"), std::string::npos);
  EXPECT_NE(describe_real_cell(p, p.cells[0]).find("redis-server"), std::string::npos);
  EXPECT_GT(estimate_real_plan_s(p), 60);
}

TEST(ShootoutRealPlan, ProxySectionServersLoadsAndTargets) {
  const RealPlan p = make_real_plan(options());
  const RealSection& proxy = p.sections[*p.find_section("proxy")];
  EXPECT_EQ(proxy.protocol, RealProtocol::proxy);
  EXPECT_EQ(proxy.tool, "redis-benchmark");
  EXPECT_EQ(proxy.upstream_program, "/usr/bin/redis-server");
  EXPECT_EQ(proxy.baseline, "haproxy");
  EXPECT_EQ(proxy.also_against, std::vector<std::string>{"nginx-stream"});
  std::vector<std::string> names;
  for (const auto& s : proxy.servers) names.push_back(s.label());
  // The default models of the proxy rows are epoll and uring only.
  EXPECT_EQ(names, (std::vector<std::string>{"haproxy", "nginx-stream", "iomux epoll", "iomux uring"}));
  EXPECT_EQ(proxy.servers[1].program, "/usr/bin/nginx");
  std::vector<std::string> keys;
  for (const auto& l : proxy.loads) keys.push_back(l.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"set-p1", "get-p1", "set-p16", "get-p16", "set-1mib", "get-1mib"}));
  const RealLoad& bulk = proxy.loads[4];
  EXPECT_TRUE(is_bulk(bulk));
  EXPECT_FALSE(is_bulk(proxy.loads[0]));
  EXPECT_EQ(bulk.value_bytes, 1048576u);
  EXPECT_EQ(bulk.clients, 4);
  EXPECT_EQ(bulk.test, "SET");
  EXPECT_EQ(proxy.loads[2].pipeline, 16);
  EXPECT_EQ(proxy.loads[2].clients, 50);
  EXPECT_TRUE(proxy.targets_note.empty());
  auto target = [&](const std::string& server, const std::string& load) {
    for (const auto& t : proxy.targets)
      if (t.server == server && t.load == load && t.against == "haproxy") return t.max_ratio;
    return -1.0;
  };
  EXPECT_DOUBLE_EQ(target("epoll", "set-p1"), 0.8);
  EXPECT_DOUBLE_EQ(target("uring", "get-p1"), 0.8);
  EXPECT_DOUBLE_EQ(target("epoll", "get-p16"), 1.0);
  EXPECT_DOUBLE_EQ(target("uring", "set-1mib"), 1.0);
  EXPECT_EQ(proxy.targets.size(), 12u);

  RealPlanOptions o = options();
  o.models = std::vector<std::string>{"poll"};  // --models names the proxy rows too
  const RealPlan q = make_real_plan(o);
  EXPECT_EQ(q.sections[2].servers.back().label(), "iomux poll");
}

TEST(ShootoutRealPlan, ProxyRowsWaitForServeToHaveAProxy) {
  RealPlanOptions o = options();
  o.iomux_has_proxy = [] { return false; };
  const RealPlan p = make_real_plan(o);
  const RealSection& proxy = p.sections[2];
  EXPECT_EQ(proxy.targets_note, "not measured: no proxy yet");
  EXPECT_TRUE(contains(p.notes, "proxy: the iomux rows are skipped: --protocol proxy is not built yet"));
  for (const auto& c : p.cells) {
    const RealServer& server = p.sections[c.section].servers[c.server];
    EXPECT_EQ(c.runnable(), c.section != 2 || !server.iomux) << server.label();
    if (c.section == 2 && server.iomux) {
      EXPECT_EQ(c.skip, "skipped: --protocol proxy is not built yet (`iomux serve --help` lists no proxy protocol)");
    }
  }
  // Only the proxy section depends on it.
  EXPECT_EQ(runnable(p), p.cells.size() - 2 * 6);
}

TEST(ShootoutRealPlan, ProxyPeersMissing) {
  RealPlanOptions o = options({"haproxy"});
  o.nginx_stream_module = "";
  const RealPlan p = make_real_plan(o);
  const RealSection& proxy = p.sections[2];
  EXPECT_EQ(proxy.servers[0].skip, "haproxy not found: install haproxy");
  EXPECT_EQ(proxy.servers[1].skip,
            "nginx's stream module (/usr/lib/nginx/modules/ngx_stream_module.so) not found: install "
            "libnginx-mod-stream");
  EXPECT_TRUE(contains(p.notes, proxy.servers[1].skip));
  EXPECT_FALSE(p.cells[*p.find_cell(2, 1, 0)].runnable());
  EXPECT_TRUE(p.cells[*p.find_cell(2, 2, 0)].runnable());
}

TEST(ShootoutRealPlan, SectionsCanBeChosen) {
  RealPlanOptions o = options();
  o.sections = std::vector<std::string>{"proxy"};
  const RealPlan p = make_real_plan(o);
  ASSERT_EQ(p.sections.size(), 1u);
  EXPECT_EQ(p.sections[0].key, "proxy");
  EXPECT_EQ(p.cells.size(), 4u * 6);
  for (const auto& c : p.cells) EXPECT_EQ(c.section, 0u);
  o.sections = std::vector<std::string>{"http", "resp"};  // always in plan order
  const RealPlan q = make_real_plan(o);
  ASSERT_EQ(q.sections.size(), 2u);
  EXPECT_EQ(q.sections[0].key, "resp");
  EXPECT_EQ(q.sections[1].key, "http");
}

TEST(ShootoutRealPlan, QuickProxyIsSetsOnly) {
  RealPlanOptions o = options();
  o.quick = true;
  o.sections = std::vector<std::string>{"proxy"};
  const RealPlan quick = make_real_plan(o);
  std::vector<std::string> keys;
  for (const auto& l : quick.sections[0].loads) keys.push_back(l.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"set-p1", "set-p16", "set-1mib"}));
  for (const auto& t : quick.sections[0].targets) EXPECT_TRUE(quick.sections[0].find_load(t.load)) << t.load;
  // Small: about 15 s of the 3 minutes of --quick.
  EXPECT_LT(estimate_real_plan_s(quick), 20);
}

TEST(ShootoutRealPlan, ProxyCommands) {
  const RealPlan p = make_real_plan(options());
  const RealSection& proxy = p.sections[2];
  const RealLoad& get_bulk = proxy.loads[*proxy.find_load("get-1mib")];
  EXPECT_EQ(join_argv(tool_argv(p, proxy, get_bulk, 7000)),
            "/usr/bin/redis-benchmark -h 127.0.0.1 -p 7000 -c 4 -P 1 -n 2500 -t get -d 1048576 --csv");
  EXPECT_EQ(join_argv(tool_argv(p, proxy, proxy.loads[0], 7000)),
            "/usr/bin/redis-benchmark -h 127.0.0.1 -p 7000 -c 50 -P 1 -n 75000 -t set --csv");
  // The GET reads the value a SET of the same size left.
  EXPECT_EQ(join_argv(resp_seed_argv(proxy, get_bulk, 7000)),
            "/usr/bin/redis-benchmark -h 127.0.0.1 -p 7000 -c 1 -n 100 -t set -d 1048576 --csv");
  const ServerFiles files{"/tmp/x", "root"};
  EXPECT_EQ(join_argv(server_argv(proxy.servers[0], RealProtocol::proxy, 7000, files, "/b/iomux", 7001)),
            "/usr/bin/haproxy -db -f /tmp/x/haproxy.cfg");
  EXPECT_EQ(join_argv(server_argv(proxy.servers[1], RealProtocol::proxy, 7000, files, "/b/iomux", 7001)),
            "/usr/bin/nginx -p /tmp/x -c /tmp/x/nginx-stream.conf -e /tmp/x/error.log");
  EXPECT_EQ(join_argv(server_argv(proxy.servers[3], RealProtocol::proxy, 7000, files, "/b/iomux", 7001)),
            "/b/iomux serve --model uring --protocol proxy --upstream 127.0.0.1:7001 --host 127.0.0.1 --port 7000 -q");
}

TEST(ShootoutRealPlan, ProxyConfigs) {
  const std::string h = haproxy_config(7000, 7001);
  for (const char* want : {"  nbthread 1\n", "  mode tcp\n", "  bind 127.0.0.1:7000\n", "  default_backend redis\n",
                           "  server redis 127.0.0.1:7001\n", "  maxconn 4096\n"})
    EXPECT_NE(h.find(want), std::string::npos) << want;
  EXPECT_EQ(h.find("daemon"), std::string::npos);  // -db keeps it in the foreground
  const std::string n = nginx_stream_config(7000, 7001, "/tmp/x", "/m/ngx_stream_module.so");
  for (const char* want : {"load_module /m/ngx_stream_module.so;", "worker_processes 1;", "master_process off;",
                           "daemon off;", "pid /tmp/x/nginx.pid;", "error_log /tmp/x/error.log;", "stream {",
                           "listen 127.0.0.1:7000 backlog=4096;", "proxy_pass 127.0.0.1:7001;"})
    EXPECT_NE(n.find(want), std::string::npos) << want;
  EXPECT_EQ(n.find("http {"), std::string::npos);
  EXPECT_EQ(n.rfind("# ", 0), 0u);
  EXPECT_LT(n.find("load_module"), n.find("events"));  // nginx wants it before any block
}

TEST(ShootoutRealPlan, ServeHelpListsProxy) {
  const std::string without =
      "Options:\n  --protocol TEXT:{ack,line,echo,resp,http}=ack\n"
      "                              ack: reply per chunk; ...; a proxy is not here\n";
  EXPECT_FALSE(help_lists_proxy_protocol(without));
  const std::string with =
      "Options:\n  -m,--model TEXT:{epoll,uring}=epoll\n  --protocol TEXT:{ack,line,echo,resp,http,proxy}=ack\n"
      "  --upstream TEXT ...\n";
  EXPECT_TRUE(help_lists_proxy_protocol(with));
  EXPECT_TRUE(help_lists_proxy_protocol("  --protocol TEXT:{proxy,ack}\n"));
  EXPECT_FALSE(help_lists_proxy_protocol("  --protocol TEXT:{ack,proxyv2}\n"));
  EXPECT_FALSE(help_lists_proxy_protocol("  --mode TEXT:{proxy}\n"));
  EXPECT_FALSE(help_lists_proxy_protocol(""));
  EXPECT_FALSE(help_lists_proxy_protocol("  --protocol TEXT:{ack,proxy"));
}

TEST(ShootoutRealPlan, BulkRunsAreCutInHundreds) {
  const RealPlan p = make_real_plan(options());
  const RealSection& proxy = p.sections[2];
  const RealLoad& bulk = proxy.loads[*proxy.find_load("set-1mib")];
  ASSERT_EQ(bulk.requests, 2500u);
  // Sized for 1,500 values a second: a proxy at 750 gets half.
  EXPECT_EQ(resp_requests_for_rate(bulk, 750), 1200u);
  EXPECT_EQ(resp_requests_for_rate(bulk, 1e5), 2500u);
  EXPECT_EQ(resp_requests_for_rate(bulk, 1), 1000u);  // the floor: 1,000, or an eighth
  const RealLoad& p16 = proxy.loads[*proxy.find_load("set-p16")];
  EXPECT_EQ(resp_requests_for_rate(p16, 325'000), 450'000u);
}

TEST(ShootoutRealPlan, MegabytesPerCpuSecond) {
  RealLoad l;
  l.value_bytes = 1048576;
  EXPECT_DOUBLE_EQ(*mb_per_cpu_s(l, 524.288), 2000);
  EXPECT_FALSE(mb_per_cpu_s(l, std::nullopt));
  EXPECT_FALSE(mb_per_cpu_s(l, 0.0));
  l.value_bytes = 0;
  EXPECT_FALSE(mb_per_cpu_s(l, 1.0));
}

}  // namespace
