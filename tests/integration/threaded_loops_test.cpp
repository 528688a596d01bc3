// --threads N on every model that takes it (the registry's multi_threaded models): N event
// loops, each with its own SO_REUSEPORT listener, must together behave as one server. New
// connections spread over the loops, every client is served, the stats are the sum of the
// loops', and a graceful stop drains what every loop owes before run() returns.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "iomux/handler.hpp"
#include "iomux/models.hpp"
#include "iomux/server.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

constexpr int kLoops = 3;

// Which loop thread opened each connection, keyed by the client's port.
struct LoopsSeen {
  std::mutex mutex;
  std::map<std::uint16_t, std::thread::id> thread_of_port;

  void opened(std::uint16_t port) {
    std::lock_guard lock(mutex);
    thread_of_port[port] = std::this_thread::get_id();
  }
  std::set<std::thread::id> threads() {
    std::lock_guard lock(mutex);
    std::set<std::thread::id> out;
    for (const auto& [port, id] : thread_of_port) out.insert(id);
    return out;
  }
  std::thread::id thread_of(std::uint16_t port) {
    std::lock_guard lock(mutex);
    const auto it = thread_of_port.find(port);
    return it == thread_of_port.end() ? std::thread::id() : it->second;
  }
  std::size_t connections() {
    std::lock_guard lock(mutex);
    return thread_of_port.size();
  }
};

// Echoes, after noting the thread that serves the connection.
class NotesItsLoop : public Handler {
 public:
  explicit NotesItsLoop(LoopsSeen* seen) : seen_(seen) {}
  void on_open(Connection& conn) override { seen_->opened(conn.peer().port()); }
  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    conn.write(std::string(in.data(), in.size()));
    return in.size();
  }

 private:
  LoopsSeen* seen_;
};

class ThreadedLoops : public ModelTest {
 protected:
  ServerOptions options() const {
    ServerOptions o;
    o.model = GetParam();
    o.threads = kLoops;
    o.listeners = {Endpoint::loopback_v4(0)};
    return o;
  }
  HandlerFactory factory() {
    return [seen = &seen_] { return std::make_unique<NotesItsLoop>(seen); };
  }

  LoopsSeen seen_;
};

TEST_P(ThreadedLoops, SpreadConnectionsOverEveryLoopAndServeEachClient) {
  RunningServer s(options(), factory());
  EXPECT_TRUE(s.log().contains("(model " + GetParam() + ", 3 threads)"));
  // The kernel hashes each connection's addresses to pick a listener: with 60 connections the
  // chance that one of 3 loops gets none is about 3 * (2/3)^60, below 1e-10.
  constexpr int kClients = 60;
  std::vector<UniqueFd> clients;
  std::size_t sent = 0;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_to(s.endpoint()));
    ASSERT_TRUE(clients.back());
  }
  for (int i = 0; i < kClients; ++i) {
    const std::string request = "client " + std::to_string(i);
    ASSERT_TRUE(send_text(clients[i].get(), request));
    sent += request.size();
  }
  for (int i = 0; i < kClients; ++i) {
    const std::string request = "client " + std::to_string(i);
    EXPECT_EQ(recv_exact(clients[i].get(), request.size()), request);
  }
  EXPECT_EQ(seen_.connections(), static_cast<std::size_t>(kClients));
  EXPECT_EQ(seen_.threads().size(), static_cast<std::size_t>(kLoops)) << "some loop accepted no connection";
  // One server's counters: what every loop counted, added up.
  const StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.connections_accepted, static_cast<std::uint64_t>(kClients));
  EXPECT_EQ(st.connections_open, static_cast<std::uint64_t>(kClients));
  EXPECT_EQ(st.bytes_in, sent);
  EXPECT_TRUE(wait_until([&] { return s.server().stats().bytes_out == sent; }));
  clients.clear();
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful));
  EXPECT_TRUE(s.error().empty()) << s.error();
}

std::uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  return Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len).port();
}

// A client socket with a small receive buffer, so that most of what the server echoes to it
// stays owed in the server rather than in the kernel's buffers.
UniqueFd connect_with_small_receive_buffer(const Endpoint& to) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  const int rcvbuf = 32 * 1024;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  const timeval five_seconds{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof five_seconds);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &five_seconds, sizeof five_seconds);
  if (::connect(fd.get(), to.sockaddr_ptr(), to.sockaddr_len()) != 0) return UniqueFd();
  return fd;
}

TEST_P(ThreadedLoops, GracefulStopDrainsWhatEveryLoopOwes) {
  ServerOptions o = options();
  o.max_pending = 16 << 20;  // no back-pressure: the server reads every byte before the stop
  o.drain_timeout = std::chrono::seconds(20);
  RunningServer s(std::move(o), factory());
  // Enough connections that every loop has some (see above: 45 leave a loop out about once in
  // 30 million runs); then one connection on each loop sends more than the kernel's buffers
  // hold (the server's send buffer grows to 4 MiB) and reads nothing yet, so every loop owes.
  constexpr int kClients = 45;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect_with_small_receive_buffer(s.endpoint()));
    ASSERT_TRUE(clients.back());
  }
  ASSERT_TRUE(wait_until([&] { return seen_.connections() == kClients; }));
  std::map<std::thread::id, int> loaded_client_of_loop;
  for (int i = 0; i < kClients; ++i)
    loaded_client_of_loop.emplace(seen_.thread_of(local_port(clients[i].get())), clients[i].get());
  ASSERT_EQ(loaded_client_of_loop.size(), static_cast<std::size_t>(kLoops)) << "some loop accepted no connection";
  std::string data(6 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + i / 4096);
  {
    std::vector<std::jthread> writers;
    for (const auto& [loop, fd] : loaded_client_of_loop)
      writers.emplace_back([&data, fd = fd] { send_text(fd, data); });
  }
  const std::uint64_t total = std::uint64_t{kLoops} * data.size();
  ASSERT_TRUE(wait_until([&] { return s.server().stats().bytes_in == total; }, std::chrono::seconds(20)));
  EXPECT_GT(s.server().stats().bytes_pending, 0u);
  s.server().stop(StopMode::graceful);
  // Every loop delivers all it owes, in order, then closes; the idle connections close too.
  for (const auto& [loop, fd] : loaded_client_of_loop) EXPECT_TRUE(recv_exact(fd, data.size()) == data);
  for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get()));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful, std::chrono::seconds(20)));
  EXPECT_TRUE(s.error().empty()) << s.error();
  const StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.connections_open, 0u);
  EXPECT_EQ(st.bytes_out, total);
  EXPECT_EQ(st.bytes_pending, 0u);
  EXPECT_FALSE(s.log().contains("drain timeout"));
}

INSTANTIATE_TEST_SUITE_P(Models, ThreadedLoops, ::testing::ValuesIn(threaded_model_names()), ModelTestName());

}  // namespace
}  // namespace iomux::test
