// JSON, CSV, text and progress formatting of a bench result.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "iomux/loadgen/bench.hpp"

namespace {

using iomux::ProtocolMode;
using namespace iomux::loadgen;

BenchResult sample_result() {
  BenchResult r;
  r.target = "127.0.0.1:41234";
  r.server_pid = 4242;
  r.requests = 1000;
  r.timeouts = 1;
  r.resets = 2;
  r.mismatches = 3;
  r.closed = 4;
  r.errors = 10;
  r.connect_failures = 5;
  r.measured_s = 2.0;
  r.rps = 500.0;
  r.mib_s = 0.043;
  for (int i = 1; i <= 1000; ++i) r.latency.record(static_cast<std::uint64_t>(i) * 1000);  // 1..1000 us
  r.client_cpu_pct = 12.34;
  r.server_cpu_us_per_req = 3.25;
  r.server_cpu_pct = 45.6;
  r.server_rss_kib = 2048;
  r.server_threads = 1;
  r.notes = {"a note"};
  return r;
}

TEST(LoadgenReport, JsonHasEveryField) {
  BenchConfig c;
  c.model = "epoll";
  c.protocol = ProtocolMode::line;
  c.connections = 100;
  c.idle = 5;
  c.pipeline = 4;
  c.rate = 1000;
  const auto j = to_json(c, sample_result());
  for (const char* key : {"model",
                          "target",
                          "protocol",
                          "connections",
                          "idle",
                          "size",
                          "pipeline",
                          "rate",
                          "duration_s",
                          "requests",
                          "errors",
                          "timeouts",
                          "resets",
                          "connect_failures",
                          "rps",
                          "mib_s",
                          "latency_us",
                          "client_cpu_pct",
                          "server_cpu_us_per_req",
                          "server_rss_kib"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["model"], "epoll");
  EXPECT_EQ(j["target"], "127.0.0.1:41234");
  EXPECT_EQ(j["protocol"], "line");
  EXPECT_EQ(j["connections"], 100);
  EXPECT_EQ(j["idle"], 5);
  EXPECT_EQ(j["pipeline"], 4);
  EXPECT_EQ(j["rate"], 1000.0);
  EXPECT_EQ(j["duration_s"], 2.0);
  EXPECT_EQ(j["requests"], 1000);
  EXPECT_EQ(j["errors"], 10);
  EXPECT_EQ(j["mismatches"], 3);
  EXPECT_EQ(j["connect_failures"], 5);
  EXPECT_EQ(j["rps"], 500.0);
  EXPECT_EQ(j["server_rss_kib"], 2048);
  EXPECT_EQ(j["server_cpu_us_per_req"], 3.25);
  EXPECT_EQ(j["client_cpu_pct"], 12.3);
  const auto& l = j["latency_us"];
  for (const char* key : {"p50", "p90", "p99", "p999", "max", "mean"}) EXPECT_TRUE(l.contains(key)) << key;
  EXPECT_NEAR(l["p50"].get<double>(), 500.0, 5.0);
  EXPECT_NEAR(l["p99"].get<double>(), 990.0, 10.0);
  EXPECT_EQ(l["max"].get<double>(), 1000.0);
  EXPECT_NEAR(l["mean"].get<double>(), 500.5, 0.01);
}

TEST(LoadgenReport, JsonWithoutServerHasNulls) {
  BenchConfig c;
  BenchResult r;
  r.target = "127.0.0.1:7890";
  const auto j = to_json(c, r);
  EXPECT_TRUE(j["model"].is_null());
  EXPECT_TRUE(j["server_cpu_us_per_req"].is_null());
  EXPECT_TRUE(j["server_rss_kib"].is_null());
  EXPECT_EQ(j["requests"], 0);
  EXPECT_EQ(j["latency_us"]["p99"], 0.0);
}

TEST(LoadgenReport, CsvHeaderMatchesRow) {
  BenchConfig c;
  c.spawn_command = "server --port 0, fast";  // a comma: the field gets quoted
  const std::string header = csv_header();
  const std::string row = csv_row(c, sample_result());
  EXPECT_EQ(header.find('\n'), std::string::npos);
  EXPECT_EQ(row.find('\n'), std::string::npos);
  EXPECT_EQ(row.rfind("\"spawn:server --port 0, fast\",ack,10,", 0), 0u) << row;
  // Same number of columns once the quoted comma is discounted.
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(row.begin(), row.end(), ',') - 1);
  EXPECT_NE(row.find(",1000,10,1,2,3,4,5,500.0,"), std::string::npos) << row;
  EXPECT_NE(row.find(",3.2500,45.6,2048"), std::string::npos) << row;

  BenchConfig plain;
  BenchResult none;
  const std::string empty_row = csv_row(plain, none);
  EXPECT_EQ(std::count(header.begin(), header.end(), ','), std::count(empty_row.begin(), empty_row.end(), ','));
  EXPECT_EQ(empty_row.substr(empty_row.size() - 3), ",,,");  // no server numbers
}

TEST(LoadgenReport, TextNamesTheNumbers) {
  BenchConfig c;
  c.model = "poll";
  const std::string t = format_text(c, sample_result());
  EXPECT_NE(t.find("bench: poll (127.0.0.1:41234), 10 connections, ack protocol, 64 B requests"), std::string::npos)
      << t;
  EXPECT_NE(t.find("1,000 in 2.00 s"), std::string::npos) << t;
  EXPECT_NE(t.find("500 req/s"), std::string::npos) << t;
  EXPECT_NE(t.find("p99 "), std::string::npos) << t;
  EXPECT_NE(t.find("max 1.00 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("errors      10 (timeouts 1, resets 2, wrong bytes 3, closed by server 4); connect failures 5"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("3.250 us CPU/request"), std::string::npos) << t;
  EXPECT_NE(t.find("RSS 2,048 KiB"), std::string::npos) << t;
  EXPECT_NE(t.find("note: a note"), std::string::npos) << t;
}

TEST(LoadgenReport, ProgressLine) {
  Progress p;
  p.elapsed_s = 3;
  p.interval_rps = 123456;
  p.requests = 10;
  p.p99_us = 85.5;
  const std::string s = format_progress(p);
  EXPECT_NE(s.find("3.0s"), std::string::npos) << s;
  EXPECT_NE(s.find("123,456 req/s"), std::string::npos) << s;
  EXPECT_NE(s.find("85.5 us"), std::string::npos) << s;
  EXPECT_EQ(s.find('\n'), std::string::npos);
  p.warming_up = true;
  EXPECT_NE(format_progress(p).find("warmup"), std::string::npos);
}

TEST(LoadgenReport, DescribeTarget) {
  BenchConfig c;
  EXPECT_EQ(describe_target(c), "127.0.0.1:7890");
  c.spawn_command = "peer --port 0";
  EXPECT_EQ(describe_target(c), "spawn:peer --port 0");
  c.spawn_command.clear();
  c.model = "uring";
  EXPECT_EQ(describe_target(c), "uring");
}

}  // namespace
