// Where a server listens, on every model: several listeners at once (TCP, a Unix path, an
// abstract Unix name), Connection::local() naming the one a connection came in on, the socket
// file made at start and removed at stop, a stale file replaced and a live one refused.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "iomux/handler.hpp"
#include "support/reports_listener.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// What a server that died leaves behind: a socket file nobody accepts on.
bool make_stale_socket_file(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  auto ep = Endpoint::parse_unix("unix:" + path);
  return fd && ep && ::bind(fd.get(), ep->sockaddr_ptr(), ep->sockaddr_len()) == 0;  // closed, not removed
}

class EveryModelListening : public ModelTest {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_TRUE(dir_.ok());
  }

  ServerOptions options(std::vector<Endpoint> listeners) const {
    ServerOptions o;
    o.model = GetParam();
    o.listeners = std::move(listeners);
    return o;
  }
  // An abstract name no other test (or run) uses.
  std::string abstract_name() const { return "unix:@iomux-test-" + std::to_string(::getpid()) + "-" + GetParam(); }

  // One request on a fresh connection to `where`, the reply read whole.
  static std::string ask(const Endpoint& where, const Endpoint& listener) {
    UniqueFd c = connect_to(where);
    if (!c) return "(cannot connect to " + where.to_string() + ")";
    if (!send_text(c.get(), "hello")) return "(cannot send)";
    return recv_exact(c.get(), reply_for(listener).size());
  }

  TempDir dir_;
};

TEST_P(EveryModelListening, ServesTcpAUnixPathAndAnAbstractNameAtOnceEachConnectionKnowingItsListener) {
  const std::string path = dir_.file("s.sock");
  const Endpoint unix_path = resolve_one("unix:" + path);
  const Endpoint abstract = resolve_one(abstract_name());
  RunningServer s(options({Endpoint::loopback_v4(0), unix_path, abstract}), handler_factory<ReportsItsListener>());
  const std::vector<Endpoint> where = s.server().local_endpoints();
  ASSERT_EQ(where.size(), 3u);
  EXPECT_EQ(where[0], s.endpoint());  // local_endpoint() is the first
  EXPECT_NE(where[0].port(), 0);      // the port the kernel picked, not the 0 asked for
  EXPECT_EQ(where[1], unix_path);
  EXPECT_EQ(where[2], abstract);
  EXPECT_TRUE(exists(path));
  // Twice round, so each listener is accepted from again after the others (blocking, threaded:
  // one thread waits for all of them).
  for (int round = 0; round < 2; ++round)
    for (const Endpoint& listener : where)
      EXPECT_EQ(ask(listener, listener), reply_for(listener)) << listener.to_string();
  // A Unix client's peer is printed as such, with the listener it came in on.
  EXPECT_TRUE(s.log().contains("connect unix:(unnamed) on " + unix_path.to_string())) << path;
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful));
  EXPECT_EQ(s.error(), "");
  EXPECT_FALSE(exists(path)) << "the socket file outlived the server";
}

TEST_P(EveryModelListening, AStaleSocketFileIsReplacedALiveOneIsNot) {
  const std::string path = dir_.file("stale.sock");
  ASSERT_TRUE(make_stale_socket_file(path));
  ASSERT_TRUE(exists(path));
  const Endpoint unix_path = resolve_one("unix:" + path);
  RunningServer s(options({unix_path}), handler_factory<ReportsItsListener>());
  EXPECT_EQ(ask(unix_path, unix_path), reply_for(unix_path));
  // A second server on the same path would steal the first one's clients: refused.
  try {
    auto second = make_server(options({unix_path}), handler_factory<ReportsItsListener>());
    ADD_FAILURE() << "a second server took the path of a live one";
  } catch (const ServerError& e) {
    EXPECT_NE(std::string(e.what()).find("a server is listening on it"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ask(unix_path, unix_path), reply_for(unix_path)) << "the refused server disturbed the live one";
  ASSERT_TRUE(s.stop_and_join(StopMode::immediate));
  EXPECT_FALSE(exists(path));
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModelListening, ::testing::ValuesIn(all_model_names()), ModelTestName());

// Under --threads N a Unix listener is one socket every loop accepts from (no SO_REUSEPORT
// for Unix sockets); TCP gets a listener per loop as before.
class ThreadedLoopsListening : public ModelTest {};

TEST_P(ThreadedLoopsListening, ShareOneUnixListenerAndRemoveItsFileOnce) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("t.sock");
  ServerOptions o;
  o.model = GetParam();
  o.threads = 3;
  o.listeners = {Endpoint::loopback_v4(0), resolve_one("unix:" + path)};
  RunningServer s(std::move(o), handler_factory<ReportsItsListener>());
  const std::vector<Endpoint> where = s.server().local_endpoints();
  ASSERT_EQ(where.size(), 2u);
  // Enough connections that more than one loop takes some (nothing asserts which did).
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 12; ++i) {
    const Endpoint& listener = where[i % 2];
    clients.push_back(connect_to(listener));
    ASSERT_TRUE(clients.back());
    ASSERT_TRUE(send_text(clients.back().get(), "hi"));
  }
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(recv_exact(clients[i].get(), reply_for(where[i % 2]).size()), reply_for(where[i % 2]));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful));
  EXPECT_FALSE(exists(path));
}

INSTANTIATE_TEST_SUITE_P(Models, ThreadedLoopsListening, ::testing::ValuesIn(threaded_model_names()), ModelTestName());

// Refusals that are the same on every model (ServerContext opens every listener).
TEST(Listening, RefusesAPathThatIsNotASocketAndLeavesTheFileAlone) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("data.txt");
  std::ofstream(path) << "keep me";
  ServerOptions o;
  o.listeners = {resolve_one("unix:" + path)};
  try {
    auto server = make_server(std::move(o), ack_protocol());
    ADD_FAILURE() << "listened on a regular file's path";
  } catch (const ServerError& e) {
    EXPECT_NE(std::string(e.what()).find("not a socket"), std::string::npos) << e.what();
  }
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep me");
}

TEST(Listening, NoListenerIsAClearError) {
  ServerOptions o;
  o.listeners.clear();
  try {
    auto server = make_server(std::move(o), ack_protocol());
    ADD_FAILURE() << "a server with nowhere to listen";
  } catch (const ServerError& e) {
    EXPECT_NE(std::string(e.what()).find("no endpoint to listen on"), std::string::npos) << e.what();
  }
}

TEST(Listening, ASecondListenerThatFailsClosesTheFirstAndRemovesItsFile) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("first.sock");
  ServerOptions o;
  o.listeners = {resolve_one("unix:" + path), resolve_one("unix:" + dir.file("no/such/dir.sock"))};
  EXPECT_THROW(make_server(std::move(o), ack_protocol()), ServerError);
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the first listener's file outlived a server that never started";
}

TEST(Listening, UnixModeSetsTheSocketFilesMode) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("m.sock");
  ServerOptions o;
  o.listeners = {resolve_one("unix:" + path)};
  o.unix_mode = 0600;
  auto server = make_server(std::move(o), ack_protocol());
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace iomux::test
