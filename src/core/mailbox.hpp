// How other threads reach a connection: each thread that owns connections (an event loop, a
// blocking-model thread) has one Mailbox; ConnectionHandle and DeferredReply put letters in it,
// and the owner runs them between its IO. A letter names its connection through the
// connection's ConnectionLink, never by pointer, so a letter for a connection that closed
// meanwhile is simply dropped.
//
// The mailbox outlives its owner if handles do (shared ownership): once the owner stops it is
// closed, and every later letter is refused (PostResult::gone).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "iomux/handler.hpp"

namespace iomux::detail {

class ConnectionCore;
class ConnectionLink;

struct Letter {
  // Not for a connection (no link), for the thread itself: sweep, the memory budget asks it
  // to evict its stalled holders (MemoryBudget::ask_all_to_sweep); stop, Executor::request_stop
  // (deferred_id holds the StopMode); job, a task for the loop itself (LoopHandle::post).
  enum class Kind : std::uint8_t { task, fill, close, sweep, stop, job };
  Kind kind;
  std::shared_ptr<ConnectionLink> link;
  std::function<void(iomux::Connection&)> task;  // Kind::task
  std::uint64_t deferred_id = 0;                 // Kind::fill
  std::string bytes;                             // Kind::fill
  std::function<void()> job;                     // Kind::job
};

class Mailbox {
 public:
  // `wake` interrupts the owner's wait (any thread, must not block): the loop's waker, an
  // eventfd write, a condition variable.
  explicit Mailbox(std::function<void()> wake) : wake_(std::move(wake)) {}

  // Any thread. False when the owner has stopped.
  bool post(Letter letter);
  // Any thread: a task for the loop itself, at most max_jobs waiting (LoopHandle::post).
  PostResult post_job(std::function<void()> job);
  // Owner thread: a job letter was taken out (or dropped).
  void job_done() noexcept { jobs_queued_.fetch_sub(1, std::memory_order_relaxed); }
  void set_max_jobs(std::uint32_t max) noexcept { max_jobs_ = max; }
  // Owner thread: true when letters may be waiting (one acquire load: cheap every iteration).
  [[nodiscard]] bool maybe_nonempty() const noexcept { return nonempty_.load(std::memory_order_acquire); }
  // Owner thread: moves every waiting letter into `out`.
  void take(std::vector<Letter>& out);
  // Owner thread, when it stops: refuses later letters and drops the waiting ones.
  void close();

 private:
  std::function<void()> wake_;
  std::mutex mutex_;
  std::vector<Letter> letters_;
  bool closed_ = false;
  std::atomic<bool> nonempty_{false};
  std::atomic<std::uint32_t> jobs_queued_{0};
  std::uint32_t max_jobs_ = 4096;
};

// What a connection's handles and deferred replies hold: where its letters go, and whether it
// is still open. Created on first use (Connection::handle(), defer()), so a connection nobody
// reaches from elsewhere costs nothing.
class ConnectionLink {
 public:
  ConnectionLink(std::shared_ptr<Mailbox> mailbox, ConnectionCore* core, std::uint32_t max_posted) noexcept
      : mailbox_(std::move(mailbox)), core_(core), max_posted_(max_posted) {}

  // Any thread.
  PostResult post_task(const std::shared_ptr<ConnectionLink>& self, std::function<void(iomux::Connection&)> task);
  bool post_fill(const std::shared_ptr<ConnectionLink>& self, std::uint64_t id, std::string bytes);
  PostResult post_close(const std::shared_ptr<ConnectionLink>& self);
  [[nodiscard]] bool open() const noexcept { return open_.load(std::memory_order_acquire); }

  // Owner thread: the connection, or null once it closed.
  [[nodiscard]] ConnectionCore* core() const noexcept { return core_; }
  // Owner thread: a task letter was taken out of the mailbox (or dropped).
  void task_done() noexcept { queued_.fetch_sub(1, std::memory_order_relaxed); }

  // For the blocking models, whose thread may sleep in send() to a peer that does not read:
  // the socket that close() from another thread shuts down to wake it. Owner thread sets it;
  // the mutex keeps a shutdown from reaching an fd number that was closed and reused.
  void set_interruptible_fd(int fd) noexcept;
  // Owner thread, as the connection closes: no more letters, no more interrupts.
  void sever() noexcept;

 private:
  void interrupt() noexcept;

  std::shared_ptr<Mailbox> mailbox_;
  ConnectionCore* core_;
  std::uint32_t max_posted_;
  std::atomic<bool> open_{true};
  std::atomic<std::uint32_t> queued_{0};
  std::mutex fd_mutex_;
  int interruptible_fd_ = -1;
};

}  // namespace iomux::detail
