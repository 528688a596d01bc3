#include "core/buffer.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "core/fd.hpp"

namespace iomux::detail {
namespace {

TEST(Buffer, EmptyBufferOwnsNoMemory) {
  Buffer b;
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.capacity(), 0u);
  EXPECT_EQ(b.readable(), 0u);
}

TEST(Buffer, AppendThenConsumeInPieces) {
  Buffer b;
  b.append("hello ");
  b.append("world");
  EXPECT_EQ(b.view(), "hello world");
  b.consume(6);
  EXPECT_EQ(b.view(), "world");
  b.consume(5);
  EXPECT_TRUE(b.empty());
}

TEST(Buffer, FullyConsumedBufferRewindsInsteadOfGrowing) {
  Buffer b;
  b.append(std::string(200, 'a'));
  std::size_t cap = b.capacity();
  b.consume(200);
  b.append(std::string(200, 'b'));
  EXPECT_EQ(b.capacity(), cap);
  EXPECT_EQ(b.view(), std::string(200, 'b'));
}

TEST(Buffer, ReclaimsConsumedPrefixBeforeGrowing) {
  Buffer b;
  b.append(std::string(256, 'a'));
  ASSERT_EQ(b.capacity(), 256u);
  b.consume(200);
  b.append(std::string(150, 'b'));  // 56 + 150 fits in 256 after sliding to the front
  EXPECT_EQ(b.capacity(), 256u);
  EXPECT_EQ(b.view(), std::string(56, 'a') + std::string(150, 'b'));
}

TEST(Buffer, GrowsToFitLargeAppend) {
  Buffer b;
  std::string big(100000, 'x');
  big[99999] = 'y';
  b.append(big);
  EXPECT_EQ(b.view(), big);
  EXPECT_GE(b.capacity(), big.size());
}

TEST(Buffer, ReleaseIfEmptyFreesStorageOnlyWhenEmpty) {
  Buffer b;
  b.append("abc");
  b.release_if_empty();
  EXPECT_GT(b.capacity(), 0u);
  b.consume(3);
  b.release_if_empty();
  EXPECT_EQ(b.capacity(), 0u);
}

class BufferIo : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    a_.reset(sv[0]);
    b_.reset(sv[1]);
  }
  UniqueFd a_, b_;
};

TEST_F(BufferIo, ReadFromEmptyBufferLandsInSpillThenIsAppended) {
  ASSERT_EQ(::write(b_.get(), "ping", 4), 4);
  Buffer buf;
  char spill[64];
  EXPECT_EQ(buf.read_from(a_.get(), spill), 4);
  EXPECT_EQ(buf.view(), "ping");
}

TEST_F(BufferIo, ReadFromFillsWritableRegionFirstThenSpill) {
  Buffer buf;
  buf.ensure_writable(4);
  std::size_t room = buf.writable();
  std::string payload(room + 100, 'z');
  ASSERT_EQ(::write(b_.get(), payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
  char spill[4096];
  EXPECT_EQ(buf.read_from(a_.get(), spill), static_cast<ssize_t>(payload.size()));
  EXPECT_EQ(buf.view(), payload);
}

TEST_F(BufferIo, ReadFromReportsEofAndEagain) {
  Buffer buf;
  char spill[16];
  EXPECT_EQ(buf.read_from(a_.get(), spill), -1);
  EXPECT_EQ(errno, EAGAIN);
  b_.reset();
  EXPECT_EQ(buf.read_from(a_.get(), spill), 0);
}

TEST_F(BufferIo, WriteToConsumesWhatWasSent) {
  Buffer buf;
  buf.append("reply");
  EXPECT_EQ(buf.write_to(a_.get()), 5);
  EXPECT_TRUE(buf.empty());
  char got[8] = {};
  EXPECT_EQ(::read(b_.get(), got, sizeof got), 5);
  EXPECT_EQ(std::string(got, 5), "reply");
}

}  // namespace
}  // namespace iomux::detail
