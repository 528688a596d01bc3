// Signal-driven IO (信号驱动IO): the tutorial's section 2 model, made into a Poller.
//
// The tutorial's version: mark the socket O_ASYNC, and the kernel raises SIGIO when data is
// ready. Plain SIGIO cannot say *which* fd is ready and collapses repeats into one pending bit,
// so a real server asks for a queued real-time signal (fcntl F_SETSIG; SIGRTMIN+1 here): one entry
// per readiness change, carrying the fd (si_fd) and what changed (si_band). Rather than run
// code in a signal handler, the signal stays blocked and wait() takes entries off the queue
// with sigtimedwait, which makes signal-driven IO a readiness poller like the others.
//
// Signals go to the thread that waits (F_SETOWN_EX with F_OWNER_TID), not to the process, so
// several loops (several servers, test threads) can share a process. The rules that follow:
//   * One live sigio poller per thread: a thread's queue is not split by poller.
//   * Every thread that constructs or waits on a sigio poller keeps the two signals blocked
//     for the rest of its life (sigtimedwait needs them blocked between calls; unblocked, the
//     default action of both kills the process).
//   * fds are armed (O_ASYNC set) only once the waiting thread is known, i.e. by the first
//     wait(); add() before that only records. A wait() from a new thread re-aims every fd.
//
// Trade-offs against epoll:
//   * Every readiness change costs a kernel queue entry and one sigtimedwait call to collect
//     it (epoll returns up to 1024 events per call); add() costs four fcntl calls.
//   * The queue is bounded by RLIMIT_SIGPENDING for the whole user (`ulimit -i`; 96364 on the
//     dev box). When it is full the kernel drops the real-time signal and raises plain SIGIO
//     instead; this poller then forgets the queue and reports every watched fd (an O(n) scan).
//     Handlers must tolerate such spurious events (EAGAIN): we prefer them to missed ones.
//   * Edge semantics (tutorial section 5.2.4: "信号驱动式IO就属于边缘触发"): a change is
//     reported once, so the caller drains to EAGAIN. Readiness that predates O_ASYNC raises
//     no signal, so add() and modify() queue a synthetic event for the new interest.
//   * A FIN arrives as POLL_IN, like data. One signal per read is fine (each read after a
//     signal sees everything before it), but when one read stands for several changes (a
//     merged batch, a synthetic event, a hangup), kPeerShutdown here means "a FIN may be
//     queued: read to EOF or EAGAIN", since a short read would not show it.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "iomux/error.hpp"
#include "reactor/poller.hpp"

namespace iomux::detail {
namespace {

// The signal that names a ready fd. SIGRTMIN itself is the one other code reaches for first
// (timer examples, profilers), so take the next; glibc's SIGRTMIN already skips its own two.
int ready_signal() noexcept {
  return SIGRTMIN + 1;
}

sigset_t poller_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, ready_signal());
  sigaddset(&set, SIGIO);  // what the kernel sends instead when the queue is full
  return set;
}

// The calling thread, with the poller's signals blocked in it. `serial` is never reused,
// unlike a tid: a new thread with an old tid still needs its fds re-aimed.
struct ThisThread {
  pid_t tid;
  std::uint64_t serial;
};

const ThisThread& calling_thread() {
  static std::atomic<std::uint64_t> next_serial{1};
  thread_local const ThisThread self = [] {
    sigset_t set = poller_signals();
    if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr))
      throw ServerError(std::string("sigio: pthread_sigmask: ") + std::strerror(err));
    return ThisThread{::gettid(), next_serial.fetch_add(1)};
  }();
  return self;
}

// si_code says why the kernel signalled; si_band spells it in poll bits. A hangup or an error
// is never reported as such, only as "readable, read to EOF": the reader then finds the EOF
// or the real error itself. Two reasons. A hangup arrives as POLLHUP|POLLERR, where the ERR is
// only how the kernel spells a hangup. And a signal can be stale: it names an fd *number*,
// and one queued just before its socket closed is still in the queue when a new connection
// gets the same number. Taken at its word, a stale POLL_ERR closed a healthy new connection
// (with a reset, over its unread request): the soak saw 16 in 1.4 million churned connections.
std::uint32_t to_events(int code, long band) noexcept {
  std::uint32_t events = 0;
  if (band & (POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI | POLLMSG)) events |= kReadable;
  if (band & (POLLOUT | POLLWRNORM | POLLWRBAND)) events |= kWritable;
  if (code == POLL_HUP || code == POLL_ERR || (band & (POLLHUP | POLLERR))) events |= kReadable | kPeerShutdown;
  return events;
}

std::error_code errno_code() noexcept {
  return {errno, std::generic_category()};
}

// Thread rule: add/modify/remove/wait from one thread at a time (the loop thread; before the
// first wait(), whichever thread builds the loop). The destructor leaves fds alone: the caller
// may have closed them already, and their numbers may belong to someone else by now.
class SigioPoller final : public Poller {
 public:
  SigioPoller() : signals_(poller_signals()) {
    if (ready_signal() > SIGRTMAX) throw ServerError("sigio: this kernel has no real-time signal left for readiness");
    calling_thread();  // block the signals here too: the loop may run on the constructing thread
  }

  std::string_view name() const noexcept override { return "sigio"; }
  bool edge_triggered() const noexcept override { return true; }

  std::error_code add(int fd, std::uint32_t interest) override {
    if (fd < 0) return std::make_error_code(std::errc::bad_file_descriptor);
    if (watched(fd)) return std::make_error_code(std::errc::file_exists);
    if (owner_serial_ == 0) {
      if (::fcntl(fd, F_GETFD) < 0) return errno_code();  // armed later, but checked now
    } else if (auto ec = arm(fd)) {
      return ec;
    }
    if (static_cast<std::size_t>(fd) >= fds_.size()) fds_.resize(fd + 1 + fd / 2);
    fds_[fd] = Watch{true, interest, 0, -1};
    queue_synthetic(fd, interest);
    return {};
  }

  std::error_code modify(int fd, std::uint32_t interest) override {
    if (!watched(fd)) return std::make_error_code(std::errc::no_such_file_or_directory);
    const std::uint32_t enabled = interest & ~fds_[fd].interest;
    fds_[fd].interest = interest;
    queue_synthetic(fd, enabled);
    return {};
  }

  // The caller may already have closed fd (EBADF is fine), but must not have let it be reused.
  std::error_code remove(int fd) override {
    if (!watched(fd)) return std::make_error_code(std::errc::no_such_file_or_directory);
    fds_[fd] = Watch{};
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_ASYNC)) ::fcntl(fd, F_SETFL, flags & ~O_ASYNC);
    return {};
  }

  // O_ASYNC stays: the process that shares the file (an upgrade's successor) armed it for
  // itself, and the signals are aimed at its thread. A late one for this fd is not watched
  // any more, and is dropped (on_signal).
  std::error_code remove_shared(int fd) override {
    if (!watched(fd)) return std::make_error_code(std::errc::no_such_file_or_directory);
    fds_[fd] = Watch{};
    return {};
  }

  // The thread that calls wait() receives the signals; a new thread takes them over.
  int wait(std::span<ReadyEvent> out, int timeout_ms) override {
    adopt_calling_thread();
    std::size_t count = 0;
    emit_synthetic(out, count);
    if (count > 0 || !synthetic_.empty()) timeout_ms = 0;
    // Bound the work of one call: a flood of signals for one fd merges without filling `out`.
    const std::size_t max_signals = 4 * out.size();
    for (std::size_t taken = 0; count < out.size() && taken < max_signals; ++taken) {
      siginfo_t info;
      int sig = next_signal(info, taken == 0 ? timeout_ms : 0);
      if (sig < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        if (count == 0) return -1;
        break;
      }
      if (sig == SIGIO) {
        // The queue overflowed: some changes were never queued. Everything still queued is
        // covered by a full scan, so drop it and report every fd.
        discard_queued();
        scan_all();
        break;
      }
      on_signal(info, out, count);
    }
    emit_synthetic(out, count);
    for (std::size_t i = 0; i < count; ++i) fds_[out[i].fd].slot = -1;
    return static_cast<int>(count);
  }

 private:
  struct Watch {
    bool watched = false;
    std::uint32_t interest = 0;
    std::uint32_t synthetic = 0;  // to report without a signal (initial state, after overflow)
    int slot = -1;                // index in the `out` being filled, to merge duplicates
  };

  bool watched(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < fds_.size() && fds_[fd].watched;
  }

  // Signals before O_ASYNC: F_SETSIG and F_SETOWN_EX first, so the first one is right.
  std::error_code arm(int fd) const {
    f_owner_ex owner{F_OWNER_TID, owner_tid_};
    if (::fcntl(fd, F_SETSIG, ready_signal()) != 0) return errno_code();
    if (::fcntl(fd, F_SETOWN_EX, &owner) != 0) return errno_code();
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) return errno_code();
    // Set already: the open file is shared with another process that armed it (an upgrade's
    // predecessor). The kernel names the fd in each signal by the number given when O_ASYNC
    // was turned on, the other process's: turned off and on again, it names ours.
    if ((flags & O_ASYNC) && ::fcntl(fd, F_SETFL, flags & ~O_ASYNC) == 0) flags &= ~O_ASYNC;
    const int wanted = flags | O_ASYNC | O_NONBLOCK;
    if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return errno_code();
    return {};
  }

  void adopt_calling_thread() {
    const ThisThread& me = calling_thread();
    if (me.serial == owner_serial_) return;
    owner_serial_ = me.serial;
    owner_tid_ = me.tid;
    // Leftovers on this thread belong to no live poller (one per thread); whatever this
    // poller's fds missed while aimed elsewhere (or unarmed) the scan reports.
    discard_queued();
    for (std::size_t fd = 0; fd < fds_.size(); ++fd)
      if (fds_[fd].watched) (void)arm(static_cast<int>(fd));  // a failure here means a closed fd
    scan_all();
  }

  int next_signal(siginfo_t& info, int timeout_ms) const {
    if (timeout_ms < 0) return ::sigwaitinfo(&signals_, &info);
    timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
    return ::sigtimedwait(&signals_, &info, &ts);
  }

  void discard_queued() const {
    siginfo_t info;
    timespec zero{0, 0};
    while (::sigtimedwait(&signals_, &info, &zero) > 0) {
    }
  }

  void on_signal(const siginfo_t& info, std::span<ReadyEvent> out, std::size_t& count) {
    if (info.si_code < POLL_IN || info.si_code > POLL_HUP) {
      scan_all();  // not from the kernel's fd machinery (someone sent it by hand): trust nothing
      return;
    }
    if (!watched(info.si_fd)) return;  // queued before remove()
    push(info.si_fd, to_events(info.si_code, info.si_band), out, count);
  }

  // Reports `events` for fd in this batch, merged with an earlier entry for the same fd.
  // Returns false when out is full and fd is not in it.
  bool push(int fd, std::uint32_t events, std::span<ReadyEvent> out, std::size_t& count) {
    Watch& w = fds_[fd];
    events &= w.interest | kHangup | kError | kPeerShutdown;
    if (!(events & kReadable)) events &= ~kPeerShutdown;
    if (events == 0) return true;
    if (w.slot >= 0) {
      // Two readable signals, one read: the second may have been the FIN (it too arrives as
      // POLL_IN), and the read that returns the data of the first would not show it.
      if (events & out[w.slot].events & kReadable) events |= kPeerShutdown;
      out[w.slot].events |= events;
      return true;
    }
    if (count == out.size()) return false;
    w.slot = static_cast<int>(count);
    out[count++] = {fd, events};
    return true;
  }

  void queue_synthetic(int fd, std::uint32_t events) {
    if (events == 0) return;
    if (fds_[fd].synthetic == 0) synthetic_.push_back(fd);
    fds_[fd].synthetic |= events;
  }

  void scan_all() {
    for (std::size_t fd = 0; fd < fds_.size(); ++fd)
      if (fds_[fd].watched) queue_synthetic(static_cast<int>(fd), fds_[fd].interest);
  }

  // Moves synthetic events into `out` while it has room; the rest wait for the next call.
  void emit_synthetic(std::span<ReadyEvent> out, std::size_t& count) {
    if (synthetic_.empty()) return;
    std::size_t kept = 0;
    for (int fd : synthetic_) {
      std::uint32_t events = watched(fd) ? fds_[fd].synthetic : 0;
      if (events == 0) continue;  // removed, or a duplicate entry
      // Whatever came before the signals may include a FIN: have the reader read to EOF.
      if (events & kReadable) events |= kPeerShutdown;
      if (push(fd, events, out, count))
        fds_[fd].synthetic = 0;
      else
        synthetic_[kept++] = fd;
    }
    synthetic_.resize(kept);
  }

  sigset_t signals_;
  std::vector<Watch> fds_;          // indexed by fd
  std::vector<int> synthetic_;      // fds with Watch::synthetic set, oldest first
  std::uint64_t owner_serial_ = 0;  // the thread the fds are aimed at; 0 = none yet
  pid_t owner_tid_ = 0;
};

}  // namespace

std::unique_ptr<Poller> make_sigio_poller() {
  return std::make_unique<SigioPoller>();
}

}  // namespace iomux::detail
