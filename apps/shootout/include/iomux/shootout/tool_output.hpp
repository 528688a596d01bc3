// Reading what the real servers' own benchmark tools print: redis-benchmark's --csv report and
// wrk's text report. IO-free, so the parsers are tested on captured output
// (tests/unit/shootout_tool_output_test.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace iomux::shootout {

// One row of `redis-benchmark --csv`:
//   "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
//   "SET","98039.22","0.263","0.064","0.255","0.367","0.479","1.327"
struct RedisBenchmarkRow {
  std::string test;  // "SET", "PING_INLINE"
  double rps = 0;
  double avg_ms = 0, min_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

struct RedisBenchmarkReport {
  std::vector<RedisBenchmarkRow> rows;
  // "Error from server: ..." lines. redis-benchmark 7 prints one on stderr and exits at the
  // first error reply (no result row then); older ones printed them on stdout with -e and went on.
  std::vector<std::string> server_errors;
};

// Parses redis-benchmark's output (--csv). nullopt when no result row is found (the tool failed;
// its stderr says why).
std::optional<RedisBenchmarkReport> parse_redis_benchmark_csv(std::string_view stdout_text);

// wrk's report (wrk 4.x, with or without --latency):
//   Running 2s test @ http://127.0.0.1:8080/plaintext
//     1 threads and 100 connections
//     Thread Stats   Avg      Stdev     Max   +/- Stdev
//       Latency   613.95us  125.50us   4.24ms   83.66%
//       Req/Sec   147.56k    10.21k  160.63k    80.00%
//     Latency Distribution
//        50%  598.00us
//        ...
//     293648 requests in 2.00s, 36.12MB read
//     Socket errors: connect 0, read 3, write 0, timeout 0
//     Non-2xx or 3xx responses: 12
//   Requests/sec: 146751.38
//   Transfer/sec:     18.05MB
struct WrkReport {
  std::uint64_t requests = 0;  // responses completed ("293648 requests in ...")
  double duration_s = 0;       // "... in 2.00s"
  double bytes_read = 0;       // "36.12MB read", in bytes (wrk's units are powers of 1024)
  double rps = 0;              // "Requests/sec:"
  std::optional<double> latency_avg_us, latency_stdev_us, latency_max_us;
  std::optional<double> p50_us, p75_us, p90_us, p99_us;  // with --latency
  std::uint64_t connect_errors = 0, read_errors = 0, write_errors = 0, timeouts = 0;
  std::uint64_t non_2xx_3xx = 0;

  [[nodiscard]] std::uint64_t socket_errors() const noexcept {
    return connect_errors + read_errors + write_errors + timeouts;
  }
};

// Parses wrk's stdout. nullopt when the summary lines are missing (wrk failed).
std::optional<WrkReport> parse_wrk_output(std::string_view stdout_text);

// "613.95us" / "4.24ms" / "1.00s" / "2.00m" -> microseconds; "36.12MB" -> bytes; "147.56k" -> 147560.
std::optional<double> parse_wrk_time_us(std::string_view s);
std::optional<double> parse_wrk_bytes(std::string_view s);
std::optional<double> parse_wrk_count(std::string_view s);

nlohmann::json to_json(const RedisBenchmarkReport& r);
nlohmann::json to_json(const WrkReport& r);

}  // namespace iomux::shootout
