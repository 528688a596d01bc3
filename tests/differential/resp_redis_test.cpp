// iomux's resp protocol against redis-server itself: seeded random sequences of the commands
// iomux supports (keys, values, options, bad arities, wrong types, expiries, binary and long
// values) go to both servers, and every reply must be the same, byte for byte, but for the
// differences listed in kDifferences (docs/protocols.md lists them too, with their reasons).
//
// Run by `make check` (scripts/check.sh differential), not `make test`. redis-server comes
// from scripts/install-deps.sh; the test starts its own, on a free port, in a private
// directory, with no persistence. Reproducible: the seed is printed, and
//   RESP_DIFF_SEED=S build/tests/differential_tests
// replays a run (RESP_DIFF_SEQUENCE=N: only its sequence N; RESP_DIFF_VERBOSE=1: every reply
// printed); a failure prints the sequence that failed, command by command.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "iomux/log.hpp"
#include "support/subprocess.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

using namespace std::chrono_literals;
using Args = std::vector<std::string>;

// ---- the documented differences ------------------------------------------------------------
//
// Each is a reason the two servers may answer a command differently while both are right; the
// comparison applies exactly these and nothing else. docs/protocols.md repeats them.
//
// 1. Client ids: each server numbers its own connections (CLIENT ID, HELLO's "id").
//    Compared: the reply's type, not the number.
// 2. Time: a TTL set on one server a moment before the other has a few milliseconds less left
//    (PTTL; TTL rounds to seconds and may round apart). Compared within 1 s.
// 3. What the servers have, not what a client asked: INFO (a subset of Redis's fields, its own
//    figures), COMMAND and COMMAND COUNT/INFO/LIST (iomux has a subset of the commands and
//    leaves ACL categories, tips and key specifications empty), COMMAND DOCS (empty here:
//    redis-cli then uses its built-in help), HELLO (its id), CONFIG GET of a pattern. Compared:
//    that both answer, and with the same words if either answers an error. CONFIG GET is
//    generated only for parameters both report alike (save, appendonly) or neither knows.
// 4. DBSIZE counts keys past their TTL that no lookup or expiry cycle has removed yet; once a
//    key of the sequence may have expired, when each server's cycle ran shows. Compared: that
//    both answer.
// 5. CLIENT SETINFO is Redis 7.2's (client libraries send it when they connect); Redis 7.0
//    answers it as an unknown subcommand, iomux accepts it and forgets it. Compared: that both
//    answer.
// Never generated:
// 6. SELECT 1..15: one database here ("-ERR DB index is out of range"), 16 in Redis (it would
//    switch Redis's database for the rest of the sequence).
// 7. HELLO 3: RESP2 only here (-NOPROTO); it would switch Redis to RESP3.
// 8. EXAT / PXAT: not supported here (TTLs run on a monotonic clock).
// 9. Malformed requests and requests past the limits: errors are found as early as the bytes
//    allow and close the connection, as Redis does, but a request past the 64 MiB bound gets
//    an error reply where Redis closes silently (request_parser.cpp and its tests).
// 10. -OOM: each server counts its memory its own way (Redis the allocator's total with its
//    client buffers, iomux the keyspace's), so the point where writes are refused differs.
enum class Compare { exact, id, ttl, answered, any };

// ---- a blocking RESP client ------------------------------------------------------------------

class Client {
 public:
  explicit Client(const Endpoint& ep) : fd_(connect_to(ep, 10s)) {}
  explicit operator bool() const { return static_cast<bool>(fd_); }

  bool send(std::string_view bytes) { return send_text(fd_.get(), bytes); }

  // One whole reply, as its bytes; nullopt at EOF, an error or the 10 s timeout.
  std::optional<std::string> reply() {
    std::size_t end = 0;
    for (;;) {
      if (complete(buffer_, 0, end, 0)) {
        std::string out = buffer_.substr(0, end);
        buffer_.erase(0, end);
        return out;
      }
      char chunk[64 * 1024];
      ssize_t n;
      do {
        n = ::recv(fd_.get(), chunk, sizeof chunk, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  // Whether bytes[at..] holds a whole reply; `end` is set past it.
  static bool complete(const std::string& bytes, std::size_t at, std::size_t& end, int depth) {
    if (depth > 32 || at >= bytes.size()) return false;
    const std::size_t line_end = bytes.find("\r\n", at);
    if (line_end == std::string::npos) return false;
    const char type = bytes[at];
    const std::string line = bytes.substr(at + 1, line_end - at - 1);
    std::size_t next = line_end + 2;
    if (type == '$' || type == '*') {
      const long long n = std::stoll(line);
      if (type == '$') {
        if (n >= 0) {
          next += static_cast<std::size_t>(n) + 2;
          if (next > bytes.size()) return false;
        }
      } else {
        for (long long i = 0; i < n; ++i)
          if (!complete(bytes, next, next, depth + 1)) return false;
      }
    }
    end = next;
    return true;
  }

  UniqueFd fd_;
  std::string buffer_;
};

std::string encode(const Args& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& arg : args) out += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
  return out;
}

// As a telnet user would type it: words separated by spaces. Only for arguments that need no
// quoting.
bool inline_safe(const Args& args) {
  if (args[0].starts_with("*")) return false;
  std::size_t length = 0;
  for (const std::string& arg : args) length += arg.size() + 1;
  if (length > 1024) return false;  // far from the 64 KiB inline limit (a protocol error)
  for (const std::string& arg : args) {
    if (arg.empty()) return false;
    for (char c : arg)
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '\\' || c == '\0' ||
          c == '\v' || c == '\f')
        return false;
  }
  return true;
}

std::string encode_inline(const Args& args) {
  std::string out;
  for (const std::string& arg : args) out += (out.empty() ? "" : " ") + arg;
  return out + "\r\n";
}

// ---- the servers ----------------------------------------------------------------------------

bool redis_server_installed() {
  return std::system("command -v redis-server >/dev/null 2>&1") == 0;
}

struct Servers {
  std::filesystem::path dir;
  std::unique_ptr<Subprocess> redis;
  std::unique_ptr<Subprocess> iomux;
  Endpoint redis_ep;
  Endpoint iomux_ep;

  // Empty on success, else why not.
  std::string start() {
    char templ[] = "/tmp/iomux-redis-diff.XXXXXX";
    if (!::mkdtemp(templ)) return "mkdtemp failed";
    dir = templ;
    for (int attempt = 0; attempt < 5 && !redis; ++attempt) {
      const int port = unused_port();
      auto process = std::make_unique<Subprocess>(std::vector<std::string>{
          "redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
          "--dir", dir.string(), "--daemonize", "no", "--protected-mode", "no", "--logfile", ""});
      if (process->wait_for_output(std::regex("Ready to accept connections"), 10s)) {
        redis = std::move(process);
        redis_ep = Endpoint::loopback_v4(static_cast<std::uint16_t>(port));
      }
    }
    if (!redis) return "redis-server did not start";
    iomux = std::make_unique<Subprocess>(std::vector<std::string>{IOMUX_CLI_PATH, "serve", "--protocol", "resp",
                                                                  "--host", "127.0.0.1", "--port", "0", "-q"});
    const auto listening = iomux->wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
    if (!listening) return "iomux did not start: " + iomux->err();
    iomux_ep = Endpoint::loopback_v4(static_cast<std::uint16_t>(std::stoi((*listening)[1])));
    return {};
  }

  ~Servers() {
    for (auto* p : {&redis, &iomux}) {
      if (!*p) continue;
      (*p)->signal(SIGTERM);
      (*p)->wait_exit(10s);
    }
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
};

// ---- the generator ---------------------------------------------------------------------------

// A generated "command" that is raw bytes to send as they are (args[1]): inline requests.
const std::string kRaw = std::string("\0raw", 4);

class Generator {
 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  // One command and how its replies are compared.
  std::pair<Args, Compare> next() {
    pause_ = false;
    Args args = command();
    if (args[0] == kRaw) return {args, Compare::exact};
    // Bad arity, now and then: one argument dropped or added.
    if (chance(4)) {
      if (args.size() > 1 && coin()) {
        args.pop_back();
      } else {
        args.push_back(small_value());
      }
    }
    const std::string name = lower(args[0]);
    const std::string sub = args.size() >= 2 ? lower(args[1]) : "";
    Compare how = Compare::exact;
    if ((name == "ttl" || name == "pttl") && args.size() == 2) how = Compare::ttl;
    if (name == "info" || name == "hello" || (name == "command" && sub != "nosuch")) how = Compare::answered;
    if (name == "config" && sub == "get" && args.size() >= 3 && args[2] == "sav?") how = Compare::answered;
    if (name == "client" && sub == "id") how = Compare::id;
    if (name == "client" && sub == "setinfo") how = Compare::any;
    // DBSIZE counts keys past their TTL that neither lookup nor active expiry has removed yet:
    // once a key may have expired, when each server's expiry cycle ran shows.
    if (name == "dbsize" && expired_) how = Compare::answered;
    return {args, how};
  }
  // The last command set a 1 ms TTL: wait until it has passed on both servers.
  bool pause() const { return pause_; }

 private:
  std::uint64_t pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_); }
  bool coin() { return pick(2) == 0; }
  bool chance(int percent) { return pick(100) < static_cast<std::uint64_t>(percent); }
  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  // A command name in a random letter case, now and then.
  std::string name(std::string n) {
    if (chance(20))
      for (char& c : n)
        if (coin()) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return n;
  }

  std::string key() {
    static const char* const kKeys[] = {
        "k0", "k1", "k2", "k3", "list0", "list1", "n0", "n1", "b", "{a}x", "a-key-longer-than-fifteen-bytes"};
    return kKeys[pick(std::size(kKeys))];
  }
  std::string small_value() {
    switch (pick(8)) {
      case 0:
        return "";
      case 1:
        return std::to_string(static_cast<std::int64_t>(pick(2000)) - 1000);
      case 2:
        return "abc";
      case 3:
        return "hello world";
      case 4:
        return std::string(1, static_cast<char>(pick(256)));
      case 5:
        return "-0";
      case 6:
        return "9223372036854775807";
      default:
        return "v" + std::to_string(pick(100));
    }
  }
  std::string value() {
    const std::uint64_t kind = pick(100);
    if (kind < 60) return small_value();
    std::size_t size = kind < 85 ? pick(64) : kind < 97 ? pick(20000) : 16 * 1024 + pick(300 * 1024);
    std::string out(size, '\0');
    const bool binary = coin();
    for (char& c : out) c = binary ? static_cast<char>(pick(256)) : static_cast<char>('a' + pick(26));
    return out;
  }
  std::string integer() {
    switch (pick(10)) {
      case 0:
        return "9223372036854775807";
      case 1:
        return "-9223372036854775808";
      case 2:
        return "x1";
      case 3:
        return "1.5";
      case 4:
        return "";
      case 5:
        return " 1";
      case 6:
        return "00";
      default:
        return std::to_string(static_cast<std::int64_t>(pick(41)) - 20);
    }
  }
  // A TTL that expires at once, never during the run, or (milliseconds only) after 1 ms, in
  // which case the run waits a few milliseconds after the command (see difference 2).
  std::string ttl(bool seconds) {
    switch (pick(8)) {
      case 0:
        return "-" + std::to_string(pick(5));
      case 1:
        return "0";
      case 2: {
        static const char* const kJunk[] = {"9223372036854775807", "-9223372036854775808", "x1", "1.5", "", " 1", "00",
                                            "9223372036854775"};
        return kJunk[pick(std::size(kJunk))];
      }
      case 3:
        if (!seconds) {
          pause_ = true;
          expired_ = true;
          return "1";
        }
        [[fallthrough]];
      default:
        return std::to_string((seconds ? 1000 : 1'000'000) + pick(seconds ? 100000 : 100'000'000));
    }
  }

  Args command() {
    switch (pick(38)) {
      case 0:
      case 1:
      case 2: {
        Args a{name("set"), key(), value()};
        for (int i = static_cast<int>(pick(4)); i > 0; --i) {
          switch (pick(8)) {
            case 0:
              a.push_back("NX");
              break;
            case 1:
              a.push_back("XX");
              break;
            case 2:
              a.push_back("GET");
              break;
            case 3:
              a.push_back("KEEPTTL");
              break;
            case 4:
              a.push_back("EX");
              a.push_back(ttl(true));
              break;
            case 5:
              a.push_back("PX");
              a.push_back(ttl(false));
              break;
            case 6:
              a.push_back(coin() ? "ex" : "px");  // a TTL option without its TTL, if last
              break;
            default:
              a.push_back(coin() ? "bogus" : "nx");
          }
        }
        return a;
      }
      case 3:
      case 4:
        return {name("get"), key()};
      case 5: {
        Args a{name("mget")};
        for (int i = static_cast<int>(pick(6)); i >= 0; --i) a.push_back(key());
        return a;
      }
      case 6: {
        Args a{name("mset")};
        for (int i = static_cast<int>(pick(3)); i >= 0; --i) {
          a.push_back(key());
          a.push_back(value());
        }
        if (chance(10)) a.push_back(key());
        return a;
      }
      case 7:
        return {name("incr"), key()};
      case 8:
        return {name("decr"), key()};
      case 9:
        return {name("incrby"), key(), integer()};
      case 10:
        return {name("decrby"), key(), integer()};
      case 11:
      case 12:
        return {name("append"), key(), value()};
      case 13:
        return {name("strlen"), key()};
      case 14: {
        Args a{name(coin() ? "del" : "exists")};
        for (int i = static_cast<int>(pick(4)); i >= 0; --i) a.push_back(key());
        return a;
      }
      case 15:
      case 16: {
        Args a{name(coin() ? "expire" : "pexpire"), key()};
        a.push_back(ttl(a[0] == "expire" || a[0] == "EXPIRE"));
        for (int i = static_cast<int>(pick(4)); i > 0; --i) {
          static const char* const kConditions[] = {"NX", "XX", "GT", "LT", "gt", "xx", "YY"};
          a.push_back(kConditions[pick(std::size(kConditions))]);
        }
        return a;
      }
      case 17:
        return {name(coin() ? "ttl" : "pttl"), key()};
      case 18:
        return {name("persist"), key()};
      case 19:
        return {name("dbsize")};
      case 20:
        if (chance(70)) return {name("ping")};  // FLUSHDB/FLUSHALL rarely: they empty everything
        return coin() ? Args{name("flushdb")} : Args{name("flushall"), coin() ? "ASYNC" : "SYNC"};
      case 21:
      case 22: {
        Args a{name(coin() ? "lpush" : "rpush"), key()};
        for (int i = static_cast<int>(pick(4)); i >= 0; --i) a.push_back(value());
        return a;
      }
      case 23: {
        // A long list at once: its LRANGE and LPOP replies outgrow a call's room (1 MiB).
        Args a{name(coin() ? "lpush" : "rpush"), key()};
        const std::size_t size = coin() ? pick(64) : pick(40 * 1024);
        for (int i = static_cast<int>(20 + pick(180)); i >= 0; --i)
          a.push_back(std::string(size + pick(8), 'a' + static_cast<char>(pick(26))));
        return a;
      }
      case 24:
      case 25: {
        Args a{name(coin() ? "lpop" : "rpop"), key()};
        if (coin()) a.push_back(coin() ? integer() : std::to_string(pick(300)));
        return a;
      }
      case 26:
        return {name("llen"), key()};
      case 27:
        return {name("lrange"), key(), integer(), integer()};
      case 28:
        return {name("lrange"), key(), std::to_string(static_cast<int>(pick(40)) - 20),
                coin() ? "-1" : std::to_string(pick(300))};
      case 29:
        return coin() ? Args{name("ping"), value()} : Args{name("echo"), value()};
      case 30: {
        static const char* const kIndexes[] = {"0", "16", "-1", "x", "99999999999"};
        return {name("select"), kIndexes[pick(std::size(kIndexes))]};
      }
      case 31: {
        switch (pick(7)) {
          case 0:
            return {name("client"), "setname", coin() ? "name" + std::to_string(pick(10)) : "bad name"};
          case 1:
            return {name("client"), "getname"};
          case 2:
            return {name("client"), "id"};
          case 3:
            return {name("client"), "setinfo", coin() ? "lib-name" : "lib-foo", "x"};
          case 4:
            return {name("client"), "nosuch"};
          case 5:
            return {name("reset")};
          default:
            return {name("hello"), coin() ? "2" : "x"};
        }
      }
      case 32: {
        static const char* const kParameters[] = {"save", "appendonly", "nosuch-parameter", "sav?"};
        Args a{name("config"), coin() ? "get" : "nosuch"};
        a.push_back(kParameters[pick(std::size(kParameters))]);
        return a;
      }
      case 33: {
        static const char* const kSubcommands[] = {"count", "info", "docs", "list", "nosuch"};
        return {name("command"), kSubcommands[pick(std::size(kSubcommands))], "get"};
      }
      case 34:
        return {name("info"), coin() ? "memory" : "keyspace"};
      case 35: {
        // Inline requests with Redis's quoting: "..." with escapes, '...' with \' only.
        static const char* const kInline[] = {"ECHO \"a\\x41\\tb\\n\"\r\n",
                                              "ECHO 'it\\'s'\r\n",
                                              "SET k0 \"two words\"\r\n",
                                              "ECHO \"\\xzz\\q\"\r\n",
                                              "PING ''\r\n",
                                              "ECHO   spaced    out  \r\n",
                                              "SET k1 \"\\x00\\xff\"\r\n",
                                              "ECHO \"\\\\\"\n",
                                              "RPUSH list0 \"a b\" 'c d' e\r\n",
                                              "\r\nPING\r\n",
                                              "ECHO \"\\\"quoted\\\"\"\r\n",
                                              "MSET k2 \"\\x41\" k3 '\\x41'\r\n"};
        return {kRaw, kInline[pick(std::size(kInline))]};
      }
      case 36:
        return coin() ? Args{name("hello"), "2", "SETNAME", "n" + std::to_string(pick(9))}
                      : Args{name("hello"), "2", "AUTH", "default", "whatever"};
      default: {
        static const char* const kUnknown[] = {"foo", "GETT", "nosuchcommand", "x\x01y"};
        Args a{kUnknown[pick(std::size(kUnknown))]};
        for (int i = static_cast<int>(pick(3)); i > 0; --i) a.push_back(small_value());
        return a;
      }
    }
  }

  std::mt19937_64 rng_;
  bool pause_ = false;
  bool expired_ = false;  // a key may have expired in this sequence
};

// ---- the comparison ---------------------------------------------------------------------------

bool same(const std::string& a, const std::string& b, Compare how) {
  switch (how) {
    case Compare::exact:
      return a == b;
    case Compare::id:
      // ":<n>\r\n" both, or the same error.
      return (a.starts_with(":") && b.starts_with(":")) || a == b;
    case Compare::ttl: {
      if (!a.starts_with(":") || !b.starts_with(":")) return a == b;
      const long long x = std::stoll(a.substr(1));
      const long long y = std::stoll(b.substr(1));
      if (x < 0 || y < 0) return x == y;
      return std::llabs(x - y) <= 1000;
    }
    case Compare::answered:
      // What each server has may differ; an error must not (the same words, or none).
      if (a.starts_with("-") || b.starts_with("-")) return a == b;
      return !a.empty() && !b.empty();
    case Compare::any:
      return !a.empty() && !b.empty();
  }
  return false;
}

std::string shown(std::string_view bytes) {
  return escape_bytes(bytes.substr(0, 300)) +
         (bytes.size() > 300 ? "... (" + std::to_string(bytes.size()) + " bytes)" : "");
}

std::uint64_t run_seed() {
  if (const char* env = std::getenv("RESP_DIFF_SEED")) return std::strtoull(env, nullptr, 10);
  return static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

TEST(RespDifferential, RepliesMatchRedisServer) {
  if (!redis_server_installed()) GTEST_SKIP() << "redis-server is missing (scripts/install-deps.sh installs it)";
  Servers servers;
  const std::string why = servers.start();
  ASSERT_TRUE(why.empty()) << why;

  const std::uint64_t seed = run_seed();
  std::printf("seed %llu (replay: RESP_DIFF_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  constexpr int kSequences = 1500;
  constexpr int kCommands = 50;
  const auto started = std::chrono::steady_clock::now();
  std::size_t commands = 0;
  std::map<char, std::size_t> replies;  // by type, what redis-server answered
  std::set<std::string> errors;         // the kinds of error replies seen
  // RESP_DIFF_SEQUENCE=N runs only sequence N of the seed's; RESP_DIFF_VERBOSE=1 prints every
  // command and both replies.
  const int only = std::getenv("RESP_DIFF_SEQUENCE") ? std::atoi(std::getenv("RESP_DIFF_SEQUENCE")) : -1;
  const bool verbose = std::getenv("RESP_DIFF_VERBOSE") != nullptr;
  for (int sequence = 0; sequence < kSequences; ++sequence) {
    if (only >= 0 && sequence != only) continue;
    Client redis(servers.redis_ep);
    Client iomux(servers.iomux_ep);
    ASSERT_TRUE(redis && iomux);
    // Each sequence from an empty keyspace, on fresh connections (no name, no state).
    for (Client* c : {&redis, &iomux}) {
      ASSERT_TRUE(c->send(encode({"FLUSHALL"})));
      ASSERT_EQ(c->reply(), "+OK\r\n");
    }
    Generator generator(seed * 1000003 + static_cast<std::uint64_t>(sequence));
    std::mt19937_64 framing(seed ^ static_cast<std::uint64_t>(sequence));
    std::vector<std::string> history;
    auto context = [&](int command) {
      std::string text = "seed " + std::to_string(seed) + ", sequence " + std::to_string(sequence) + ", command " +
                         std::to_string(command) + "; the sequence so far (inline requests marked):\n";
      for (const std::string& h : history) text += "  " + h + "\n";
      return text;
    };
    for (int i = 0; i < kCommands;) {
      // Now and then a pipeline of a few commands in one write, and inline requests.
      const int batch = framing() % 8 == 0 ? 2 + static_cast<int>(framing() % 5) : 1;
      std::string request;
      std::vector<Compare> compare;
      bool pause = false;
      int batch_size = 0;
      for (int b = 0; b < batch && !pause; ++b, ++batch_size) {
        const auto [args, how] = generator.next();
        pause = generator.pause();  // a 1 ms TTL ends the batch: the wait comes right after it
        compare.push_back(how);
        if (args[0] == kRaw) {
          history.push_back("(sent as it is) \"" + shown(args[1]) + "\"");
          request += args[1];
          continue;
        }
        const bool inline_request = framing() % 10 == 0 && inline_safe(args);
        std::string line = inline_request ? "(inline) " : "";
        for (const std::string& arg : args) line += "\"" + shown(arg) + "\" ";
        history.push_back(line);
        request += inline_request ? encode_inline(args) : encode(args);
      }
      ASSERT_TRUE(redis.send(request) && iomux.send(request));
      for (int b = 0; b < batch_size; ++b, ++i) {
        const std::optional<std::string> want = redis.reply();
        const std::optional<std::string> got = iomux.reply();
        ++commands;
        if (verbose)
          std::printf("%s\n  redis-server: %s\n  iomux:        %s\n", history[history.size() - batch_size + b].c_str(),
                      shown(want.value_or("(none)")).c_str(), shown(got.value_or("(none)")).c_str());
        ASSERT_TRUE(want.has_value()) << "redis-server did not answer\n" << context(i);
        ASSERT_TRUE(got.has_value()) << "iomux did not answer\n" << context(i);
        ++replies[(*want)[0]];
        if (want->starts_with("-"))
          errors.insert(want->substr(0, std::min<std::size_t>(want->find_first_of("'\r"), 20)));
        ASSERT_TRUE(same(*want, *got, compare[b]))
            << "redis-server: " << shown(*want) << "\niomux:        " << shown(*got) << "\n"
            << context(i);
      }
      if (pause) std::this_thread::sleep_for(3ms);
    }
    // Now and then the sequence ends with QUIT: +OK, then both close.
    if (sequence % 7 == 0) {
      ASSERT_TRUE(redis.send(encode({"QUIT"})) && iomux.send(encode({"QUIT"})));
      EXPECT_EQ(redis.reply(), "+OK\r\n");
      EXPECT_EQ(iomux.reply(), "+OK\r\n") << context(kCommands);
      EXPECT_EQ(iomux.reply(), std::nullopt) << "iomux did not close after QUIT";
    }
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  std::printf("%zu commands in %d sequences, every reply the same, in %lld ms\n", commands, kSequences,
              static_cast<long long>(took.count()));
  std::printf("replies by type:");
  for (const auto& [type, count] : replies) std::printf(" '%c' %zu", type, count);
  std::printf("; %zu kinds of error:\n", errors.size());
  for (const std::string& e : errors) std::printf("  %s\n", escape_bytes(e).c_str());
}

}  // namespace
}  // namespace iomux::test
