#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "iomux/loadgen/histogram.hpp"

namespace {

using iomux::loadgen::LatencyHistogram;

TEST(LoadgenHistogram, EmptyReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.percentile(100), 0u);
}

TEST(LoadgenHistogram, BucketsAreContiguousAndNarrow) {
  std::size_t prev = 0;
  for (std::size_t i = 1; i < LatencyHistogram::kBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::bucket_low(i), LatencyHistogram::bucket_high(i - 1) + 1) << i;
    const double lo = static_cast<double>(LatencyHistogram::bucket_low(i));
    const double width = static_cast<double>(LatencyHistogram::bucket_high(i)) - lo + 1;
    if (i >= LatencyHistogram::kSubCount)
      ASSERT_LE(width / lo, 1.0 / 128 + 1e-12) << i;  // else exact
    else
      ASSERT_EQ(width, 1.0) << i;
    prev = i;
  }
  EXPECT_EQ(prev + 1, LatencyHistogram::kBuckets);
  EXPECT_EQ(LatencyHistogram::bucket_high(LatencyHistogram::kBuckets - 1), LatencyHistogram::kMaxTrackable);
  // Every value maps into the bucket that contains it.
  std::mt19937_64 rng(42);
  for (int k = 0; k < 100000; ++k) {
    const std::uint64_t v = rng() >> (rng() % 64);
    const std::size_t i = LatencyHistogram::index_of(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets);
    if (v <= LatencyHistogram::kMaxTrackable) {
      ASSERT_LE(LatencyHistogram::bucket_low(i), v);
      ASSERT_GE(LatencyHistogram::bucket_high(i), v);
    } else {
      ASSERT_EQ(i, LatencyHistogram::kBuckets - 1);
    }
  }
}

TEST(LoadgenHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100u);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(90), 90u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LoadgenHistogram, UniformMicrosecondsWithinOnePercent) {
  // 1 us .. 100 ms in 1 us steps: the q-th percentile is q % of 100 ms.
  LatencyHistogram h;
  for (std::uint64_t us = 1; us <= 100000; ++us) h.record(us * 1000);
  for (double q : {10.0, 50.0, 90.0, 99.0, 99.9}) {
    const double expected = q / 100.0 * 100000.0 * 1000.0;
    const double got = static_cast<double>(h.percentile(q));
    EXPECT_NEAR(got, expected, expected * 0.01) << "p" << q;
  }
  EXPECT_EQ(h.max(), 100000u * 1000u);
  EXPECT_NEAR(h.mean(), 50000.5 * 1000.0, 1.0);
}

TEST(LoadgenHistogram, ExponentialDistributionPercentiles) {
  // Latencies ~ Exp(mean 200 us): p = -mean * ln(1 - q).
  std::mt19937_64 rng(7);
  std::exponential_distribution<double> exp(1.0 / 200000.0);
  LatencyHistogram h;
  for (int i = 0; i < 1'000'000; ++i) h.record(static_cast<std::uint64_t>(exp(rng)) + 1);
  for (double q : {50.0, 90.0, 99.0, 99.9}) {
    const double expected = -200000.0 * std::log(1.0 - q / 100.0);
    EXPECT_NEAR(static_cast<double>(h.percentile(q)), expected, expected * 0.03) << "p" << q;
  }
  EXPECT_NEAR(h.mean(), 200000.0, 2000.0);
}

TEST(LoadgenHistogram, BimodalTail) {
  LatencyHistogram h;
  h.record_n(50'000, 990);     // 50 us
  h.record_n(20'000'000, 10);  // 20 ms
  EXPECT_NEAR(static_cast<double>(h.percentile(50)), 50'000.0, 500.0);
  EXPECT_NEAR(static_cast<double>(h.percentile(99)), 50'000.0, 500.0);
  EXPECT_NEAR(static_cast<double>(h.percentile(99.9)), 20'000'000.0, 200'000.0);
  EXPECT_EQ(h.max(), 20'000'000u);
}

TEST(LoadgenHistogram, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(3);
  LatencyHistogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    const std::uint64_t v = 1000 + rng() % 5'000'000;
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  LatencyHistogram merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(LatencyHistogram{});  // merging an empty one changes nothing
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  for (double q : {1.0, 50.0, 90.0, 99.0, 99.9, 99.99}) EXPECT_EQ(merged.percentile(q), all.percentile(q)) << q;
}

TEST(LoadgenHistogram, Extremes) {
  LatencyHistogram h;
  h.record(0);
  h.record(UINT64_MAX);  // beyond the range: last bucket, but max stays exact
  h.record(150ull * 1'000'000'000ull);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), UINT64_MAX);
  EXPECT_EQ(h.percentile(0), 0u);
  EXPECT_EQ(h.percentile(100), UINT64_MAX);
  EXPECT_GE(h.percentile(50), LatencyHistogram::bucket_low(LatencyHistogram::kBuckets - 1));
  EXPECT_EQ(h.mean(), static_cast<double>(UINT64_MAX) / 3.0);  // the sum saturates
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(LoadgenHistogram, PercentileIsClampedToObservedValues) {
  LatencyHistogram h;
  h.record(1'000'003);  // one value: every percentile is that value, not a bucket midpoint
  EXPECT_EQ(h.percentile(50), 1'000'003u);
  EXPECT_EQ(h.percentile(99.9), 1'000'003u);
}

TEST(LoadgenHistogram, ConstantMemory) {
  EXPECT_LT(LatencyHistogram::kBuckets * sizeof(std::uint64_t), 40u * 1024u);
  // 100 s is inside the tracked range.
  EXPECT_GE(LatencyHistogram::kMaxTrackable, 100ull * 1'000'000'000ull);
}

}  // namespace
