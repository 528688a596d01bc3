// The replies a Session has made and its connection has not taken yet, in order: bytes copied
// here, references to shared buffers (long values of the keyspace, sent without a copy), and,
// last, maybe a producer that makes the rest of a long reply once there is room for it.
//
//   text_   [ taken | copied bytes ............................................. ]
//   refs_             at ^ ref 0 goes out here      at ^ ref 1 goes out here
//   producer_   appends more text and refs when asked (LRANGE of a long list)
//
// The common case holds only text, appended by ReplyWriter as to a std::string and taken whole:
// it costs what a plain string costs. take() hands a sink at most `max` bytes per call, so the
// memory a connection holds for one reply is bounded however long the reply is: the rest
// waits here as references and a producer's position, not as copies.
//
// Thread rule: one connection's thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iomux::resp {

class ReplyQueue;

// Makes the rest of one long reply a part at a time.
class ReplyProducer {
 public:
  virtual ~ReplyProducer() = default;
  // Appends the next part of the reply to `queue`: about `room` bytes, at least one. Returns
  // true once the reply is complete.
  virtual bool produce(ReplyQueue& queue, std::size_t room) = 0;
  // Heap bytes it holds itself (values it reads are the keyspace's to count).
  [[nodiscard]] virtual std::size_t held() const noexcept = 0;
};

class ReplyQueue {
 public:
  // Text at least this long, taken whole, is handed over rather than copied.
  static constexpr std::size_t kHandOver = 64 * 1024;
  // Text capacity kept after everything was taken, so that steady traffic allocates nothing
  // and an idle connection holds little.
  static constexpr std::size_t kKeptText = 4 * 1024;

  ReplyQueue() = default;
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;

  // Copied bytes go here (ReplyWriter appends to it).
  [[nodiscard]] std::string& text() noexcept { return text_; }
  // `bytes`, kept alive by `owner`, go out next without a copy. They must not change until
  // `owner` is released.
  void reference(std::shared_ptr<const void> owner, std::string_view bytes);
  // The rest of the current reply is `producer`'s. Nothing may be queued after it until it
  // completes (the session runs no command meanwhile).
  void produce_later(std::unique_ptr<ReplyProducer> producer) noexcept {
    producer_ = std::move(producer);
    text_only_ = false;
  }
  // Lets the producer append until size() reaches `limit` (at least one part) or it completes.
  void produce(std::size_t limit);

  // Bytes queued and not taken: copied and referenced, not what a producer will still make.
  [[nodiscard]] std::size_t size() const noexcept { return text_.size() - head_ + ref_bytes_; }
  // Whether the queue is copied text only, none of it taken (no reference, no producer): the
  // common case, which the callers test first and cheaply.
  [[nodiscard]] bool text_only() const noexcept { return text_only_; }
  [[nodiscard]] bool has_producer() const noexcept { return producer_ != nullptr; }
  [[nodiscard]] bool empty() const noexcept { return text_only_ ? text_.empty() : size() == 0 && !producer_; }
  // Heap bytes held: the text's capacity, the references' table, the producer's own.
  [[nodiscard]] std::size_t held() const noexcept {
    // A std::string's small-string capacity (15) is inside the object, not on the heap.
    const std::size_t text = text_.capacity() > 15 ? text_.capacity() + 1 : 0;
    if (text_only_ && refs_.capacity() == 0) [[likely]]
      return text;
    return text + refs_.capacity() * sizeof(Reference) + (producer_ ? producer_->held() : 0);
  }

  // Hands at most `max` bytes to `sink`, in order, as calls to sink.copy(std::string_view),
  // sink.share(std::shared_ptr<const void>, std::string_view) and sink.own(std::string&&).
  // Inline: the common case (text only, all of it) is one call.
  template <typename Sink>
  [[gnu::always_inline]] inline void take(Sink& sink, std::size_t max) {
    if (text_only_ && text_.size() <= max) [[likely]] {
      if (text_.size() >= kHandOver) {
        sink.own(std::move(text_));
        std::string().swap(text_);  // whatever the sink left of it
      } else if (!text_.empty()) {
        sink.copy(text_);
        text_.clear();
        if (text_.capacity() > kKeptText) [[unlikely]]
          std::string().swap(text_);
      }
      return;
    }
    take_in_parts(sink, max);
  }

 private:
  struct Reference {
    std::size_t at;  // goes out after text_[0, at)
    std::shared_ptr<const void> owner;
    std::string_view bytes;
  };

  template <typename Sink>
  [[gnu::noinline]] void take_in_parts(Sink& sink, std::size_t max) {
    while (max > 0) {
      const std::size_t text_end = next_ref_ < refs_.size() ? refs_[next_ref_].at : text_.size();
      if (head_ < text_end) {
        const std::size_t n = std::min(max, text_end - head_);
        sink.copy(std::string_view(text_).substr(head_, n));
        head_ += n;
        max -= n;
        continue;
      }
      if (next_ref_ == refs_.size()) break;
      Reference& ref = refs_[next_ref_];
      const std::size_t n = std::min(max, ref.bytes.size() - ref_taken_);
      const std::string_view part = ref.bytes.substr(ref_taken_, n);
      ref_taken_ += n;
      ref_bytes_ -= n;
      max -= n;
      if (ref_taken_ == ref.bytes.size()) {
        sink.share(std::move(ref.owner), part);  // its last part: the reference goes with it
        ++next_ref_;
        ref_taken_ = 0;
      } else {
        sink.share(ref.owner, part);
      }
    }
    compact();
  }

  // Forgets what was taken: everything, or the front once it is most of what is held.
  void compact();

  std::string text_;
  std::size_t head_ = 0;  // text_[0, head_) was taken
  std::vector<Reference> refs_;
  std::size_t next_ref_ = 0;   // refs_[0, next_ref_) were taken
  std::size_t ref_taken_ = 0;  // bytes of refs_[next_ref_] taken
  std::size_t ref_bytes_ = 0;  // bytes of references not taken
  std::unique_ptr<ReplyProducer> producer_;
  bool text_only_ = true;  // refs_ and producer_ empty, head_ 0
};

}  // namespace iomux::resp
