#include "iomux/shootout/tool_output.hpp"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace iomux::shootout {
namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    // redis-benchmark redraws its progress line with '\r'; keep what follows the last one.
    if (const auto cr = line.rfind('\r'); cr != std::string_view::npos) {
      if (cr + 1 == line.size()) line.remove_suffix(1);
      if (const auto cr2 = line.rfind('\r'); cr2 != std::string_view::npos) line = line.substr(cr2 + 1);
    }
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// A decimal number at the start of `s` ("12.5us" -> 12.5, rest "us"). The tools print no
// exponents, so none are read.
std::optional<double> leading_number(std::string_view s, std::string_view* rest) {
  std::size_t n = 0;
  if (n < s.size() && s[n] == '-') ++n;
  while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
  if (n == 0 || (n == 1 && s[0] == '-')) return std::nullopt;
  const std::string buf(s.substr(0, n));
  char* end = nullptr;
  const double v = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size()) return std::nullopt;
  if (rest) *rest = s.substr(n);
  return v;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  s = trim(s);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// The fields of one CSV line with every field double-quoted (redis-benchmark's form).
std::vector<std::string> csv_fields(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == '"') {
      std::string field;
      ++i;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += line[i++];
      }
      out.push_back(std::move(field));
      while (i < line.size() && line[i] != ',') ++i;
    } else {
      const std::size_t comma = line.find(',', i);
      out.emplace_back(trim(line.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i)));
      i = comma == std::string_view::npos ? line.size() : comma;
    }
    if (i < line.size() && line[i] == ',') {
      ++i;
      if (i == line.size()) out.emplace_back();
    }
  }
  return out;
}

// "a, b 3, c" style: the number after `key` in `line` ("read 3").
std::optional<std::uint64_t> count_after(std::string_view line, std::string_view key) {
  const auto pos = line.find(key);
  if (pos == std::string_view::npos) return std::nullopt;
  std::string_view rest = trim(line.substr(pos + key.size()));
  std::size_t n = 0;
  while (n < rest.size() && std::isdigit(static_cast<unsigned char>(rest[n]))) ++n;
  return to_u64(rest.substr(0, n));
}

}  // namespace

std::optional<RedisBenchmarkReport> parse_redis_benchmark_csv(std::string_view text) {
  RedisBenchmarkReport r;
  for (std::string_view raw : lines_of(text)) {
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    if (starts_with(line, "Error from server")) {
      const auto colon = line.find(':');
      r.server_errors.emplace_back(trim(line.substr(colon == std::string_view::npos ? 0 : colon + 1)));
      continue;
    }
    if (line.front() != '"') continue;
    const auto f = csv_fields(line);
    if (f.size() < 2 || f[0] == "test") continue;  // the header
    RedisBenchmarkRow row;
    row.test = f[0];
    std::string_view rest;
    const auto rps = leading_number(f[1], &rest);
    if (!rps || !rest.empty()) continue;
    row.rps = *rps;
    double* lat[] = {&row.avg_ms, &row.min_ms, &row.p50_ms, &row.p95_ms, &row.p99_ms, &row.max_ms};
    for (std::size_t k = 0; k < 6 && k + 2 < f.size(); ++k)
      if (auto v = leading_number(f[k + 2], &rest)) *lat[k] = *v;
    r.rows.push_back(std::move(row));
  }
  if (r.rows.empty()) return std::nullopt;
  return r;
}

std::optional<double> parse_wrk_time_us(std::string_view s) {
  std::string_view unit;
  const auto v = leading_number(trim(s), &unit);
  if (!v) return std::nullopt;
  if (unit == "us") return *v;
  if (unit == "ms") return *v * 1e3;
  if (unit == "s") return *v * 1e6;
  if (unit == "m") return *v * 60e6;
  if (unit == "h") return *v * 3600e6;
  return std::nullopt;
}

std::optional<double> parse_wrk_bytes(std::string_view s) {
  std::string_view unit;
  const auto v = leading_number(trim(s), &unit);
  if (!v) return std::nullopt;
  static constexpr std::string_view kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB"};
  double scale = 1;
  for (std::string_view u : kUnits) {
    if (unit == u) return *v * scale;
    scale *= 1024;
  }
  return std::nullopt;
}

std::optional<double> parse_wrk_count(std::string_view s) {
  std::string_view unit;
  const auto v = leading_number(trim(s), &unit);
  if (!v) return std::nullopt;
  if (unit.empty()) return *v;
  if (unit == "k") return *v * 1e3;
  if (unit == "M") return *v * 1e6;
  if (unit == "G") return *v * 1e9;
  return std::nullopt;
}

std::optional<WrkReport> parse_wrk_output(std::string_view text) {
  WrkReport r;
  bool have_requests = false, have_rps = false;
  for (std::string_view raw : lines_of(text)) {
    const std::string_view line = trim(raw);
    const auto w = words(line);
    if (w.empty()) continue;
    if (w[0] == "Latency" && w.size() >= 4) {
      r.latency_avg_us = parse_wrk_time_us(w[1]);
      r.latency_stdev_us = parse_wrk_time_us(w[2]);
      r.latency_max_us = parse_wrk_time_us(w[3]);
    } else if (w.size() == 2 && w[0].size() >= 2 && w[0].back() == '%') {
      // A line of the latency distribution: "50%  598.00us".
      const auto pct = to_u64(w[0].substr(0, w[0].size() - 1));
      const auto us = parse_wrk_time_us(w[1]);
      if (pct && us) {
        if (*pct == 50) r.p50_us = us;
        if (*pct == 75) r.p75_us = us;
        if (*pct == 90) r.p90_us = us;
        if (*pct == 99) r.p99_us = us;
      }
    } else if (w.size() >= 6 && w[1] == "requests" && w[2] == "in") {
      // "293648 requests in 2.00s, 36.12MB read"
      const auto n = to_u64(w[0]);
      std::string_view dur = w[3];
      if (!dur.empty() && dur.back() == ',') dur.remove_suffix(1);
      const auto us = parse_wrk_time_us(dur);
      const auto bytes = parse_wrk_bytes(w[4]);
      if (!n || !us) return std::nullopt;
      r.requests = *n;
      r.duration_s = *us / 1e6;
      r.bytes_read = bytes.value_or(0);
      have_requests = true;
    } else if (starts_with(line, "Socket errors:")) {
      r.connect_errors = count_after(line, "connect").value_or(0);
      r.read_errors = count_after(line, "read").value_or(0);
      r.write_errors = count_after(line, "write").value_or(0);
      r.timeouts = count_after(line, "timeout").value_or(0);
    } else if (starts_with(line, "Non-2xx or 3xx responses:")) {
      r.non_2xx_3xx = count_after(line, "responses:").value_or(0);
    } else if (starts_with(line, "Requests/sec:") && w.size() >= 2) {
      std::string_view rest;
      if (auto v = leading_number(w[1], &rest); v && rest.empty()) {
        r.rps = *v;
        have_rps = true;
      }
    }
  }
  if (!have_requests) return std::nullopt;
  if (!have_rps) r.rps = r.duration_s > 0 ? static_cast<double>(r.requests) / r.duration_s : 0;
  return r;
}

nlohmann::json to_json(const RedisBenchmarkReport& r) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& row : r.rows)
    rows.push_back({{"test", row.test},
                    {"rps", row.rps},
                    {"avg_latency_ms", row.avg_ms},
                    {"min_latency_ms", row.min_ms},
                    {"p50_latency_ms", row.p50_ms},
                    {"p95_latency_ms", row.p95_ms},
                    {"p99_latency_ms", row.p99_ms},
                    {"max_latency_ms", row.max_ms}});
  return {{"rows", rows}, {"server_errors", r.server_errors}};
}

nlohmann::json to_json(const WrkReport& r) {
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {
      {"requests", r.requests},
      {"duration_s", r.duration_s},
      {"bytes_read", r.bytes_read},
      {"rps", r.rps},
      {"latency_us",
       {{"avg", opt(r.latency_avg_us)},
        {"stdev", opt(r.latency_stdev_us)},
        {"max", opt(r.latency_max_us)},
        {"p50", opt(r.p50_us)},
        {"p75", opt(r.p75_us)},
        {"p90", opt(r.p90_us)},
        {"p99", opt(r.p99_us)}}},
      {"socket_errors",
       {{"connect", r.connect_errors}, {"read", r.read_errors}, {"write", r.write_errors}, {"timeout", r.timeouts}}},
      {"non_2xx_3xx", r.non_2xx_3xx}};
}

}  // namespace iomux::shootout
