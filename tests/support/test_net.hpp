// Helpers for integration tests: a server running on its own thread on 127.0.0.1:0, and
// blocking client sockets with timeouts, so no test can hang.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "core/socket.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/loadgen/protocol_mode.hpp"
#include "iomux/models.hpp"
#include "iomux/protocols.hpp"
#include "iomux/server.hpp"
#include "support/internals.hpp"

namespace iomux::test {

using namespace std::chrono_literals;

// The tutorial's reply, as the ack protocol sends it and as the line protocol sends it.
inline const std::string kReply(kDefaultReply);
inline const std::string kLineReply = kReply + "\r\n";

// Log lines captured from a server, for assertions on what it logged.
class LogCapture {
 public:
  LoggerPtr logger(LogLevel level = LogLevel::info) {
    return std::make_shared<Logger>(level, [this](LogLevel, std::string_view line) {
      std::lock_guard lock(mutex_);
      if (lines_.size() < 100000) lines_.emplace_back(line);
    });
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  bool contains(std::string_view needle) const {
    std::lock_guard lock(mutex_);
    for (const auto& l : lines_)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// A server's options and the built-in protocol it serves, as most tests set them up.
struct TestOptions : ServerOptions {
  struct Protocol {
    ProtocolMode mode = ProtocolMode::ack;
    std::string reply{kDefaultReply};
    std::size_t max_line = kDefaultMaxLine;
  } protocol;

  HandlerFactory factory() const {
    switch (protocol.mode) {
      case ProtocolMode::line:
        return line_protocol(protocol.reply, protocol.max_line);
      case ProtocolMode::echo:
        return echo_protocol();
      case ProtocolMode::ack:
        break;
    }
    return ack_protocol(protocol.reply);
  }
};

inline std::unique_ptr<Server> make_test_server(const TestOptions& o) {
  return make_server(static_cast<const ServerOptions&>(o), o.factory());
}

// Runs a server of opts.model on a thread (on opts.listeners: 127.0.0.1, port 0 unless the test
// says otherwise). The destructor stops it (immediately) and joins.
class RunningServer {
 public:
  explicit RunningServer(const TestOptions& opts, LogLevel level = LogLevel::info)
      : RunningServer(static_cast<const ServerOptions&>(opts), opts.factory(), level) {}
  RunningServer(ServerOptions opts, HandlerFactory factory, LogLevel level = LogLevel::info) {
    if (!opts.logger) opts.logger = log_.logger(level);
    server_ = make_server(std::move(opts), std::move(factory));
    thread_ = std::thread([this] {
      try {
        server_->run();
      } catch (const std::exception& e) {
        error_ = e.what();
      }
      done_ = true;
    });
  }
  ~RunningServer() {
    if (thread_.joinable()) {
      server_->stop(StopMode::immediate);
      thread_.join();
    }
  }
  Endpoint endpoint() const { return server_->local_endpoint(); }
  Server& server() { return *server_; }
  const LogCapture& log() const { return log_; }
  // Stops and waits up to `timeout` for run() to return; true if it did.
  bool stop_and_join(StopMode mode, std::chrono::milliseconds timeout = 10s) {
    server_->stop(mode);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done_ && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    if (!done_) return false;
    thread_.join();
    return true;
  }
  bool finished() const { return done_; }
  const std::string& error() const { return error_; }

 private:
  LogCapture log_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::string error_;
};

// A blocking client socket with 5 s send/receive timeouts.
inline UniqueFd connect_to(const Endpoint& ep, std::chrono::milliseconds timeout = 5s) {
  std::error_code ec;
  UniqueFd fd = connect_tcp(ep, timeout, ec);
  if (fd) {
    set_recv_timeout(fd.get(), timeout);
    set_send_timeout(fd.get(), timeout);
    set_no_delay(fd.get());
  }
  return fd;
}

inline bool send_text(int fd, std::string_view text) {
  return !send_all(fd, text.data(), text.size());
}

// Reads until `n` bytes arrived, EOF, an error, or the socket's receive timeout.
inline std::string recv_exact(int fd, std::size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    std::size_t want = std::min(sizeof buf, n - out.size());
    ssize_t got = ::recv(fd, buf, want, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

// True when the peer closed (recv returns 0 or an error) within the socket's timeout.
inline bool wait_closed(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got > 0) continue;
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

// True while a TCP socket of this network namespace listens on `port` (IPv4 or IPv6), as
// /proc/net/tcp and tcp6 show it: state 0A is LISTEN.
// A loopback port nobody listens on now (bound, then released): for a program that takes a
// port number (redis-server), or a connect that must be refused. Another process may take it
// meanwhile: callers that start a server on it try again.
inline std::uint16_t unused_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const Endpoint any = Endpoint::loopback_v4(0);
  if (!fd || ::bind(fd.get(), any.sockaddr_ptr(), any.sockaddr_len()) != 0) return 0;
  return local_endpoint(fd.get()).port();
}

inline bool listening_on(std::uint16_t port) {
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      if (!(fields >> slot >> local >> remote >> state)) continue;
      const std::size_t colon = local.rfind(':');
      if (colon == std::string::npos || state != "0A") continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) return true;
    }
  }
  return false;
}

// Options for a quiet server of `model` with the default ack protocol.
inline TestOptions options_for(std::string model) {
  TestOptions o;
  o.model = std::move(model);
  return o;
}

// Every model's name, for suites parametrized over all models, and a test-name-safe form.
inline std::vector<std::string> all_model_names() {
  std::vector<std::string> names;
  for (const ModelInfo& m : all_models()) names.emplace_back(m.name);
  return names;
}

// The models that take --threads N.
inline std::vector<std::string> threaded_model_names() {
  std::vector<std::string> names;
  for (const ModelInfo& m : all_models())
    if (m.multi_threaded) names.emplace_back(m.name);
  return names;
}
// A suite parametrized by model name: raises the fd limit, and skips (never passes) a model
// this kernel cannot run, with the reason.
class ModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    const Availability a = probe_model(GetParam());
    if (!a.available) GTEST_SKIP() << GetParam() << " unavailable here: " << a.reason;
  }
  bool concurrent() const { return find_model(GetParam())->serves_concurrently; }
};

struct ModelTestName {
  template <typename Info>
  std::string operator()(const Info& info) const {
    std::string n = info.param;
    for (char& ch : n)
      if (ch == '-') ch = '_';
    return n;
  }
};

}  // namespace iomux::test
