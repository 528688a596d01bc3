// The replies a connection owes, in the order they were written, as a queue of segments:
//
//   front                                                                          back
//   +-----------+--------------+-----------------+---------------+------------------+------+
//   | copy      | stable view  | owned string    | shared view   | deferred (empty) | copy |
//   | (Buffer)  | (a constant) | (moved in)      | (owner kept)  | blocks the rest  | ...  |
//   +-----------+--------------+-----------------+---------------+------------------+------+
//   <------------- gather(): what may be sent now ----------------------->
//
// Copies coalesce into the last copy segment; views and moved-in buffers are never copied; a
// shared view keeps its owner (a shared_ptr) alive until its bytes are sent; an unfilled
// deferred place stops gather() until it is filled from some thread (via the owner).
//
// held() is what the queue really keeps alive: copies' and moved-in buffers' capacities, and
// each shared owner's bytes once, however many segments reference it (a reply that names one
// large value 200 times holds it once).
// A "transient" view points at bytes that die when the current handler call ends (the input);
// persist_transients() copies what is left of them before that. The queue is IO-free: engines
// gather iovecs from it, send, and consume() what the socket took.
//
// An asynchronous engine (uring) keeps the bytes of its send in flight still: freeze() marks the
// gathered segments, and while frozen nothing is appended to them (a copy starts a new segment),
// and clear() (the connection closed) keeps them, unchanged, until the queue is destroyed, which
// the engine does only after the send's completion: the kernel reads a send's bytes whenever it
// runs the request, possibly after the close. Segments move inside the queue's vector as it
// grows, so their bytes must not live inside the segment object: a moved-in std::string short
// enough for its inline buffer is copied instead. Freed storage is poisoned in debug builds
// (core/poison.hpp).
//
// Owner thread only.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/buffer.hpp"

namespace iomux::detail {

class OutputQueue {
 public:
  OutputQueue() noexcept = default;
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;
  ~OutputQueue();

  void append_copy(std::string_view bytes);
  void append_stable(std::string_view bytes);
  void append_transient(std::string_view bytes);
  void append_owned(std::string&& bytes);
  void append_owned(std::unique_ptr<char[]> bytes, std::size_t size);
  // `bytes` lie in what `owner` keeps alive and unchanged.
  void append_shared(std::shared_ptr<const void> owner, std::string_view bytes);
  // Reserves a place; returns its id (increasing, never 0).
  std::uint64_t append_deferred();
  // Fills the place `id` with `bytes` (empty: the place just goes away). False if no unfilled
  // place has that id.
  bool fill_deferred(std::uint64_t id, std::string&& bytes);

  // Copies the unsent bytes of every transient view, so they outlive the current handler call.
  void persist_transients();
  // The queue if it is exactly one transient view, else an empty view (uring lends the receive
  // buffer such a view points into, instead of copying). take_lone_transient() removes it.
  [[nodiscard]] std::string_view lone_transient() const noexcept;
  void drop_lone_transient() noexcept;

  // Fills `iov` with the bytes that may be sent now, front first, up to the first unfilled
  // deferred place. Returns how many entries it filled.
  std::size_t gather(std::span<iovec> iov) const noexcept;
  // The socket took `n` bytes from the front (n <= what gather() offered).
  void consume(std::size_t n) noexcept;

  // Async engines: every segment queued now backs a send in flight (see above) until
  // unfreeze(), which comes when it completes, before consume().
  void freeze() noexcept { frozen_ = segments_.size() - head_; }
  void unfreeze() noexcept { frozen_ = 0; }
  // Puts `bytes` in front of everything (what an async send of bytes outside the queue did not
  // take: they must leave first).
  void prepend_copy(std::string_view bytes);

  [[nodiscard]] bool empty() const noexcept { return head_ == segments_.size(); }
  // Bytes owed, filled deferred replies included (unfilled ones count nothing yet).
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  // Heap bytes this queue holds, for the server's memory budget.
  [[nodiscard]] std::size_t held() const noexcept { return held_ + segments_.capacity() * sizeof(Segment); }
  [[nodiscard]] std::size_t deferred_unfilled() const noexcept { return unfilled_; }
  [[nodiscard]] bool has_transients() const noexcept { return transients_ > 0; }
  // True when something is queued but nothing can be sent before a deferred place is filled.
  [[nodiscard]] bool blocked() const noexcept;

  // Drops everything owed (the connection closed); unfilled deferred places are forgotten.
  // Frozen segments stay, unchanged, until the queue is destroyed (a send in flight may still
  // read them): held() goes on counting them.
  void clear() noexcept;
  // Frees the queue's own storage when it is empty.
  void release_if_empty() noexcept;

 private:
  enum class Kind : std::uint8_t { copy, stable, transient, owned_string, owned_array, shared, deferred };
  struct Segment {
    Kind kind;
    std::uint64_t deferred_id = 0;  // Kind::deferred
    const char* data = nullptr;     // stable, transient, owned_*, shared: the unsent bytes
    std::size_t size = 0;
    Buffer copy;                        // Kind::copy: the unsent bytes are copy.view()
    std::string string;                 // Kind::owned_string (on the heap, never inline)
    std::unique_ptr<char[]> array;      // Kind::owned_array
    std::shared_ptr<const void> owner;  // Kind::shared

    [[nodiscard]] std::string_view unsent() const noexcept {
      return kind == Kind::copy ? copy.view() : std::string_view(data, size);
    }
    [[nodiscard]] std::size_t storage() const noexcept;
  };

  Segment& push(Kind kind);
  void pop_front() noexcept;
  // Frees a segment's storage (poisoned first in debug builds) and forgets its accounting.
  void release(Segment& s) noexcept;
  void hold_shared(const Segment& s);
  void drop_shared(const Segment& s) noexcept;
  [[nodiscard]] Segment* appendable_copy() noexcept;

  std::vector<Segment> segments_;
  std::size_t head_ = 0;    // segments_[head_] is the front; earlier ones are spent
  std::size_t frozen_ = 0;  // segments from the front backing a send in flight
  std::size_t bytes_ = 0;
  std::size_t held_ = 0;  // storage bytes of the live segments
  std::size_t unfilled_ = 0;
  std::size_t transients_ = 0;
  std::uint64_t next_deferred_ = 1;
  // Shared owners referenced by live segments: how many segments each, and the bytes counted
  // for it in held_ (the first reference's). Made on the first shared write.
  struct SharedRef {
    std::uint32_t segments = 0;
    std::size_t counted = 0;
  };
  std::unique_ptr<std::unordered_map<const void*, SharedRef>> shared_;
};

}  // namespace iomux::detail
