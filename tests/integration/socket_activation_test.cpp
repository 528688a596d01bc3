// `iomux serve` under systemd's socket activation, driven by the real tool:
// `systemd-socket-activate -l ADDR iomux serve ...` (Debian's systemd package) binds ADDR, waits
// for a first client, then execs iomux with the socket as fd 3 and LISTEN_PID/LISTEN_FDS set.
// iomux must serve on it (not bind --host/--port), on every model, a TCP or a Unix socket, one or
// several; --listen adds to them; a socket that cannot be served is a clear error.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

// A namespace of its own: the unity build compiles this file with others that have helpers
// of the same names.
namespace iomux::test::socket_activation_test {
namespace {

const char* const kActivate = "systemd-socket-activate";

bool have_activate() {
  Subprocess probe({kActivate, "--version"});
  return probe.started() && probe.wait_exit(5s) == 0;
}

// systemd-socket-activate listening on `addresses` (each "-l" one, "{port}" standing for a free
// TCP port) and set to exec `iomux serve` with `serve_args`. Null when the tool could not
// listen on a free port in five tries.
struct Activation {
  std::unique_ptr<Subprocess> process;
  std::uint16_t port = 0;
};

Activation activate(const std::vector<std::string>& addresses, const std::vector<std::string>& tool_args,
                    const std::vector<std::string>& serve_args) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    Activation a;
    a.port = unused_port();
    std::vector<std::string> argv{kActivate};
    for (std::string where : addresses) {
      const auto at = where.find("{port}");
      if (at != std::string::npos) where.replace(at, 6, std::to_string(a.port));
      argv.push_back("-l");
      argv.push_back(where);
    }
    argv.insert(argv.end(), tool_args.begin(), tool_args.end());
    argv.push_back(IOMUX_CLI_PATH);
    argv.push_back("serve");
    argv.insert(argv.end(), serve_args.begin(), serve_args.end());
    a.process = std::make_unique<Subprocess>(argv);
    if (!a.process->started()) return {};
    // The tool says where it listens, one line per socket, before it waits for a client.
    const std::string last = "as " + std::to_string(2 + addresses.size()) + "\\.";
    if (a.process->wait_for_output(std::regex(last), 5s)) return a;
    a.process->wait_exit(5s);
    if (a.process->err().find("Address already in use") == std::string::npos) {
      ADD_FAILURE() << kActivate << " did not listen: " << a.process->err();
      return {};
    }
  }
  ADD_FAILURE() << kActivate << " found no free port in five tries";
  return {};
}

// One request on a fresh connection: the ack protocol's reply, or why not.
std::string ask(const Endpoint& where) {
  UniqueFd c = connect_to(where);
  if (!c) return "(cannot connect to " + where.to_string() + ")";
  if (!send_text(c.get(), "hello")) return "(cannot send)";
  return recv_exact(c.get(), kReply.size());
}

// SIGTERM, then the exit code (the summary line is printed on a clean stop).
int stop(Subprocess& p) {
  p.signal(SIGTERM);
  return p.wait_exit(10s);
}

class SocketActivation : public ModelTest {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    if (IsSkipped()) return;
    if (!have_activate()) GTEST_SKIP() << kActivate << " is not installed (Debian package systemd)";
  }
};

TEST_P(SocketActivation, ServesOnTheTcpSocketItIsHandedInsteadOfBinding) {
  Activation a = activate({"127.0.0.1:{port}"}, {}, {"--model", GetParam()});
  ASSERT_TRUE(a.process);
  const Endpoint where = Endpoint::loopback_v4(a.port);
  // The first client is what makes the tool exec iomux; it waits in the backlog meanwhile.
  EXPECT_EQ(ask(where), kReply);
  const auto listening =
      a.process->wait_for_output(std::regex("listening on 127\\.0\\.0\\.1:" + std::to_string(a.port) +
                                            " \\(inherited fd 3\\) \\(model " + GetParam()),
                                 5s);
  EXPECT_TRUE(listening) << a.process->err();
  EXPECT_EQ(ask(where), kReply);
  EXPECT_EQ(stop(*a.process), 0) << a.process->err();
  EXPECT_NE(a.process->err().find("socket activation: 1 listening socket handed over (LISTEN_FDS)"), std::string::npos)
      << a.process->err();
  // Only the socket it was handed: the default 0.0.0.0:7890 was not opened.
  EXPECT_EQ(a.process->err().find("0.0.0.0:7890"), std::string::npos) << a.process->err();
}

INSTANTIATE_TEST_SUITE_P(Models, SocketActivation, ::testing::ValuesIn(all_model_names()), ModelTestName());

class SocketActivationOnce : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_activate()) GTEST_SKIP() << kActivate << " is not installed (Debian package systemd)";
    ASSERT_TRUE(dir_.ok());
  }
  TempDir dir_;
};

TEST_F(SocketActivationOnce, ServesOnAUnixSocketAndLeavesItsFileToTheManager) {
  const std::string path = dir_.file("a.sock");
  Activation a = activate({path}, {}, {"--model", "epoll"});
  ASSERT_TRUE(a.process);
  const Endpoint where = resolve_one("unix:" + path);
  EXPECT_EQ(ask(where), kReply);
  EXPECT_EQ(ask(where), kReply);
  EXPECT_EQ(stop(*a.process), 0) << a.process->err();
  EXPECT_NE(a.process->err().find("listening on unix:" + path + " (inherited fd 3)"), std::string::npos)
      << a.process->err();
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << "iomux removed the socket file it was handed";
}

TEST_F(SocketActivationOnce, ServesOnTwoSocketsHandedOverAndOnesItsListenAdds) {
  const std::string path = dir_.file("b.sock");
  const std::string own = dir_.file("own.sock");
  Activation a =
      activate({"127.0.0.1:{port}", path}, {"--fdname=web:local"}, {"--model", "poll", "--listen", "unix:" + own});
  ASSERT_TRUE(a.process);
  const Endpoint tcp = Endpoint::loopback_v4(a.port);
  EXPECT_EQ(ask(tcp), kReply);
  const auto listening =
      a.process->wait_for_output(std::regex("listening on 127\\.0\\.0\\.1:" + std::to_string(a.port) +
                                            " \\(inherited fd 3\\), unix:\\S+ \\(inherited fd 4\\), unix:\\S+ \\("),
                                 5s);
  ASSERT_TRUE(listening) << a.process->err();
  EXPECT_EQ(ask(resolve_one("unix:" + path)), kReply);
  EXPECT_EQ(ask(resolve_one("unix:" + own)), kReply);
  EXPECT_EQ(stop(*a.process), 0) << a.process->err();
  EXPECT_NE(a.process->err().find("socket activation: 2 listening sockets handed over (LISTEN_FDS)"), std::string::npos)
      << a.process->err();
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << "the file of the socket it was handed is the manager's";
  EXPECT_NE(::lstat(own.c_str(), &st), 0) << "the file of its own --listen socket outlived it";
}

TEST_F(SocketActivationOnce, AnExplicitHostOrPortIsAListenerOfItsOwnBesideTheSocketHandedOver) {
  Activation a = activate({"127.0.0.1:{port}"}, {}, {"--model", "threaded", "--host", "127.0.0.1", "--port", "0"});
  ASSERT_TRUE(a.process);
  EXPECT_EQ(ask(Endpoint::loopback_v4(a.port)), kReply);
  const auto m = a.process->wait_for_output(std::regex("listening on 127\\.0\\.0\\.1:" + std::to_string(a.port) +
                                                       " \\(inherited fd 3\\), 127\\.0\\.0\\.1:(\\d+) \\("),
                                            5s);
  ASSERT_TRUE(m) << a.process->err();
  EXPECT_EQ(ask(Endpoint::loopback_v4(static_cast<std::uint16_t>(std::stoi((*m)[1].str())))), kReply);
  EXPECT_EQ(stop(*a.process), 0) << a.process->err();
}

TEST_F(SocketActivationOnce, ADatagramSocketIsAClearErrorNotACrash) {
  Activation a = activate({"127.0.0.1:{port}"}, {"--datagram"}, {"--model", "epoll"});
  ASSERT_TRUE(a.process);
  // A datagram makes the tool exec iomux, which refuses the socket.
  UniqueFd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const Endpoint where = Endpoint::loopback_v4(a.port);
  ASSERT_EQ(::sendto(udp.get(), "x", 1, 0, where.sockaddr_ptr(), where.sockaddr_len()), 1);
  EXPECT_EQ(a.process->wait_exit(10s), 1) << a.process->err();
  EXPECT_NE(a.process->err().find("cannot serve on inherited fd 3: it is not a stream socket"), std::string::npos)
      << a.process->err();
}

// The variables without the tool: how `iomux serve` reads them, checked where they can be
// wrong (a shell sets them for the process it becomes).
TEST(SocketActivationEnvironment, MalformedVariablesAreAClearError) {
  Subprocess p({"/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=two exec \"$0\" serve --port 0", IOMUX_CLI_PATH});
  ASSERT_TRUE(p.started());
  EXPECT_EQ(p.wait_exit(10s), 1) << p.err();
  EXPECT_NE(p.err().find("socket activation: LISTEN_FDS is not a count of fds: 'two'"), std::string::npos) << p.err();
}

TEST(SocketActivationEnvironment, AnFdThatIsNotOpenIsAClearError) {
  Subprocess p(
      {"/bin/sh", "-c", "exec 3>&- 4>&-; LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" serve --port 0", IOMUX_CLI_PATH});
  ASSERT_TRUE(p.started());
  EXPECT_EQ(p.wait_exit(10s), 1) << p.err();
  EXPECT_NE(p.err().find("LISTEN_FDS=2 but fd 3 cannot be used: Bad file descriptor"), std::string::npos) << p.err();
}

TEST(SocketActivationEnvironment, VariablesForAnotherProcessAreIgnored) {
  // LISTEN_PID is the shell's parent's: not this process's sockets. iomux binds as usual.
  Subprocess p(
      {"/bin/sh", "-c", "LISTEN_PID=$PPID LISTEN_FDS=1 exec \"$0\" serve --port 0 --host 127.0.0.1", IOMUX_CLI_PATH});
  ASSERT_TRUE(p.started());
  const auto m = p.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+) \(model)"), 10s);
  ASSERT_TRUE(m) << p.err();
  const auto port = static_cast<std::uint16_t>(std::stoi((*m)[1].str()));
  EXPECT_EQ(ask(Endpoint::loopback_v4(port)), kReply);
  EXPECT_EQ(stop(p), 0) << p.err();
  EXPECT_EQ(p.err().find("socket activation"), std::string::npos) << p.err();
}

}  // namespace
}  // namespace iomux::test::socket_activation_test
