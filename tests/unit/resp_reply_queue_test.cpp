#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/resp/reply_queue.hpp"

namespace iomux::resp {
namespace {

// What a connection would get from take(): the bytes, and how.
struct Sink {
  std::string bytes;
  std::size_t copies = 0;
  std::size_t shares = 0;
  std::size_t owned = 0;
  std::vector<std::shared_ptr<const void>> owners;  // kept, as a connection keeps them until sent
  void copy(std::string_view part) {
    bytes.append(part);
    ++copies;
  }
  void share(std::shared_ptr<const void> owner, std::string_view part) {
    bytes.append(part);
    owners.push_back(std::move(owner));
    ++shares;
  }
  void own(std::string&& part) {
    bytes.append(part);
    ++owned;
  }
};

std::shared_ptr<const std::string> shared(std::string text) {
  return std::make_shared<const std::string>(std::move(text));
}

TEST(RespReplyQueue, TextIsTakenWholeInOneCopy) {
  ReplyQueue queue;
  queue.text() += "+OK\r\n:1\r\n";
  EXPECT_TRUE(queue.text_only());
  EXPECT_EQ(queue.size(), 9u);
  Sink sink;
  queue.take(sink, 1024);
  EXPECT_EQ(sink.bytes, "+OK\r\n:1\r\n");
  EXPECT_EQ(sink.copies, 1u);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.held(), 0u);  // within the string's own small buffer
}

TEST(RespReplyQueue, LongTextIsHandedOverAndLargeCapacityIsNotKept) {
  ReplyQueue queue;
  queue.text().assign(ReplyQueue::kHandOver, 'x');
  Sink sink;
  queue.take(sink, SIZE_MAX);
  EXPECT_EQ(sink.owned, 1u);
  EXPECT_EQ(queue.held(), 0u);
  queue.text().assign(10000, 'y');  // copied (under kHandOver), then its buffer let go
  queue.take(sink, SIZE_MAX);
  EXPECT_EQ(sink.copies, 1u);
  EXPECT_EQ(queue.held(), 0u);
  EXPECT_EQ(sink.bytes.size(), ReplyQueue::kHandOver + 10000);
}

TEST(RespReplyQueue, ReferencesGoOutInOrderWithoutACopyAndAreReleased) {
  ReplyQueue queue;
  auto value = shared("a value");
  queue.text() += "$7\r\n";
  queue.reference(value, *value);
  queue.text() += "\r\n$7\r\n";
  queue.reference(value, *value);
  queue.text() += "\r\n";
  EXPECT_FALSE(queue.text_only());
  EXPECT_EQ(queue.size(), 2 * (4 + 7 + 2));
  EXPECT_EQ(value.use_count(), 3);
  Sink sink;
  queue.take(sink, SIZE_MAX);
  EXPECT_EQ(sink.bytes, "$7\r\na value\r\n$7\r\na value\r\n");
  EXPECT_EQ(sink.shares, 2u);
  EXPECT_TRUE(queue.empty());
  EXPECT_TRUE(queue.text_only());
  sink.owners.clear();
  EXPECT_EQ(value.use_count(), 1);  // the queue kept none
}

TEST(RespReplyQueue, APartAtATimeGivesTheSameBytes) {
  // Random text and references, taken in random amounts: the concatenation must be exact and
  // no part longer than asked, whatever compaction did in between.
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    ReplyQueue queue;
    std::string want;
    std::vector<std::shared_ptr<const std::string>> values;
    const int pieces = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < pieces; ++i) {
      if (rng() % 2) {
        const std::string text(rng() % 300, static_cast<char>('a' + rng() % 26));
        queue.text() += text;
        want += text;
      } else {
        values.push_back(shared(std::string(1 + rng() % 3000, static_cast<char>('A' + rng() % 26))));
        queue.reference(values.back(), *values.back());
        want += *values.back();
      }
    }
    Sink sink;
    while (!queue.empty()) {
      const std::size_t max = 1 + rng() % 700;
      const std::size_t before = sink.bytes.size();
      queue.take(sink, max);
      ASSERT_LE(sink.bytes.size() - before, max);
      ASSERT_GT(sink.bytes.size(), before);
      // More may be appended between parts, as commands do between calls.
      if (rng() % 5 == 0) {
        queue.text() += "+OK\r\n";
        want += "+OK\r\n";
      }
    }
    ASSERT_EQ(sink.bytes, want) << "round " << round;
    EXPECT_TRUE(queue.text_only());
  }
}

// Makes `parts` parts of `size` bytes each, one per produce() call.
class Counting final : public ReplyProducer {
 public:
  Counting(int parts, std::size_t size) : left_(parts), size_(size) {}
  bool produce(ReplyQueue& queue, std::size_t room) override {
    EXPECT_GT(room, 0u);
    queue.text().append(size_, 'p');
    return --left_ == 0;
  }
  [[nodiscard]] std::size_t held() const noexcept override { return 100; }

 private:
  int left_;
  std::size_t size_;
};

TEST(RespReplyQueue, AProducerMakesItsPartsAsTheLimitAllows) {
  ReplyQueue queue;
  queue.produce_later(std::make_unique<Counting>(10, 100));
  EXPECT_FALSE(queue.empty());
  EXPECT_GE(queue.held(), 100u);
  queue.produce(250);  // parts until 250 bytes are queued: three
  EXPECT_EQ(queue.size(), 300u);
  EXPECT_TRUE(queue.has_producer());
  Sink sink;
  queue.take(sink, 300);
  queue.produce(1000);
  EXPECT_FALSE(queue.has_producer());  // done: the other seven
  queue.take(sink, SIZE_MAX);
  EXPECT_EQ(sink.bytes, std::string(1000, 'p'));
  EXPECT_TRUE(queue.empty());
  EXPECT_TRUE(queue.text_only());
}

}  // namespace
}  // namespace iomux::resp
