// The signal-driven poller on socketpairs and pipes: which fd a signal names, edge semantics,
// the synthetic first event, the queue-overflow fallback (forced for real by lowering
// RLIMIT_SIGPENDING, and simulated with a hand-sent SIGIO), and signals aimed at whichever
// thread waits.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "reactor/event_loop.hpp"
#include "reactor/poller.hpp"
#include "support/poller_pair.hpp"
#include "support/sigpending_limit.hpp"
#include "support/thread_state.hpp"

namespace iomux::detail {
namespace {

using test::SigpendingLimit;
using test::SocketPair;
using test::wait_for;
using test::wait_until_sleeping_in;

using namespace std::chrono_literals;

std::uint32_t events_of(const std::vector<ReadyEvent>& evs, int fd) {
  std::uint32_t bits = 0;
  for (const auto& e : evs)
    if (e.fd == fd) bits |= e.events;
  return bits;
}

int entries_for(const std::vector<ReadyEvent>& evs, int fd) {
  int n = 0;
  for (const auto& e : evs) n += e.fd == fd;
  return n;
}

// Every fd is reported once when it is added ("look now": readiness from before O_ASYNC
// raised no signal). Tests about later changes start after that first report.
void consume_initial_event(Poller& p) {
  (void)wait_for(p);
}

void send_sigio_to_this_thread() {
  ASSERT_EQ(::tgkill(::getpid(), ::gettid(), SIGIO), 0);
}

TEST(SigioPoller, IsNamedSigioAndEdgeTriggered) {
  auto p = make_sigio_poller();
  EXPECT_EQ(p->name(), "sigio");
  EXPECT_TRUE(p->edge_triggered());
}

TEST(SigioPoller, ReportsReadableWithTheRightFd) {
  auto p = make_sigio_poller();
  SocketPair x, y;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  ASSERT_FALSE(p->add(y.a.get(), kReadable));
  consume_initial_event(*p);
  ASSERT_EQ(::write(y.b.get(), "hi", 2), 2);
  auto evs = wait_for(*p, 1000);
  EXPECT_TRUE(events_of(evs, y.a.get()) & kReadable);
  EXPECT_EQ(events_of(evs, x.a.get()), 0u);
}

TEST(SigioPoller, IdleFdsReportNothing) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable | kWritable));
  consume_initial_event(*p);
  EXPECT_TRUE(wait_for(*p, 0).empty());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for(*p, 30).empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 25ms);
}

TEST(SigioPoller, AddReportsDataThatArrivedBeforeIt) {
  auto p = make_sigio_poller();
  SocketPair armed, late;
  // Make the poller aim its signals at this thread first, so the late fd is armed by add().
  ASSERT_FALSE(p->add(armed.a.get(), kReadable));
  consume_initial_event(*p);
  ASSERT_EQ(::write(late.b.get(), "early", 5), 5);
  ASSERT_FALSE(p->add(late.a.get(), kReadable));
  auto evs = wait_for(*p, -1);  // must not block: the event is synthetic, no signal will come
  EXPECT_TRUE(events_of(evs, late.a.get()) & kReadable);
  // The reader must read to EOF or EAGAIN: a FIN from before add() would raise no signal either.
  EXPECT_TRUE(events_of(evs, late.a.get()) & kPeerShutdown);
}

TEST(SigioPoller, EdgeSemanticsReportEachChangeOnce) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  ASSERT_EQ(::write(x.b.get(), "xy", 2), 2);
  EXPECT_TRUE(events_of(wait_for(*p, 1000), x.a.get()) & kReadable);
  // Not read, but nothing new happened: silence.
  EXPECT_TRUE(wait_for(*p, 0).empty());
  ASSERT_EQ(::write(x.b.get(), "z", 1), 1);
  EXPECT_TRUE(events_of(wait_for(*p, 1000), x.a.get()) & kReadable);
}

TEST(SigioPoller, SeveralSignalsForOneFdMergeIntoOneEvent) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(::write(x.b.get(), "m", 1), 1);
  auto evs = wait_for(*p, 1000);
  EXPECT_EQ(entries_for(evs, x.a.get()), 1);
  // One read now stands for three changes, any of which might have been a FIN.
  EXPECT_EQ(events_of(evs, x.a.get()), kReadable | kPeerShutdown);
  EXPECT_TRUE(wait_for(*p, 0).empty());
}

TEST(SigioPoller, PeerCloseIsReportedAsReadable) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  x.b.reset();
  EXPECT_TRUE(events_of(wait_for(*p, 1000), x.a.get()) & kReadable);
}

TEST(SigioPoller, RemoveStopsReportsAndClearsOAsync) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  EXPECT_TRUE(::fcntl(x.a.get(), F_GETFL) & O_ASYNC);
  ASSERT_EQ(::write(x.b.get(), "queued before remove", 20), 20);  // a signal now queued
  ASSERT_FALSE(p->remove(x.a.get()));
  EXPECT_FALSE(::fcntl(x.a.get(), F_GETFL) & O_ASYNC);
  ASSERT_EQ(::write(x.b.get(), "after", 5), 5);
  EXPECT_TRUE(wait_for(*p, 50).empty());  // the stale signal is ignored, no new one comes
}

// A signal names an fd *number*. One queued for a socket that was reset just before it closed
// is still queued when a new socket gets the same number; it must not be read as an error or
// a hangup of the new socket (a consumer would close it, resetting its unread request).
TEST(SigioPoller, AStaleResetSignalDoesNotReportAnErrorOnTheFdsNextSocket) {
  auto p = make_sigio_poller();
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto connect_pair = [&](UniqueFd& client, UniqueFd& server) {
    client.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    server.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    ASSERT_TRUE(server);
  };
  UniqueFd old_client, old_server;
  connect_pair(old_client, old_server);
  const int fd = old_server.get();
  ASSERT_FALSE(p->add(fd, kReadable));
  consume_initial_event(*p);
  // The old client resets: signals for `fd` are queued, and nobody collects them yet.
  ::linger reset{1, 0};
  ASSERT_EQ(::setsockopt(old_client.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  old_client.reset();
  // The kernel raises the socket's signals as it takes the reset in, so once the socket shows
  // the reset the stale signals are queued.
  pollfd reset_seen{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&reset_seen, 1, 5000), 1) << "the reset did not reach the socket";
  ASSERT_TRUE(reset_seen.revents & (POLLERR | POLLHUP));
  ASSERT_FALSE(p->remove(fd));
  old_server.reset();
  // A new connection takes the lowest free number: the old one.
  UniqueFd new_client, new_server;
  connect_pair(new_client, new_server);
  if (new_server.get() != fd) GTEST_SKIP() << "the new socket did not reuse fd " << fd;
  ASSERT_FALSE(p->add(fd, kReadable));
  ASSERT_EQ(::send(new_client.get(), "req\n", 4, 0), 4);
  const std::uint32_t ev = events_of(wait_for(*p, 100), fd);
  EXPECT_TRUE(ev & kReadable);
  EXPECT_FALSE(ev & kError) << "a stale signal reported an error on a healthy socket";
  char buf[8];
  EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), 4);  // the new socket is fine and has its request
}

TEST(SigioPoller, RemoveOfAnAlreadyClosedFdIsFine) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  const int fd = x.a.get();
  x.a.reset();
  EXPECT_FALSE(p->remove(fd));
}

TEST(SigioPoller, MisuseIsAnErrorNotACrash) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  EXPECT_EQ(p->add(x.a.get(), kReadable), std::errc::file_exists);
  EXPECT_EQ(p->modify(x.b.get(), kReadable), std::errc::no_such_file_or_directory);
  EXPECT_EQ(p->remove(x.b.get()), std::errc::no_such_file_or_directory);
  EXPECT_TRUE(p->add(-1, kReadable));
  consume_initial_event(*p);
  EXPECT_TRUE(p->add(1 << 20, kReadable));  // not an open fd: fcntl says EBADF
}

TEST(SigioPoller, ModifyThatEnablesWritingReportsItAtOnce) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  ASSERT_FALSE(p->modify(x.a.get(), kReadable | kWritable));
  // An empty send buffer raises no signal; the poller reports the new interest itself.
  EXPECT_EQ(events_of(wait_for(*p, 0), x.a.get()), static_cast<std::uint32_t>(kWritable));
  EXPECT_TRUE(wait_for(*p, 0).empty());
}

TEST(SigioPoller, WritableIsSignalledWhenAFullSendBufferDrains) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable | kWritable));
  consume_initial_event(*p);
  std::array<char, 4096> chunk{};
  while (::write(x.a.get(), chunk.data(), chunk.size()) > 0) {
  }
  ASSERT_EQ(errno, EAGAIN);
  EXPECT_TRUE(wait_for(*p, 0).empty());
  while (::read(x.b.get(), chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_TRUE(events_of(wait_for(*p, 1000), x.a.get()) & kWritable);
}

TEST(SigioPoller, QueueOverflowFallsBackToReportingEveryWatchedFd) {
  auto p = make_sigio_poller();
  std::vector<SocketPair> pairs(8);
  for (auto& x : pairs) ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  {
    SigpendingLimit no_queue(0);  // no real-time signal can be queued: the kernel sends SIGIO
    for (std::size_t i = 0; i < pairs.size(); i += 2) ASSERT_EQ(::write(pairs[i].b.get(), "d", 1), 1);
  }
  auto evs = wait_for(*p, 1000);
  // The written ones, and the idle ones too: after an overflow nothing is known for sure.
  for (auto& x : pairs) EXPECT_TRUE(events_of(evs, x.a.get()) & kReadable) << "fd " << x.a.get();
  EXPECT_TRUE(wait_for(*p, 0).empty());
}

TEST(SigioPoller, HandSentSigioAlsoTriggersTheFullScan) {
  auto p = make_sigio_poller();
  std::vector<SocketPair> pairs(4);
  for (auto& x : pairs) ASSERT_FALSE(p->add(x.a.get(), kReadable));
  ASSERT_FALSE(p->add(pairs[0].b.get(), kWritable));
  consume_initial_event(*p);
  send_sigio_to_this_thread();
  auto evs = wait_for(*p, 1000);
  for (auto& x : pairs) EXPECT_TRUE(events_of(evs, x.a.get()) & kReadable);
  EXPECT_EQ(events_of(evs, pairs[0].b.get()), static_cast<std::uint32_t>(kWritable));
}

TEST(SigioPoller, FullScanLargerThanTheOutputIsSpreadOverCalls) {
  auto p = make_sigio_poller();
  std::vector<SocketPair> pairs(10);
  for (auto& x : pairs) ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);
  send_sigio_to_this_thread();
  std::vector<int> seen;
  for (int call = 0; call < 10 && seen.size() < pairs.size(); ++call) {
    std::array<ReadyEvent, 3> out{};
    int n = p->wait(out, 1000);
    ASSERT_GE(n, 1);
    for (int i = 0; i < n; ++i) seen.push_back(out[i].fd);
  }
  EXPECT_EQ(seen.size(), pairs.size());
  EXPECT_TRUE(wait_for(*p, 0).empty());
}

TEST(SigioPoller, PipeWriteFromAnotherThreadEndsAnUnboundedWait) {
  auto p = make_sigio_poller();
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  ASSERT_FALSE(p->add(r.get(), kReadable));
  consume_initial_event(*p);
  // If the write raised no signal, the wait below would never return: after 5 s a watchdog
  // ends it with a SIGIO (a full scan) and the test fails instead of hanging.
  const pid_t me = ::gettid();
  std::atomic<bool> returned{false}, rescued{false};
  std::jthread writer([&](std::stop_token) {
    // The write must come while the wait sleeps in sigwaitinfo, not before it begins.
    EXPECT_TRUE(wait_until_sleeping_in(me, SYS_rt_sigtimedwait));
    EXPECT_EQ(::write(w.get(), "!", 1), 1);
    for (int i = 0; i < 500 && !returned; ++i) std::this_thread::sleep_for(10ms);
    if (!returned) {
      rescued = true;
      ::tgkill(::getpid(), me, SIGIO);
    }
  });
  auto evs = wait_for(*p, -1);
  returned = true;
  writer.join();
  EXPECT_FALSE(rescued);
  EXPECT_TRUE(events_of(evs, r.get()) & kReadable);
}

TEST(SigioPoller, SignalsFollowTheThreadThatWaits) {
  auto p = make_sigio_poller();
  SocketPair x;
  ASSERT_FALSE(p->add(x.a.get(), kReadable));
  consume_initial_event(*p);  // aimed at this thread
  std::vector<ReadyEvent> first, later;
  std::thread([&] {
    first = wait_for(*p, 0);  // a new thread takes over: one report of every fd to be safe
    ASSERT_EQ(::write(x.b.get(), "to the new thread", 17), 17);
    later = wait_for(*p, 1000);
  }).join();
  EXPECT_TRUE(events_of(first, x.a.get()) & kReadable);
  EXPECT_TRUE(events_of(later, x.a.get()) & kReadable);
}

TEST(SigioPoller, EventLoopStopFromAnotherThreadInterruptsAnUnboundedWait) {
  // Built on this thread (its waker is added here), run on another: the common server shape.
  EventLoop loop(make_sigio_poller());
  std::atomic<pid_t> loop_tid{0};
  std::atomic<bool> done{false};
  std::thread runner([&] {
    loop_tid = ::gettid();
    loop.run();
    done = true;
  });
  while (loop_tid == 0) std::this_thread::yield();
  // The stop must end a wait already asleep in sigwaitinfo, not one that has yet to begin.
  EXPECT_TRUE(wait_until_sleeping_in(loop_tid, SYS_rt_sigtimedwait));
  loop.stop();
  for (int i = 0; i < 500 && !done; ++i) std::this_thread::sleep_for(10ms);
  const bool stopped_by_waker = done;
  if (!done) ::tgkill(::getpid(), loop_tid, SIGIO);  // rescue, so the test fails, not hangs
  runner.join();
  EXPECT_TRUE(stopped_by_waker);
}

}  // namespace
}  // namespace iomux::detail
