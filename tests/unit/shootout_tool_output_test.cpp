// Parsing redis-benchmark's and wrk's reports. The fixtures are real output, captured from
// redis-benchmark 7.0.15 and wrk 4.1.0 (Debian 12) against redis-server 7.0.15 and nginx 1.22 on
// the development VM (while it was busy, hence the modest rates).
#include <gtest/gtest.h>

#include "iomux/shootout/tool_output.hpp"

namespace {

using namespace iomux::shootout;

// redis-benchmark -h 127.0.0.1 -p P -c 50 -P 16 -n 200000 -t set --csv
constexpr const char* kRedisSetCsv =
    R"("test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","81900.09","8.743","0.312","7.255","24.767","29.935","37.887"
)";

// redis-benchmark ... -t lpush --csv against a key holding a string: version 7 stops at the
// first error reply, with the header printed and no row (exit status 1; stderr below).
constexpr const char* kRedisErrorCsv =
    R"("test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
)";

// wrk -t1 -c100 -d2s --latency http://127.0.0.1:P/plaintext (nginx)
constexpr const char* kWrkPlain = R"(Running 2s test @ http://127.0.0.1:18080/plaintext
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.38ms   10.27ms  52.62ms   64.05%
    Req/Sec     8.37k     2.58k   13.58k    68.42%
  Latency Distribution
     50%   10.90ms
     75%   17.52ms
     90%   24.66ms
     99%   43.31ms
  16762 requests in 2.02s, 2.57MB read
Requests/sec:   8279.87
Transfer/sec:      1.27MB
)";

// wrk -t1 -c100 -d2s --latency -s bench/wrk/pipeline.lua http://127.0.0.1:P -- /plaintext 16
constexpr const char* kWrkPipelined = R"(Running 2s test @ http://127.0.0.1:18080
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    45.34ms   25.40ms 135.25ms   62.45%
    Req/Sec    20.06k     3.51k   26.42k    63.16%
  Latency Distribution
     50%   43.19ms
     75%   64.23ms
     90%   78.86ms
     99%  104.73ms
  40088 requests in 2.02s, 6.16MB read
Requests/sec:  19863.61
Transfer/sec:      3.05MB
)";

// wrk -t1 -c100 -d1s --latency http://127.0.0.1:P/missing (nginx: 404s)
constexpr const char* kWrkNon2xx = R"(Running 1s test @ http://127.0.0.1:18080/missing
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    13.55ms    7.74ms  31.38ms   65.47%
    Req/Sec     7.07k   817.22     8.52k    70.00%
  Latency Distribution
     50%   13.86ms
     75%   18.62ms
     90%   25.49ms
     99%   31.27ms
  7203 requests in 1.04s, 2.12MB read
  Non-2xx or 3xx responses: 7203
Requests/sec:   6953.64
Transfer/sec:      2.04MB
)";

// wrk -t1 -c50 -d1 http://127.0.0.1:P/plaintext against redis-server, which drops HTTP clients.
constexpr const char* kWrkSocketErrors = R"(Running 1s test @ http://127.0.0.1:16379/plaintext
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
    Req/Sec     0.00      0.00     0.00      -nan%
  0 requests in 1.06s, 0.00B read
  Socket errors: connect 0, read 3277, write 0, timeout 0
Requests/sec:      0.00
Transfer/sec:       0.00B
)";

TEST(ShootoutToolOutput, RedisBenchmarkCsvRow) {
  const auto r = parse_redis_benchmark_csv(kRedisSetCsv);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->rows.size(), 1u);
  const auto& row = r->rows[0];
  EXPECT_EQ(row.test, "SET");
  EXPECT_DOUBLE_EQ(row.rps, 81900.09);
  EXPECT_DOUBLE_EQ(row.avg_ms, 8.743);
  EXPECT_DOUBLE_EQ(row.min_ms, 0.312);
  EXPECT_DOUBLE_EQ(row.p50_ms, 7.255);
  EXPECT_DOUBLE_EQ(row.p95_ms, 24.767);
  EXPECT_DOUBLE_EQ(row.p99_ms, 29.935);
  EXPECT_DOUBLE_EQ(row.max_ms, 37.887);
  EXPECT_TRUE(r->server_errors.empty());
}

TEST(ShootoutToolOutput, RedisBenchmarkStoppedByAnErrorHasNoResult) {
  EXPECT_FALSE(parse_redis_benchmark_csv(kRedisErrorCsv).has_value());
  EXPECT_FALSE(parse_redis_benchmark_csv("").has_value());
  EXPECT_FALSE(
      parse_redis_benchmark_csv("Could not connect to Redis at 127.0.0.1:1: Connection refused\n").has_value());
}

TEST(ShootoutToolOutput, RedisBenchmarkSeveralTestsAndErrorLines) {
  // Older redis-benchmark -e printed error replies on stdout and went on.
  const std::string text = std::string("Error from server: ERR unknown command 'PING'\r\n") + kRedisSetCsv +
                           "\"GET\",\"120000.50\",\"0.2\",\"0.1\",\"0.2\",\"0.3\",\"0.4\",\"0.9\"\r\n";
  const auto r = parse_redis_benchmark_csv(text);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[1].test, "GET");
  EXPECT_DOUBLE_EQ(r->rows[1].rps, 120000.5);
  ASSERT_EQ(r->server_errors.size(), 1u);
  EXPECT_EQ(r->server_errors[0], "ERR unknown command 'PING'");
}

TEST(ShootoutToolOutput, RedisBenchmarkProgressLinesAreSkipped) {
  // Without --csv on a terminal, progress is redrawn with '\r' before the result.
  const std::string text = std::string("SET: rps=0.0 (overall: 0.0) avg_msec=-nan (overall: -nan)\r") + kRedisSetCsv;
  const auto r = parse_redis_benchmark_csv(text);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rows.size(), 1u);
}

TEST(ShootoutToolOutput, WrkPlainWithLatencyDistribution) {
  const auto r = parse_wrk_output(kWrkPlain);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->requests, 16762u);
  EXPECT_DOUBLE_EQ(r->duration_s, 2.02);
  EXPECT_NEAR(r->bytes_read, 2.57 * 1024 * 1024, 1);
  EXPECT_DOUBLE_EQ(r->rps, 8279.87);
  ASSERT_TRUE(r->latency_avg_us && r->latency_stdev_us && r->latency_max_us);
  EXPECT_NEAR(*r->latency_avg_us, 11380, 1e-6);
  EXPECT_NEAR(*r->latency_stdev_us, 10270, 1e-6);
  EXPECT_NEAR(*r->latency_max_us, 52620, 1e-6);
  ASSERT_TRUE(r->p50_us && r->p75_us && r->p90_us && r->p99_us);
  EXPECT_NEAR(*r->p50_us, 10900, 1e-6);
  EXPECT_NEAR(*r->p99_us, 43310, 1e-6);
  EXPECT_EQ(r->socket_errors(), 0u);
  EXPECT_EQ(r->non_2xx_3xx, 0u);
}

TEST(ShootoutToolOutput, WrkPipelinedCountsEveryResponse) {
  const auto r = parse_wrk_output(kWrkPipelined);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->requests, 40088u);
  EXPECT_DOUBLE_EQ(r->rps, 19863.61);
  EXPECT_NEAR(*r->p99_us, 104730, 1e-6);
}

TEST(ShootoutToolOutput, WrkNon2xxResponses) {
  const auto r = parse_wrk_output(kWrkNon2xx);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->requests, 7203u);
  EXPECT_EQ(r->non_2xx_3xx, 7203u);
  EXPECT_EQ(r->socket_errors(), 0u);
}

TEST(ShootoutToolOutput, WrkSocketErrorsAndNothingAnswered) {
  const auto r = parse_wrk_output(kWrkSocketErrors);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->requests, 0u);
  EXPECT_EQ(r->read_errors, 3277u);
  EXPECT_EQ(r->connect_errors, 0u);
  EXPECT_EQ(r->socket_errors(), 3277u);
  EXPECT_DOUBLE_EQ(r->rps, 0);
}

TEST(ShootoutToolOutput, WrkWithoutSummaryIsNoReport) {
  EXPECT_FALSE(parse_wrk_output("").has_value());
  EXPECT_FALSE(parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n").has_value());
  // Cut before the summary.
  const std::string cut = std::string(kWrkPlain).substr(0, std::string(kWrkPlain).find("  16762"));
  EXPECT_FALSE(parse_wrk_output(cut).has_value());
}

TEST(ShootoutToolOutput, WrkUnits) {
  EXPECT_DOUBLE_EQ(*parse_wrk_time_us("613.95us"), 613.95);
  EXPECT_DOUBLE_EQ(*parse_wrk_time_us("4.24ms"), 4240);
  EXPECT_DOUBLE_EQ(*parse_wrk_time_us("2.00s"), 2e6);
  EXPECT_DOUBLE_EQ(*parse_wrk_time_us("1.50m"), 90e6);
  EXPECT_FALSE(parse_wrk_time_us("4.24").has_value());
  EXPECT_FALSE(parse_wrk_time_us("fast").has_value());
  EXPECT_DOUBLE_EQ(*parse_wrk_bytes("0.00B"), 0);
  EXPECT_DOUBLE_EQ(*parse_wrk_bytes("512.00B"), 512);
  EXPECT_DOUBLE_EQ(*parse_wrk_bytes("2.00KB"), 2048);
  EXPECT_DOUBLE_EQ(*parse_wrk_bytes("1.00GB"), 1024.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(*parse_wrk_count("147.56k"), 147560);
  EXPECT_DOUBLE_EQ(*parse_wrk_count("817.22"), 817.22);
  EXPECT_DOUBLE_EQ(*parse_wrk_count("1.20M"), 1.2e6);
}

TEST(ShootoutToolOutput, JsonOfTheReports) {
  const auto j = to_json(*parse_wrk_output(kWrkNon2xx));
  EXPECT_EQ(j["requests"], 7203);
  EXPECT_EQ(j["non_2xx_3xx"], 7203);
  EXPECT_EQ(j["socket_errors"]["read"], 0);
  EXPECT_DOUBLE_EQ(j["latency_us"]["p99"].get<double>(), 31270);
  const auto r = to_json(*parse_redis_benchmark_csv(kRedisSetCsv));
  ASSERT_EQ(r["rows"].size(), 1u);
  EXPECT_EQ(r["rows"][0]["test"], "SET");
  EXPECT_DOUBLE_EQ(r["rows"][0]["p99_latency_ms"].get<double>(), 29.935);
}

}  // namespace
