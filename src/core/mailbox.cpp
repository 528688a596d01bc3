#include "core/mailbox.hpp"

#include <sys/socket.h>

namespace iomux::detail {

bool Mailbox::post(Letter letter) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  letters_.push_back(std::move(letter));
  nonempty_.store(true, std::memory_order_release);
  // Under the lock: close() takes it too, so no wake-up can reach an owner that has stopped
  // (and may be gone).
  wake_();
  return true;
}

void Mailbox::take(std::vector<Letter>& out) {
  std::lock_guard lock(mutex_);
  out.swap(letters_);
  nonempty_.store(false, std::memory_order_relaxed);
}

void Mailbox::close() {
  std::vector<Letter> dropped;
  std::lock_guard lock(mutex_);
  closed_ = true;
  dropped.swap(letters_);
  nonempty_.store(false, std::memory_order_relaxed);
}

PostResult Mailbox::post_job(std::function<void()> job) {
  // Reserve a place first, so concurrent posters cannot overshoot the bound together.
  if (jobs_queued_.fetch_add(1, std::memory_order_relaxed) >= max_jobs_) {
    jobs_queued_.fetch_sub(1, std::memory_order_relaxed);
    return PostResult::full;
  }
  if (!post(Letter{Letter::Kind::job, nullptr, {}, 0, {}, std::move(job)})) {
    jobs_queued_.fetch_sub(1, std::memory_order_relaxed);
    return PostResult::gone;
  }
  return PostResult::posted;
}

PostResult ConnectionLink::post_task(const std::shared_ptr<ConnectionLink>& self,
                                     std::function<void(iomux::Connection&)> task) {
  if (!open()) return PostResult::gone;
  // Reserve a place first, so concurrent posters cannot overshoot the bound together.
  if (queued_.fetch_add(1, std::memory_order_relaxed) >= max_posted_) {
    queued_.fetch_sub(1, std::memory_order_relaxed);
    return PostResult::full;
  }
  Letter letter{Letter::Kind::task, self, std::move(task), 0, {}, {}};
  if (!mailbox_->post(std::move(letter))) {
    queued_.fetch_sub(1, std::memory_order_relaxed);
    return PostResult::gone;
  }
  return PostResult::posted;
}

bool ConnectionLink::post_fill(const std::shared_ptr<ConnectionLink>& self, std::uint64_t id, std::string bytes) {
  // Not bounded by max_posted: the place is reserved already, and max_deferred bounds them.
  if (!open()) return false;
  return mailbox_->post(Letter{Letter::Kind::fill, self, {}, id, std::move(bytes), {}});
}

PostResult ConnectionLink::post_close(const std::shared_ptr<ConnectionLink>& self) {
  if (!open()) return PostResult::gone;
  if (!mailbox_->post(Letter{Letter::Kind::close, self, {}, 0, {}, {}})) return PostResult::gone;
  interrupt();
  return PostResult::posted;
}

void ConnectionLink::set_interruptible_fd(int fd) noexcept {
  std::lock_guard lock(fd_mutex_);
  interruptible_fd_ = fd;
}

void ConnectionLink::interrupt() noexcept {
  std::lock_guard lock(fd_mutex_);
  // Wakes a send() or recv() the owner may be blocked in; it then sees the close letter.
  if (interruptible_fd_ >= 0) ::shutdown(interruptible_fd_, SHUT_RDWR);
}

void ConnectionLink::sever() noexcept {
  open_.store(false, std::memory_order_release);
  core_ = nullptr;
  std::lock_guard lock(fd_mutex_);
  interruptible_fd_ = -1;
}

}  // namespace iomux::detail
