// A log-linear latency histogram: constant memory (~31 KiB), O(1) record, mergeable.
//
// Values are nanoseconds. Below 128 ns every value has its own bucket; above, each power of
// two is split into 128 equal buckets, so a bucket is at most 1/128 (0.78 %) of its values wide
// and a reported percentile (the bucket's midpoint, clamped to the exact min/max) is within
// 0.4 % of a recorded value. The range ends at 2^37 - 1 ns (~137 s); larger values are counted
// in the last bucket, while max() stays exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace iomux::loadgen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 7;
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << kSubBits;  // 128
  static constexpr unsigned kTopBit = 36;  // highest bit of the largest trackable value
  static constexpr std::uint64_t kMaxTrackable = (std::uint64_t{1} << (kTopBit + 1)) - 1;
  static constexpr std::size_t kBuckets = (kTopBit - kSubBits + 2) * kSubCount;  // 3968

  LatencyHistogram();

  void record(std::uint64_t ns) noexcept { record_n(ns, 1); }
  void record_n(std::uint64_t ns, std::uint64_t n) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  void reset() noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept;
  // q in [0, 100]: the smallest recorded value v such that at least q % of values are <= v,
  // up to the bucket precision. 0 with no values; q <= 0 gives min(), q >= 100 gives max().
  [[nodiscard]] std::uint64_t percentile(double q) const noexcept;

  // Bucket arithmetic, exposed for tests.
  static std::size_t index_of(std::uint64_t ns) noexcept;
  static std::uint64_t bucket_low(std::size_t index) noexcept;
  static std::uint64_t bucket_high(std::size_t index) noexcept;  // inclusive

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;  // saturating; 2^64 ns is 584 years
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace iomux::loadgen
