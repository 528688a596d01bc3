// Reply checking: every byte a connection receives is compared with the expected reply stream
// (the reply to one request, over and over), and each reply completed ends the oldest request
// in flight, whose latency is recorded if it was sent in the measured interval. Bytes nobody
// asked for, or wrong bytes, fail the connection; the first such bytes are kept, escaped, for
// the report.
#include <algorithm>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "iomux/log.hpp"
#include "worker.hpp"

namespace iomux::loadgen::engine {

bool Worker::consume(Conn& c, std::uint32_t i, const char* p, std::size_t n, std::int64_t now) {
  const char* expected = plan_.reply.data();
  const std::size_t rlen = plan_.reply.size();
  const std::uint32_t k = plan_.pipeline;
  std::uint64_t done_all = 0;
  while (n > 0) {
    if (c.count == 0) {  // bytes nobody asked for
      if (out.first_mismatch.empty() && !stopping_)
        out.first_mismatch = fmt::format("{} unexpected byte(s) with no request outstanding: \"{}\"", n,
                                         escape_bytes(std::string_view(p, n), 48));
      fail(i, Failure::mismatch, now);
      return false;
    }
    const std::size_t m = std::min(n, rlen - c.rpos);
    if (std::memcmp(p, expected + c.rpos, m) != 0) {
      if (out.first_mismatch.empty() && !stopping_) {
        std::size_t at = 0;
        while (at < m && p[at] == expected[c.rpos + at]) ++at;
        const std::size_t show = std::min<std::size_t>(32, m - at);
        out.first_mismatch =
            fmt::format("wrong bytes at offset {} of a {}-byte reply: expected \"{}\", got \"{}\"", c.rpos + at, rlen,
                        escape_bytes(std::string_view(expected + c.rpos + at, show), 48),
                        escape_bytes(std::string_view(p + at, std::min<std::size_t>(32, n - at)), 48));
      }
      fail(i, Failure::mismatch, now);
      return false;
    }
    c.rpos += static_cast<std::uint32_t>(m);
    p += m;
    n -= m;
    if (c.rpos == rlen) {
      c.rpos = 0;
      const std::int64_t ts = ts_[static_cast<std::size_t>(i) * k + c.head];
      c.head = (c.head + 1 == k) ? 0 : c.head + 1;
      --c.count;
      --inflight_total_;
      ++done_all;
      if (ts >= tl_.measure_start) {
        out.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - ts)));
        ++out.measured;
      }
    }
  }
  if (done_all) {
    out.all_completed += done_all;
    last_progress_ = now;
  }
  return true;
}

}  // namespace iomux::loadgen::engine
