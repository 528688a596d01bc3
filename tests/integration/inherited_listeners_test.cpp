// Sockets handed over instead of bound (ServerOptions::inherited, what socket activation
// gives), on every model: served, reported by local_endpoints() and Connection::local() as
// getsockname() says, closed at stop but never shut down (the process that handed them over may
// hold them too: systemd listens on them again after the service stops), a Unix socket's file
// left alone; an fd that is not a listening stream socket refused with a clear error.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "iomux/activation.hpp"
#include "iomux/handler.hpp"
#include "support/reports_listener.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

// A namespace of its own: the unity build compiles this file with others that have helpers
// of the same names.
namespace iomux::test::inherited_listeners_test {
namespace {

// What a service manager hands over: a socket bound and listening, blocking (as systemd
// leaves it). Null if it cannot be made.
UniqueFd listening_socket(const Endpoint& where) {
  UniqueFd fd(::socket(where.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::bind(fd.get(), where.sockaddr_ptr(), where.sockaddr_len()) != 0 || ::listen(fd.get(), 64) != 0)
    return {};
  return fd;
}

bool fd_is_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

// The socket still listens through `keeper` (another fd of it, as the manager keeps one): a
// client connects, and the keeper accepts it.
::testing::AssertionResult still_listening(int keeper, const Endpoint& where) {
  int accepting = 0;
  socklen_t len = sizeof accepting;
  if (::getsockopt(keeper, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting)
    return ::testing::AssertionFailure() << "the socket no longer listens (it was shut down)";
  UniqueFd client = connect_to(where, 2s);
  if (!client) return ::testing::AssertionFailure() << "cannot connect to " << where.to_string();
  pollfd p{keeper, POLLIN, 0};
  if (::poll(&p, 1, 2000) != 1) return ::testing::AssertionFailure() << "the connection never reached the socket";
  UniqueFd accepted(::accept4(keeper, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!accepted) return ::testing::AssertionFailure() << "accept failed: " << std::strerror(errno);
  return ::testing::AssertionSuccess();
}

std::string ask(const Endpoint& where, const Endpoint& listener) {
  UniqueFd c = connect_to(where);
  if (!c) return "(cannot connect to " + where.to_string() + ")";
  if (!send_text(c.get(), "hello")) return "(cannot send)";
  return recv_exact(c.get(), reply_for(listener).size());
}

class EveryModelInherited : public ModelTest {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(dir_.ok());
  }
  ServerOptions options(std::vector<InheritedListener> inherited, std::vector<Endpoint> listeners = {}) const {
    ServerOptions o;
    o.model = GetParam();
    o.inherited = std::move(inherited);
    o.listeners = std::move(listeners);
    return o;
  }
  TempDir dir_;
};

TEST_P(EveryModelInherited, ServesTcpAndUnixSocketsItWasGivenBeforeItsOwnAndNeverShutsThemDown) {
  const std::string path = dir_.file("given.sock");
  UniqueFd tcp = listening_socket(Endpoint::loopback_v4(0));
  UniqueFd unix_path = listening_socket(resolve_one("unix:" + path));
  UniqueFd abstract =
      listening_socket(resolve_one("unix:@iomux-test-inherited-" + std::to_string(::getpid()) + "-" + GetParam()));
  ASSERT_TRUE(tcp && unix_path && abstract);
  // The manager's own fds stay open across the server's life, as systemd's do.
  UniqueFd tcp_keeper(::fcntl(tcp.get(), F_DUPFD_CLOEXEC, 0));
  UniqueFd unix_keeper(::fcntl(unix_path.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(tcp_keeper && unix_keeper);
  const int fds[3] = {tcp.get(), unix_path.get(), abstract.get()};
  const std::vector<Endpoint> given = {local_endpoint(fds[0]), local_endpoint(fds[1]), local_endpoint(fds[2])};
  ASSERT_NE(given[0].port(), 0);
  ASSERT_TRUE(given[2].is_abstract());
  RunningServer s(options({{tcp.release(), "web"}, {unix_path.release(), ""}, {abstract.release(), "x"}},
                          {Endpoint::loopback_v4(0)}),
                  handler_factory<ReportsItsListener>());
  const std::vector<Endpoint> where = s.server().local_endpoints();
  ASSERT_EQ(where.size(), 4u);
  for (std::size_t i = 0; i < given.size(); ++i) EXPECT_EQ(where[i], given[i]) << i;
  EXPECT_NE(where[3].port(), 0);  // its own, after the inherited ones
  for (int round = 0; round < 2; ++round)
    for (const Endpoint& listener : where)
      EXPECT_EQ(ask(listener, listener), reply_for(listener)) << listener.to_string();
  EXPECT_TRUE(s.log().contains(given[0].to_string() + " (inherited fd " + std::to_string(fds[0]) + ")"));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful)) << "a stop did not end the wait on an inherited listener";
  EXPECT_EQ(s.error(), "");
  for (int fd : fds) EXPECT_FALSE(fd_is_open(fd)) << "fd " << fd << " outlived the server";
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << "the server removed a socket file it did not make";
  EXPECT_TRUE(still_listening(tcp_keeper.get(), given[0]));
  EXPECT_TRUE(still_listening(unix_keeper.get(), given[1]));
}

TEST_P(EveryModelInherited, AnImmediateStopEndsTheWaitOnAnInheritedListenerAlone) {
  UniqueFd tcp = listening_socket(Endpoint::loopback_v4(0));
  ASSERT_TRUE(tcp);
  UniqueFd keeper(::fcntl(tcp.get(), F_DUPFD_CLOEXEC, 0));
  const Endpoint given = local_endpoint(tcp.get());
  RunningServer s(options({{tcp.release(), ""}}), handler_factory<ReportsItsListener>());
  EXPECT_EQ(ask(given, given), reply_for(given));
  ASSERT_TRUE(s.stop_and_join(StopMode::immediate));
  EXPECT_TRUE(still_listening(keeper.get(), given));
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModelInherited, ::testing::ValuesIn(all_model_names()), ModelTestName());

// Under --threads N an inherited TCP socket is shared by every loop, as a Unix listener is: a
// socket of each loop's own would need SO_REUSEPORT on the one handed over.
class ThreadedLoopsInherited : public ModelTest {};

TEST_P(ThreadedLoopsInherited, ShareTheOneSocket) {
  UniqueFd tcp = listening_socket(Endpoint::loopback_v4(0));
  ASSERT_TRUE(tcp);
  const Endpoint given = local_endpoint(tcp.get());
  ServerOptions o;
  o.model = GetParam();
  o.threads = 3;
  o.listeners.clear();
  o.inherited = {{tcp.release(), ""}};
  RunningServer s(std::move(o), handler_factory<ReportsItsListener>());
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(connect_to(given));
    ASSERT_TRUE(clients.back());
    ASSERT_TRUE(send_text(clients.back().get(), "hi"));
  }
  for (auto& c : clients) EXPECT_EQ(recv_exact(c.get(), reply_for(given).size()), reply_for(given));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful));
}

INSTANTIATE_TEST_SUITE_P(Models, ThreadedLoopsInherited, ::testing::ValuesIn(threaded_model_names()), ModelTestName());

// What make_server says of an fd that cannot be served, and that it closes it all the same.
std::string refusal_for(UniqueFd fd, const std::string& model = "epoll") {
  ServerOptions o;
  o.model = model;
  o.listeners.clear();
  const int number = fd.get();
  o.inherited = {{fd.release(), "bad"}};
  std::string what;
  try {
    auto server = make_server(std::move(o), ack_protocol());
    what = "(served)";
  } catch (const ServerError& e) {
    what = e.what();
  }
  if (fd_is_open(number)) what += " (and the fd was left open)";
  return what;
}

TEST(Inherited, AnFdThatIsNotAListeningStreamSocketIsRefusedByNumberAndClosed) {
  UniqueFd file(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(file);
  const std::string file_fd = std::to_string(file.get());
  EXPECT_EQ(refusal_for(std::move(file)), "cannot serve on inherited fd " + file_fd + " ('bad'): it is not a socket");

  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(udp);
  const std::string udp_fd = std::to_string(udp.get());
  EXPECT_EQ(refusal_for(std::move(udp)),
            "cannot serve on inherited fd " + udp_fd + " ('bad'): it is not a stream socket (SO_TYPE 2)");

  UniqueFd unbound(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(unbound);
  const std::string unbound_fd = std::to_string(unbound.get());
  EXPECT_EQ(refusal_for(std::move(unbound)), "cannot serve on inherited fd " + unbound_fd +
                                                 " ('bad'): it is not listening (no listen() was called on it)");

  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd other_end(pair[1]);
  const std::string pair_fd = std::to_string(pair[0]);
  EXPECT_EQ(refusal_for(UniqueFd(pair[0])),
            "cannot serve on inherited fd " + pair_fd + " ('bad'): it is not listening (no listen() was called on it)");
}

TEST(Inherited, AreClosedWhenMakeServerFailsBeforeTakingThem) {
  UniqueFd tcp = listening_socket(Endpoint::loopback_v4(0));
  ASSERT_TRUE(tcp);
  const std::string what = refusal_for(std::move(tcp), "no-such-model");
  EXPECT_EQ(what.find("(and the fd was left open)"), std::string::npos) << what;
  EXPECT_NE(what.find("unknown model"), std::string::npos) << what;
}

TEST(Inherited, AreClosedWhenAListenerOfTheServersOwnFails) {
  UniqueFd tcp = listening_socket(Endpoint::loopback_v4(0));
  ASSERT_TRUE(tcp);
  const int number = tcp.get();
  ServerOptions o;
  o.inherited = {{tcp.release(), ""}};
  o.listeners = {resolve_one("unix:/nonexistent-dir-iomux/x.sock")};
  EXPECT_THROW(make_server(std::move(o), ack_protocol()), ServerError);
  EXPECT_FALSE(fd_is_open(number));
}

// inherited_listeners() in a child of its own (it takes fds 3 and up, and changes the
// environment): what it returns, the fds made close-on-exec, the variables gone.
TEST(InheritedListenersFromEnvironment, TakesTheFdsFromThreeNamedMarksThemCloseOnExecAndUnsetsTheVariables) {
  UniqueFd a = listening_socket(Endpoint::loopback_v4(0));
  UniqueFd b = listening_socket(Endpoint::loopback_v4(0));
  ASSERT_TRUE(a && b);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Exit codes say what went wrong; no gtest in the child.
    if (::dup2(a.get(), 3) != 3 || ::dup2(b.get(), 4) != 4) ::_exit(10);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "web:admin", 1);
    std::vector<InheritedListener> got;
    try {
      got = inherited_listeners();
    } catch (...) {
      ::_exit(11);
    }
    if (got.size() != 2 || got[0].fd != 3 || got[0].name != "web" || got[1].fd != 4 || got[1].name != "admin")
      ::_exit(12);
    if (!(::fcntl(3, F_GETFD) & FD_CLOEXEC) || !(::fcntl(4, F_GETFD) & FD_CLOEXEC)) ::_exit(13);
    if (std::getenv("LISTEN_PID") || std::getenv("LISTEN_FDS") || std::getenv("LISTEN_FDNAMES")) ::_exit(14);
    // Malformed, or another process's: nothing taken, and unset all the same.
    ::setenv("LISTEN_PID", "1", 1);
    ::setenv("LISTEN_FDS", "2", 1);
    try {
      if (!inherited_listeners().empty()) ::_exit(15);
    } catch (...) {
      ::_exit(16);
    }
    if (std::getenv("LISTEN_PID") || std::getenv("LISTEN_FDS")) ::_exit(17);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "one", 1);
    try {
      inherited_listeners();
      ::_exit(18);
    } catch (const ServerError&) {
    }
    if (std::getenv("LISTEN_PID") || std::getenv("LISTEN_FDS") || std::getenv("LISTEN_FDNAMES")) ::_exit(19);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's exit code says which check failed";
}

}  // namespace
}  // namespace iomux::test::inherited_listeners_test
