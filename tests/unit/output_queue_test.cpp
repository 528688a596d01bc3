// The connection's queue of owed replies: order, copies and what is not copied, deferred
// places, partial sends, and the memory it reports.
#include "core/output_queue.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace iomux::detail {
namespace {

// Everything gather() offers, concatenated (what one big enough send would take).
std::string sendable(const OutputQueue& q) {
  iovec iov[64];
  const std::size_t n = q.gather(iov);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

// Sends (and consumes) everything that may leave now.
std::string drain(OutputQueue& q) {
  std::string all;
  for (std::string s; !(s = sendable(q)).empty();) {
    q.consume(s.size());
    all += s;
  }
  return all;
}

TEST(OutputQueue, KeepsTheOrderOfEveryKindOfWrite) {
  OutputQueue q;
  static const std::string constant = "const|";
  q.append_copy("copy|");
  q.append_stable(constant);
  q.append_owned(std::string(100, 'o') + "|");
  auto array = std::make_unique<char[]>(4);
  std::memcpy(array.get(), "arr|", 4);
  q.append_owned(std::move(array), 4);
  q.append_copy("tail");
  EXPECT_EQ(q.bytes(), 5 + 6 + 101 + 4 + 4u);
  EXPECT_EQ(drain(q), "copy|const|" + std::string(100, 'o') + "|arr|tail");
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutputQueue, ConsecutiveCopiesCoalesceIntoOneIovec) {
  OutputQueue q;
  for (int i = 0; i < 100; ++i) q.append_copy("ab");
  iovec iov[4];
  EXPECT_EQ(q.gather(iov), 1u);
  EXPECT_EQ(iov[0].iov_len, 200u);
}

TEST(OutputQueue, StableViewsAndMovedInBuffersAreNotCopied) {
  OutputQueue q;
  static const std::string constant = "a constant reply";
  std::string big(1000, 'b');
  const char* big_bytes = big.data();
  q.append_stable(constant);
  q.append_owned(std::move(big));
  iovec iov[4];
  ASSERT_EQ(q.gather(iov), 2u);
  EXPECT_EQ(iov[0].iov_base, constant.data());
  EXPECT_EQ(iov[1].iov_base, big_bytes);  // the very buffer that was moved in
}

TEST(OutputQueue, ShortMovedInStringsAreCopiedSinceTheirBytesLiveInTheObject) {
  OutputQueue q;
  std::string small = "tiny";
  q.append_owned(std::move(small));
  q.append_copy("+more");
  EXPECT_EQ(drain(q), "tiny+more");
}

TEST(OutputQueue, AnUnfilledDeferredPlaceHoldsBackWhatFollows) {
  OutputQueue q;
  q.append_copy("before|");
  const std::uint64_t first = q.append_deferred();
  q.append_copy("between|");
  const std::uint64_t second = q.append_deferred();
  q.append_copy("after");
  EXPECT_EQ(q.deferred_unfilled(), 2u);
  EXPECT_EQ(drain(q), "before|");
  EXPECT_TRUE(q.blocked());
  // Filled out of order: the second waits behind the first.
  EXPECT_TRUE(q.fill_deferred(second, std::string("SECOND|")));
  EXPECT_EQ(drain(q), "");
  EXPECT_TRUE(q.fill_deferred(first, std::string("FIRST|")));
  EXPECT_EQ(drain(q), "FIRST|between|SECOND|after");
  EXPECT_EQ(q.deferred_unfilled(), 0u);
  EXPECT_FALSE(q.fill_deferred(first, std::string("again")));
}

TEST(OutputQueue, AnEmptyFillJustRemovesThePlace) {
  OutputQueue q;
  const std::uint64_t id = q.append_deferred();
  q.append_copy("rest");
  EXPECT_TRUE(q.fill_deferred(id, std::string()));
  EXPECT_EQ(drain(q), "rest");
  EXPECT_TRUE(q.empty());
}

TEST(OutputQueue, PartialSendsResumeWhereTheSocketStopped) {
  OutputQueue q;
  q.append_copy("0123456789");
  q.append_owned(std::string(40, 'x'));
  q.consume(3);
  EXPECT_EQ(sendable(q).substr(0, 7), "3456789");
  q.consume(7 + 30);
  EXPECT_EQ(sendable(q), std::string(10, 'x'));
  EXPECT_EQ(q.bytes(), 10u);
}

TEST(OutputQueue, TransientViewsArePersistedBeforeTheirBytesDie) {
  OutputQueue q;
  std::string input = "echo me";
  q.append_transient(input);
  EXPECT_EQ(q.lone_transient(), "echo me");
  q.persist_transients();
  input.assign(input.size(), '?');  // the input buffer is reused
  EXPECT_EQ(q.lone_transient(), "");
  EXPECT_EQ(drain(q), "echo me");
}

TEST(OutputQueue, FrozenSegmentsDoNotMoveWhileASendUsesThem) {
  OutputQueue q;
  q.append_copy("in flight");
  iovec iov[4];
  ASSERT_EQ(q.gather(iov), 1u);
  const void* in_flight = iov[0].iov_base;
  q.freeze();
  constexpr std::string_view more = "more bytes that would reallocate a shared buffer";
  for (int i = 0; i < 1000; ++i) q.append_copy(more);
  ASSERT_GE(q.gather(iov), 1u);
  EXPECT_EQ(iov[0].iov_base, in_flight);
  q.unfreeze();
  q.consume(9);
  EXPECT_EQ(q.bytes(), 1000 * more.size());
}

TEST(OutputQueue, PrependPutsBytesInFrontOfEverything) {
  OutputQueue q;
  q.append_copy("second");
  q.prepend_copy("first|");
  EXPECT_EQ(drain(q), "first|second");
}

TEST(OutputQueue, HeldMemoryFollowsWhatIsOwedAndIsFreedWhenEmpty) {
  OutputQueue q;
  EXPECT_EQ(q.held(), 0u);
  q.append_owned(std::string(4096, 'h'));
  EXPECT_GE(q.held(), 4096u);
  drain(q);
  q.release_if_empty();
  EXPECT_EQ(q.held(), 0u);
}

TEST(OutputQueue, ClearDropsEverythingIncludingDeferredPlaces) {
  OutputQueue q;
  q.append_copy("x");
  q.append_deferred();
  q.clear();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.deferred_unfilled(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutputQueue, ClearKeepsTheBytesOfASendInFlightUntilTheQueueGoes) {
  // uring: the connection closes while the kernel may still read a send's bytes. Before, the
  // clear freed them and the peer received heap pointers in place of the reply.
  OutputQueue q;
  q.append_copy("copied|");
  q.append_owned(std::string(100, 'o'));
  iovec iov[8];
  const std::size_t n = q.gather(iov);
  ASSERT_EQ(n, 2u);
  const std::string before = sendable(q);
  q.freeze();
  q.append_copy("written after the send was submitted");
  q.append_deferred();
  q.clear();
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_EQ(q.deferred_unfilled(), 0u);
  EXPECT_GE(q.held(), 7u + 100u);  // still held, and still counted
  std::string still;
  for (std::size_t i = 0; i < n; ++i) still.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  EXPECT_EQ(still, before);
}

TEST(OutputQueue, ClearWithoutASendInFlightHoldsNothing) {
  OutputQueue q;
  q.append_copy("x");
  q.append_owned(std::string(100, 'o'));
  q.clear();
  q.release_if_empty();
  EXPECT_EQ(q.held(), 0u);
}

TEST(OutputQueue, ASharedOwnerIsCountedOnceHoweverManySegmentsReferenceIt) {
  OutputQueue q;
  auto value = std::make_shared<const std::string>(1 << 20, 'v');
  for (int i = 0; i < 200; ++i) {
    q.append_copy("$1048576\r\n");
    q.append_shared(value, *value);
  }
  EXPECT_EQ(q.bytes(), 200u * (value->size() + 10));
  EXPECT_LT(q.held(), 2u * value->size());  // one value, not 200
  EXPECT_GE(q.held(), value->size());
  EXPECT_EQ(value.use_count(), 201);
  std::string all = drain(q);
  EXPECT_EQ(all.size(), 200u * (value->size() + 10));
  q.release_if_empty();
  EXPECT_EQ(q.held(), 0u);
  EXPECT_EQ(value.use_count(), 1);  // every reference dropped once sent
}

TEST(OutputQueue, ASharedOwnerStaysCountedUntilItsLastSegmentIsSent) {
  OutputQueue q;
  auto value = std::make_shared<const std::string>(1000, 'v');
  q.append_shared(value, *value);
  q.append_shared(value, std::string_view(*value).substr(0, 10));
  q.consume(1000);
  EXPECT_GE(q.held(), 1000u);
  q.consume(10);
  q.release_if_empty();
  EXPECT_EQ(q.held(), 0u);
}

}  // namespace
}  // namespace iomux::detail
