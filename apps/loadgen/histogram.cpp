#include "iomux/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace iomux::loadgen {

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

std::size_t LatencyHistogram::index_of(std::uint64_t ns) noexcept {
  if (ns > kMaxTrackable) ns = kMaxTrackable;
  if (ns < kSubCount) return static_cast<std::size_t>(ns);
  const unsigned top = 63u - static_cast<unsigned>(std::countl_zero(ns));  // >= kSubBits
  const unsigned shift = top - kSubBits;
  // Octave `shift` occupies indices [(shift + 1) * 128, (shift + 2) * 128); the mantissa
  // (ns >> shift) is in [128, 256).
  return static_cast<std::size_t>(shift) * kSubCount + static_cast<std::size_t>(ns >> shift);
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t index) noexcept {
  if (index < kSubCount) return index;
  const std::uint64_t shift = index / kSubCount - 1;
  const std::uint64_t mantissa = index - shift * kSubCount;
  return mantissa << shift;
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t index) noexcept {
  if (index < kSubCount) return index;
  const std::uint64_t shift = index / kSubCount - 1;
  return bucket_low(index) + ((std::uint64_t{1} << shift) - 1);
}

void LatencyHistogram::record_n(std::uint64_t ns, std::uint64_t n) noexcept {
  if (n == 0) return;
  counts_[index_of(ns)] += n;
  count_ += n;
  const std::uint64_t add = ns * n;
  const bool overflow = (n != 0 && add / n != ns) || sum_ + add < sum_;
  sum_ = overflow ? UINT64_MAX : sum_ + add;
  min_ = std::min(min_, ns);
  max_ = std::max(max_, ns);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ = (sum_ + other.sum_ < sum_) ? UINT64_MAX : sum_ + other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void LatencyHistogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  sum_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
}

double LatencyHistogram::mean() const noexcept {
  return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
}

std::uint64_t LatencyHistogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (!(q > 0.0)) return min_;  // also catches NaN
  if (q >= 100.0) return max_;
  auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t lo = bucket_low(i);
      const std::uint64_t mid = lo + (bucket_high(i) - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace iomux::loadgen
