#include "iomux/reply_batch.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "iomux/fd.hpp"

namespace iomux {
namespace {

class ReplyBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    a_.reset(sv[0]);
    b_.reset(sv[1]);
  }
  std::string drain() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(b_.get(), buf, sizeof buf)) > 0) got.append(buf, n);
    return got;
  }
  UniqueFd a_, b_;
};

TEST_F(ReplyBatchTest, GathersRepliesIntoOneSendInOrder) {
  Buffer pending;
  ReplyBatch batch(pending);
  batch.reply("one ");
  batch.reply("two ");
  batch.reply("three");
  auto r = batch.send(a_.get());
  EXPECT_EQ(r.written, 13u);
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(pending.empty());
  EXPECT_EQ(drain(), "one two three");
}

TEST_F(ReplyBatchTest, MoreRepliesThanIovecsStillArriveInOrder) {
  std::vector<std::string> replies;
  for (int i = 0; i < 200; ++i) replies.push_back(std::to_string(i) + ",");
  Buffer pending;
  ReplyBatch batch(pending);
  std::string want;
  for (auto& s : replies) {
    batch.reply(s);
    want += s;
  }
  batch.send(a_.get());
  EXPECT_EQ(drain(), want);
}

TEST_F(ReplyBatchTest, UnsentBytesAreKeptAndLeaveFirstNextTime) {
  // Fill the socket so nothing more fits.
  std::string filler(1 << 16, 'f');
  while (::send(a_.get(), filler.data(), filler.size(), MSG_DONTWAIT) > 0) {
  }
  Buffer pending;
  {
    ReplyBatch batch(pending);
    batch.reply("first");
    auto r = batch.send(a_.get());
    EXPECT_EQ(r.error, 0);  // EAGAIN is not an error
  }
  EXPECT_EQ(pending.view(), "first");
  {
    ReplyBatch batch(pending);
    batch.reply("second");  // must queue behind "first"
    EXPECT_EQ(pending.view(), "firstsecond");
  }
  std::string got = drain();
  EXPECT_EQ(got.find_first_not_of('f'), std::string::npos);
  ReplyBatch batch(pending);
  batch.send(a_.get());
  EXPECT_EQ(drain(), "firstsecond");
}

TEST_F(ReplyBatchTest, PeerGoneIsAnErrorNotASignal) {
  b_.reset();
  Buffer pending;
  ReplyBatch batch(pending);
  batch.reply("x");
  auto r = batch.send(a_.get());
  EXPECT_EQ(r.error, EPIPE);
}

TEST_F(ReplyBatchTest, RequestHookSeesEachRequest) {
  Buffer pending;
  int seen = 0;
  RequestHook hook{[](const void* arg, std::string_view) { ++*static_cast<int*>(const_cast<void*>(arg)); }, &seen};
  ReplyBatch batch(pending, hook);
  batch.on_request("a");
  batch.on_request("b");
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace iomux
