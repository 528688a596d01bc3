// Hostile clients against the resp protocol's memory (issue 16): what the keyspace really holds
// is what --resp-max-memory bounds; one small request cannot make the server build a reply the
// size of its keyspace, and a client that reads gets every byte of it; an idle connection
// keeps little of its last reply, and counts what it keeps. Each runs `iomux serve --protocol
// resp` as a process of its own, so that its resident memory can be read from /proc, on a
// model of each engine: epoll and poll (the reactor), uring, threaded (the blocking family).
// Sanitizer builds check every reply byte but not the resident memory, which a sanitizer's
// shadow memory and quarantine multiply.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "iomux/resp.hpp"
#include "support/subprocess.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kMeasureMemory = false;
#else
constexpr bool kMeasureMemory = true;
#endif

constexpr std::size_t kMiB = 1 << 20;

// A /proc/PID/status field in bytes (VmRSS: resident now; VmHWM: the peak since the last reset).
std::size_t status_bytes(pid_t pid, std::string_view field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with(field)) return std::stoul(line.substr(field.size() + 1)) * 1024;
  return 0;
}
std::size_t resident(pid_t pid) {
  return status_bytes(pid, "VmRSS");
}
std::size_t peak_resident(pid_t pid) {
  return status_bytes(pid, "VmHWM");
}
// Makes VmHWM start again from the resident memory now (Linux 4.0: "5" to clear_refs).
void reset_peak(pid_t pid) {
  std::ofstream("/proc/" + std::to_string(pid) + "/clear_refs") << "5";
}

std::string command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

// A value whose bytes say where they are, so a byte out of place shows.
std::string pattern(std::size_t size, unsigned seed) {
  std::string value(size, '\0');
  for (std::size_t i = 0; i < size; ++i) value[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 12)) & 0xff);
  return value;
}

// Reads RESP2 replies from a blocking socket and checks them as they come, without keeping a
// long reply whole.
class Replies {
 public:
  explicit Replies(int fd) : fd_(fd) {}

  // The next line, without its "\r\n"; empty with ok() false at EOF, an error or a timeout.
  std::string line() {
    for (;;) {
      const std::size_t end = buffer_.find("\r\n", head_);
      if (end != std::string::npos) {
        std::string out = buffer_.substr(head_, end - head_);
        head_ = end + 2;
        return out;
      }
      if (!fill()) return {};
    }
  }
  // The next reply is a bulk of exactly `value`.
  ::testing::AssertionResult bulk(std::string_view value) {
    const std::string header = line();
    if (header != "$" + std::to_string(value.size()))
      return ::testing::AssertionFailure()
             << "expected a bulk of " << value.size() << " bytes, got \"" << header.substr(0, 80) << "\"";
    for (std::size_t at = 0; at < value.size();) {
      if (head_ == buffer_.size() && !fill())
        return ::testing::AssertionFailure() << "the bulk stopped after " << at << " of " << value.size() << " bytes";
      const std::size_t n = std::min(buffer_.size() - head_, value.size() - at);
      if (std::string_view(buffer_).substr(head_, n) != value.substr(at, n))
        return ::testing::AssertionFailure() << "the bulk differs within bytes " << at << ".." << at + n;
      head_ += n;
      at += n;
    }
    const std::string end = line();
    if (!end.empty() || !ok_) return ::testing::AssertionFailure() << "the bulk is not followed by CRLF";
    return ::testing::AssertionSuccess();
  }
  bool ok() const { return ok_; }

 private:
  bool fill() {
    if (head_ > 0 && head_ == buffer_.size()) {
      buffer_.clear();
      head_ = 0;
    }
    char chunk[256 * 1024];
    ssize_t n;
    do {
      n = ::recv(fd_, chunk, sizeof chunk, 0);
    } while (n < 0 && errno == EINTR);  // this process's rings (uring probes) interrupt it
    if (n <= 0) {
      ok_ = false;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
  std::size_t head_ = 0;
  bool ok_ = true;
};

// `iomux serve --protocol resp` in a process of its own, on 127.0.0.1:0.
class RespServer {
 public:
  RespServer(const std::string& model, std::vector<std::string> flags) : process_(argv(model, std::move(flags))) {
    const auto listening = process_.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
    if (listening) endpoint_ = Endpoint::loopback_v4(static_cast<std::uint16_t>(std::stoi((*listening)[1])));
  }
  bool started() const { return endpoint_.has_value(); }
  const Endpoint& endpoint() const { return *endpoint_; }
  pid_t pid() const { return process_.pid(); }
  Subprocess& process() { return process_; }
  UniqueFd connect() const {
    UniqueFd c = connect_to(*endpoint_, 10s);
    return c;
  }
  // Stops it with SIGTERM; returns its summary line ("stopped: ...").
  std::string stop() {
    process_.signal(SIGTERM);
    EXPECT_EQ(process_.wait_exit(30s), 0);
    const std::string& err = process_.err();
    const std::size_t at = err.rfind("stopped:");
    return at == std::string::npos ? err : err.substr(at);
  }

 private:
  static std::vector<std::string> argv(const std::string& model, std::vector<std::string> flags) {
    std::vector<std::string> args{IOMUX_CLI_PATH, "serve",  "--model", model,        "--host",
                                  "127.0.0.1",    "--port", "0",       "--protocol", "resp"};
    args.insert(args.end(), flags.begin(), flags.end());
    return args;
  }
  Subprocess process_;
  std::optional<Endpoint> endpoint_;
};

std::string info_field(Replies& replies, int fd, std::string_view field) {
  if (!send_text(fd, command({"INFO", "memory"}))) return {};
  const std::string header = replies.line();
  if (header.empty() || header[0] != '$') return {};
  std::string text;
  while (text.size() < std::stoul(header.substr(1)) + 2) text += replies.line() + "\r\n";
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(std::string(field) + ":([^\r]*)"))) return {};
  return m[1];
}

class HostileResp : public ModelTest {};

// Issue 16 (and docs/reliability.md): SET k<i> <4 MiB> then SET k<i> y, 60 rounds, under
// --resp-max-memory 64M. Before, the server grew by 248 MiB (each key kept its 4 MiB buffer),
// INFO's used_memory said 7,910 and every SET was +OK. Now the buffer goes with the value it
// held.
TEST_P(HostileResp, OverwritingLargeValuesWithSmallOnesKeepsNothing) {
  RespServer server(GetParam(), {"--resp-max-memory", "64M", "-q"});
  ASSERT_TRUE(server.started()) << server.process().err();
  UniqueFd c = server.connect();
  ASSERT_TRUE(c);
  Replies replies(c.get());
  const std::size_t before = resident(server.pid());
  const std::string big = pattern(4 * kMiB, 1);
  for (int i = 0; i < 60; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(send_text(c.get(), command({"SET", key, big}) + command({"SET", key, "y"})));
    ASSERT_EQ(replies.line(), "+OK") << "round " << i;
    ASSERT_EQ(replies.line(), "+OK") << "round " << i;
  }
  const std::size_t used = std::stoul(info_field(replies, c.get(), "used_memory"));
  const std::size_t growth = resident(server.pid()) - std::min(before, resident(server.pid()));
  EXPECT_LT(used, 64 * 1024u) << "60 keys holding \"y\"";
  if (kMeasureMemory) {
    EXPECT_LT(growth, 48 * kMiB) << "the server grew by " << (growth >> 20) << " MiB";
  }
  ASSERT_TRUE(send_text(c.get(), command({"GET", "k59"})));
  EXPECT_TRUE(replies.bulk("y"));
  std::printf("grew by %zu MiB, used_memory %zu\n", growth >> 20, used);
}

// Data past --resp-max-memory is refused with Redis's words (its noeviction policy): every
// command that may add data (Redis's denyoom flag), whatever it would add; reading and
// deleting go on, and deleting lifts the refusal. A check of the policy over TCP, which held
// before too; the resident memory is not compared with the count here, since the allocator
// keeps freed memory of a string grown a megabyte at a time (fragmentation, which Redis's
// used_memory leaves out too).
TEST_P(HostileResp, GrowingPastTheKeyspaceLimitIsRefusedWithOom) {
  RespServer server(GetParam(), {"--resp-max-memory", "32M", "-q"});
  ASSERT_TRUE(server.started()) << server.process().err();
  UniqueFd c = server.connect();
  ASSERT_TRUE(c);
  Replies replies(c.get());
  const std::string oom = "-OOM command not allowed when used memory > 'maxmemory'.";
  const std::string chunk = pattern(kMiB, 2);
  int appended = 0;
  for (; appended < 200; ++appended) {
    ASSERT_TRUE(send_text(c.get(), command({"APPEND", "grown", chunk})));
    const std::string reply = replies.line();
    if (reply == oom) break;
    ASSERT_EQ(reply, ":" + std::to_string((appended + 1) * kMiB));
  }
  // APPEND leaves room to grow (as Redis does: 1 MiB past a megabyte), and the room is counted.
  EXPECT_GT(appended, 16);
  EXPECT_LE(appended, 32);
  ASSERT_TRUE(send_text(c.get(), command({"SET", "other", "v"}) + command({"RPUSH", "l", "a"}) +
                                     command({"INCR", "n"}) + command({"GET", "nosuch"})));
  EXPECT_EQ(replies.line(), oom);
  EXPECT_EQ(replies.line(), oom);
  EXPECT_EQ(replies.line(), oom);
  EXPECT_EQ(replies.line(), "$-1");  // reading is never refused
  const std::size_t used = std::stoul(info_field(replies, c.get(), "used_memory"));
  EXPECT_GT(used, 32 * kMiB);
  EXPECT_LT(used, 40 * kMiB);
  ASSERT_TRUE(send_text(c.get(), command({"DEL", "grown"}) + command({"SET", "other", "v"})));
  EXPECT_EQ(replies.line(), ":1");
  EXPECT_EQ(replies.line(), "+OK");  // freeing lifts the refusal
}

// One small request, a reply as large as the keyspace. Each shape sets up its data, then sends
// its request in one write and reads the reply, checking every byte, under --max-memory 16M.
struct LargeReply {
  std::vector<std::string> setup;  // commands, sent one at a time, each answered
  std::string request;             // the small request
  // Reads and checks the reply.
  std::function<::testing::AssertionResult(Replies&)> check;
};

const std::string kShapes[] = {"MgetOfOneValue200Times", "MgetOfDistinctValues", "LrangeOfALongList",
                               "LpopOfALongList",        "PipelineOfGets",       "SetGetOfALongValue"};

LargeReply large_reply(std::string_view shape) {
  const std::string value = pattern(kMiB, 3);
  if (shape == "MgetOfOneValue200Times") {
    // Issue 16's: before, the server peaked at +426 MiB and closed the connection.
    std::vector<std::string> mget{"MGET"};
    for (int i = 0; i < 200; ++i) mget.push_back("k");
    return {{command({"SET", "k", value})}, command(mget), [value](Replies& r) {
              if (r.line() != "*200") return ::testing::AssertionFailure() << "not *200";
              for (int i = 0; i < 200; ++i)
                if (auto ok = r.bulk(value); !ok) return ok << " (value " << i << ")";
              return ::testing::AssertionSuccess();
            }};
  }
  if (shape == "MgetOfDistinctValues") {
    std::vector<std::string> setup;
    std::vector<std::string> mget{"MGET"};
    for (unsigned i = 0; i < 32; ++i) {
      setup.push_back(command({"SET", "d" + std::to_string(i), pattern(kMiB, i)}));
      mget.push_back("d" + std::to_string(i));
    }
    return {setup, command(mget), [](Replies& r) {
              if (r.line() != "*32") return ::testing::AssertionFailure() << "not *32";
              for (unsigned i = 0; i < 32; ++i)
                if (auto ok = r.bulk(pattern(kMiB, i)); !ok) return ok << " (value " << i << ")";
              return ::testing::AssertionSuccess();
            }};
  }
  if (shape == "LrangeOfALongList" || shape == "LpopOfALongList") {
    // 32 MiB of list, in elements of 64 KiB, and one of 4 MiB.
    std::vector<std::string> setup;
    const std::string element = pattern(64 * 1024, 4);
    for (int i = 0; i < 8; ++i) {
      std::vector<std::string> push{"RPUSH", "l"};
      for (int j = 0; j < 64; ++j) push.push_back(element);
      setup.push_back(command(push));
    }
    setup.push_back(command({"RPUSH", "l", pattern(4 * kMiB, 5)}));
    auto check = [element](Replies& r) {
      if (r.line() != "*513") return ::testing::AssertionFailure() << "not *513";
      for (int i = 0; i < 512; ++i)
        if (auto ok = r.bulk(element); !ok) return ok << " (element " << i << ")";
      return r.bulk(pattern(4 * kMiB, 5));
    };
    if (shape == "LpopOfALongList") return {setup, command({"LPOP", "l", "1000"}), check};
    return {setup, command({"LRANGE", "l", "0", "-1"}), check};
  }
  if (shape == "PipelineOfGets") {
    std::string pipeline;
    for (int i = 0; i < 64; ++i) pipeline += command({"GET", "k"});
    return {{command({"SET", "k", value})}, pipeline, [value](Replies& r) {
              for (int i = 0; i < 64; ++i)
                if (auto ok = r.bulk(value); !ok) return ok << " (reply " << i << ")";
              return ::testing::AssertionSuccess();
            }};
  }
  // SET ... GET answers with the old value while replacing it: the reply holds it alone. The
  // value is larger than the budget, so it is made by APPEND a megabyte at a time.
  const std::string old_value = pattern(24 * kMiB, 6);
  std::vector<std::string> setup;
  for (std::size_t at = 0; at < old_value.size(); at += kMiB)
    setup.push_back(command({"APPEND", "k", old_value.substr(at, kMiB)}));
  return {setup, command({"SET", "k", "new", "GET"}), [old_value](Replies& r) { return r.bulk(old_value); }};
}

class HostileRespLargeReply : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    const Availability a = probe_model(std::get<0>(GetParam()));
    if (!a.available) GTEST_SKIP() << std::get<0>(GetParam()) << " unavailable here: " << a.reason;
  }
};

TEST_P(HostileRespLargeReply, ASmallRequestsReplyIsBoundedAndReachesAClientThatReads) {
  const LargeReply shape = large_reply(std::get<1>(GetParam()));
  RespServer server(std::get<0>(GetParam()), {"--max-memory", "16M", "-q"});
  ASSERT_TRUE(server.started()) << server.process().err();
  UniqueFd c = server.connect();
  ASSERT_TRUE(c);
  Replies replies(c.get());
  for (const std::string& setup : shape.setup) {
    ASSERT_TRUE(send_text(c.get(), setup));
    const std::string reply = replies.line();
    ASSERT_TRUE(reply == "+OK" || reply.starts_with(":")) << reply;
  }
  reset_peak(server.pid());
  const std::size_t before = resident(server.pid());
  ASSERT_TRUE(send_text(c.get(), shape.request));
  EXPECT_TRUE(shape.check(replies));
  const std::size_t growth = peak_resident(server.pid()) - std::min(before, peak_resident(server.pid()));
  if (kMeasureMemory) {
    EXPECT_LT(growth, 24 * kMiB) << "the server peaked " << (growth >> 20) << " MiB higher";
  }
  ASSERT_TRUE(send_text(c.get(), "PING\r\n"));
  EXPECT_EQ(replies.line(), "+PONG");  // still connected
  const std::string summary = server.stop();
  EXPECT_NE(summary.find("evicted 0,"), std::string::npos) << summary;
  std::printf("%s: peak +%zu MiB; %s\n", std::get<1>(GetParam()).c_str(), growth >> 20, summary.c_str());
}

// Issue 16: after one 60 KB ECHO each, 300 idle connections held about 7 KB each, and the
// server's bytes_held said 0 (nothing the handler kept was counted). Now each keeps a few
// hundred bytes at most, and what the handler keeps is in bytes_held. Measured against the
// same connections idle after a PING, after a warm-up that touched what the server sets up
// once (uring's 4 MiB of receive buffers, the allocator's arenas): what remains is what a
// long reply left behind.
TEST_P(HostileResp, IdleConnectionsKeepLittleOfTheirLastReplyAndCountIt) {
  RespServer server(GetParam(), {"--stats-interval", "0.2"});
  ASSERT_TRUE(server.started()) << server.process().err();
  const std::string echo = pattern(60 * 1000, 7);
  auto exchange = [&](int fd, const std::string& request, const std::string& reply) {
    if (!send_text(fd, request)) return ::testing::AssertionFailure() << "send";
    Replies replies(fd);
    return replies.bulk(reply);
  };
  {
    std::vector<UniqueFd> warm_up;
    for (int i = 0; i < 100; ++i) {
      warm_up.push_back(server.connect());
      ASSERT_TRUE(warm_up.back());
      ASSERT_TRUE(exchange(warm_up.back().get(), command({"ECHO", echo}), echo));
      server.process().pump(0);
    }
  }
  constexpr int kConnections = 300;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(server.connect());
    ASSERT_TRUE(clients.back()) << "connection " << i;
    ASSERT_TRUE(exchange(clients.back().get(), command({"ECHO", "hi"}), "hi"));
    server.process().pump(0);
  }
  std::this_thread::sleep_for(300ms);
  server.process().pump(0);
  const std::size_t rested = resident(server.pid());
  for (UniqueFd& c : clients) {
    ASSERT_TRUE(exchange(c.get(), command({"ECHO", echo}), echo));
    server.process().pump(0);
  }
  // The stats line after the last reply: bytes_held is every connection's (all idle now).
  std::this_thread::sleep_for(300ms);
  std::string held;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  const std::size_t seen = server.process().err().size();
  while (held.empty() && std::chrono::steady_clock::now() < deadline) {
    server.process().pump(100);
    std::smatch m;
    const std::string recent = server.process().err().substr(seen);
    if (std::regex_search(recent, m, std::regex(R"(held ([0-9.]+ [KMG]?i?B))"))) held = m[1];
  }
  ASSERT_FALSE(held.empty()) << server.process().err().substr(seen);
  const double held_bytes = std::stod(held) * (held.find("KiB") != std::string::npos   ? 1024.0
                                               : held.find("MiB") != std::string::npos ? 1024.0 * 1024
                                                                                       : 1.0);
  EXPECT_GT(held_bytes, 0.0) << "what the handlers keep is counted";
  EXPECT_LE(held_bytes, kConnections * 4096.0) << held;
  const std::size_t after = resident(server.pid());
  const std::size_t per_connection = (after - std::min(rested, after)) / kConnections;
  // On threaded, each connection's thread keeps what glibc's per-thread caches and arenas
  // hold of the memory it freed: the thread's cost, not the reply's. Before, a connection kept
  // 56-69 KB after a 60 KB ECHO (docs/reliability.md).
  const std::size_t bound = GetParam() == std::string("threaded") ? 48 * 1024 : 4096;
  if (kMeasureMemory) {
    EXPECT_LT(per_connection, bound) << "each idle connection kept " << per_connection << " bytes";
  }
  std::printf("per idle connection after a 60 KB ECHO: %zu B more resident than after a PING; bytes_held %s for %d\n",
              per_connection, held.c_str(), kConnections);
}

// Readers of long values and long lists against writers of the same keys, on two event-loop
// threads (run under ThreadSanitizer by make check): a reply that references a value or reads
// a list outside the shard lock must see it whole and unchanged while writers replace the
// value, push to and pop from the list, and the keyspace lets go of what they replaced.
TEST(HostileRespThreads, LongRepliesStayWholeWhileOtherThreadsChangeTheirKeys) {
  ServerOptions o;
  o.model = "epoll";
  o.threads = 2;
  RunningServer server(o, resp_protocol(), LogLevel::error);
  const Endpoint ep = server.endpoint();
  auto element = [](int i) { return "e" + std::to_string(i) + std::string(400, static_cast<char>('a' + i % 26)); };
  {
    UniqueFd c = connect_to(ep, 10s);
    ASSERT_TRUE(c);
    Replies replies(c.get());
    std::vector<std::string> push{"RPUSH", "l"};
    for (int i = 0; i < 3000; ++i) push.push_back(element(i));  // 1.2 MB of list: made in parts
    ASSERT_TRUE(send_text(c.get(), command(push) + command({"SET", "v", std::string(256 * 1024, 'a')})));
    ASSERT_EQ(replies.line(), ":3000");
    ASSERT_EQ(replies.line(), "+OK");
  }
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  auto reader = [&] {
    UniqueFd c = connect_to(ep, 10s);
    Replies replies(c.get());
    for (int round = 0; round < 30 && !stop; ++round) {
      if (!send_text(c.get(), command({"LRANGE", "l", "0", "-1"}) + command({"GET", "v"}))) return ++failures, void();
      const std::string header = replies.line();
      const long n = header.size() > 1 ? std::stol(header.substr(1)) : -1;
      if (header.empty() || header[0] != '*' || n < 2000) return ++failures, void();
      for (long i = 0; i < n; ++i) {
        const std::string length = replies.line();
        const std::string body = replies.line();
        // e<i> then 400 times the same letter, whichever element it is.
        const std::size_t digits = body.find_first_not_of("0123456789", 1);
        if (length.empty() || body.size() < 402 || body[0] != 'e' || digits == std::string::npos ||
            body.size() - digits != 400 || body.find_first_not_of(body[digits], digits) != std::string::npos)
          return ++failures, void();
      }
      const std::string length = replies.line();
      const std::string value = replies.line();
      if (length != "$" + std::to_string(value.size()) || value.empty() ||
          value.find_first_not_of(value[0]) != std::string::npos)
        return ++failures, void();
    }
  };
  auto writer = [&] {
    UniqueFd c = connect_to(ep, 10s);
    Replies replies(c.get());
    for (int round = 0; round < 300 && !stop; ++round) {
      const std::string letter(1, static_cast<char>('a' + round % 26));
      const std::string request = command({"LPUSH", "l", element(round)}) + command({"RPOP", "l"}) +
                                  command({"SET", "v", std::string((200 + round % 100) * 1024, letter[0])});
      if (!send_text(c.get(), request)) return ++failures, void();
      if (replies.line().empty() || replies.line().empty() || replies.line().empty() || replies.line() != "+OK")
        return ++failures, void();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) threads.emplace_back(reader);
  for (int i = 0; i < 2; ++i) threads.emplace_back(writer);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

const std::string kModels[] = {"epoll", "poll", "uring", "threaded"};

INSTANTIATE_TEST_SUITE_P(Models, HostileResp, ::testing::ValuesIn(kModels), ModelTestName());

INSTANTIATE_TEST_SUITE_P(Models, HostileRespLargeReply,
                         ::testing::Combine(::testing::ValuesIn(kModels), ::testing::ValuesIn(kShapes)),
                         [](const auto& info) { return std::get<1>(info.param) + "_" + std::get<0>(info.param); });

}  // namespace
}  // namespace iomux::test
