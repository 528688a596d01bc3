// Zero-downtime upgrades of `iomux serve` (kill -USR2): the binary at the same path starts with
// the same arguments and the listening sockets, the pid file comes to name it, the old process
// drains and exits 0, and a client that connects all through it is never refused nor reset. On
// every model, with --threads 2, on a Unix socket, and with a new binary that fails to start.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

extern char** environ;

// A namespace of its own: the unity build compiles this file with others that have helpers
// of the same names.
namespace iomux::test::upgrade_test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

pid_t read_pid(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  return in >> pid ? static_cast<pid_t>(pid) : 0;
}

// `iomux serve` with its output in a log file, not a pipe: the new process an upgrade starts
// inherits the old one's stdout and stderr, and would hold a pipe open past the old one's exit.
// This process is a subreaper, so the new process, orphaned when the old one exits, is ours to
// reap (wait_exit_of) and to kill at the end.
class Served {
 public:
  Served(const std::string& program, const std::vector<std::string>& args, const std::string& log) : log_(log) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    std::vector<std::string> argv{program, "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> raw;
    for (std::string& a : argv) raw.push_back(a.data());
    raw.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    if (posix_spawn(&pid_, raw[0], &fa, &attr, raw.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (pid_ > 0) live_.push_back(pid_);
  }
  // Every process of the run that was not seen to exit is killed.
  ~Served() {
    for (pid_t p : live_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }
  Served(const Served&) = delete;
  Served& operator=(const Served&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string log() const { return read_file(log_); }
  // A process this run started (the first, or one an upgrade started), to kill at the end.
  void adopt(pid_t p) {
    if (std::find(live_.begin(), live_.end(), p) == live_.end()) live_.push_back(p);
  }
  // The process an upgrade started, once `pid_file` names it (adopted); 0 after 10 s.
  pid_t successor(const std::string& pid_file) {
    pid_t named = 0;
    if (!wait_until(
            [&] {
              named = read_pid(pid_file);
              return named != 0 && named != pid_;
            },
            10s))
      return 0;
    adopt(named);
    return named;
  }

  // Waits for `p` (a child, or an orphan we reap as subreaper) to exit; its exit code, or
  // -signal, or nullopt after the timeout.
  std::optional<int> wait_exit_of(pid_t p, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t r = ::waitpid(p, &status, WNOHANG);
      if (r == p) {
        std::erase(live_, p);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(5ms);
    }
  }

  // The first "listening on ADDR" line's address, once the log has it.
  std::optional<std::string> listening(std::chrono::milliseconds timeout = 5s) {
    std::optional<std::string> where;
    wait_until(
        [&] {
          std::smatch m;
          const std::string text = log();
          static const std::regex line(R"(listening on (\S+?)[ ,])");
          if (!std::regex_search(text, m, line)) return false;
          where = m[1];
          return true;
        },
        timeout);
    return where;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  std::vector<pid_t> live_;
};

// One request on a fresh connection, the ack protocol's reply expected: what a client in a tight
// loop does all through an upgrade, counted.
struct Loop {
  std::atomic<std::uint64_t> answered{0};
  std::atomic<std::uint64_t> failed{0};
  std::string first_failure;  // written by the loop's thread, read after it is joined
};

void run_client_loop(const Endpoint& where, Loop& counts, const std::atomic<bool>& done) {
  while (!done.load()) {
    UniqueFd c = connect_to(where);
    std::string why;
    if (!c)
      why = std::string("connect: ") + std::strerror(errno);
    else if (!send_text(c.get(), "hello"))
      why = std::string("send: ") + std::strerror(errno);
    else if (const std::string got = recv_exact(c.get(), kReply.size()); got != kReply)
      why = "reply '" + got + "' (" + std::strerror(errno) + ") on " + local_endpoint(c.get()).to_string();
    if (why.empty()) {
      counts.answered.fetch_add(1);
    } else {
      if (counts.failed.fetch_add(1) == 0) counts.first_failure = why;
    }
  }
}

// A request on `c`, an open connection: its reply, or "" (closed, reset, timed out).
std::string ask_on(int c) {
  if (!send_text(c, "hello")) return "";
  return recv_exact(c, kReply.size());
}

struct Setup {
  std::string model;
  std::vector<std::string> extra;  // more `iomux serve` arguments
  bool unix_socket = false;        // --listen unix:PATH instead of --port 0
};

// The whole story on one server: a connected client, a client in a tight loop, USR2, the pid
// file names the new process, the old one exits 0, new connections are answered, the loop saw
// no failure.
void upgrade_once(const Setup& s) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string pid_file = dir.file("pid");
  const std::string sock = dir.file("s.sock");
  std::vector<std::string> args{"--model", s.model, "--pid-file", pid_file, "--drain-timeout", "5"};
  if (s.unix_socket) {
    args.insert(args.end(), {"--listen", "unix:" + sock});
  } else {
    args.insert(args.end(), {"--host", "127.0.0.1", "--port", "0"});
  }
  args.insert(args.end(), s.extra.begin(), s.extra.end());
  Served old(IOMUX_CLI_PATH, args, dir.file("log"));
  ASSERT_GT(old.pid(), 0);
  const std::optional<std::string> where_text = old.listening();
  ASSERT_TRUE(where_text) << old.log();
  ASSERT_TRUE(wait_until([&] { return read_pid(pid_file) == old.pid(); })) << old.log();
  const Endpoint where = resolve_one(*where_text);

  {
    UniqueFd first = connect_to(where);
    ASSERT_TRUE(first);
    ASSERT_EQ(ask_on(first.get()), kReply);
  }
  // Connected before the upgrade, its request sent only once the new process serves: the old
  // process keeps it (and with it, the blocking model's one thread: the loop's connections wait
  // in the backlog for the new process) until it has answered it.
  UniqueFd before = connect_to(where);
  ASSERT_TRUE(before);

  Loop counts;
  std::atomic<bool> done{false};
  std::thread loop([&] { run_client_loop(where, counts, done); });
  struct Join {
    std::thread& t;
    std::atomic<bool>& done;
    ~Join() {
      done = true;
      if (t.joinable()) t.join();
    }
  } join{loop, done};
  if (s.model != "blocking") {
    ASSERT_TRUE(wait_until([&] { return counts.answered.load() >= 20; })) << old.log();
  }

  ::kill(old.pid(), SIGUSR2);

  const pid_t successor = old.successor(pid_file);
  ASSERT_NE(successor, 0) << "the pid file never named a new process\n" << old.log();
  // Answered by the old process (its connection), which then closes it.
  EXPECT_EQ(ask_on(before.get()), kReply) << old.log();
  EXPECT_TRUE(wait_closed(before.get())) << old.log();
  const std::optional<int> old_exit = old.wait_exit_of(old.pid(), 10s);
  ASSERT_TRUE(old_exit) << "the old process did not exit\n" << old.log();
  EXPECT_EQ(*old_exit, 0) << old.log();

  // Connections now can only be the new process's.
  const std::uint64_t at_exit = counts.answered.load();
  EXPECT_TRUE(wait_until([&] { return counts.answered.load() >= at_exit + 20; })) << old.log();
  {
    UniqueFd after = connect_to(where);
    ASSERT_TRUE(after);
    EXPECT_EQ(ask_on(after.get()), kReply) << old.log();
  }
  done = true;
  loop.join();
  EXPECT_EQ(counts.failed.load(), 0u) << "first failure: " << counts.first_failure << "\n" << old.log();
  EXPECT_GT(counts.answered.load(), 0u);
  const std::string log = old.log();
  EXPECT_NE(log.find("upgrade: started " + std::string(IOMUX_CLI_PATH) + " (pid " + std::to_string(successor)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("upgrade: pid " + std::to_string(successor) + " is ready, draining"), std::string::npos) << log;
  if (s.unix_socket) {
    struct stat st {};
    EXPECT_EQ(::lstat(sock.c_str(), &st), 0) << "the socket file is gone";
  }

  // The new one stops as any server does; a Unix socket file is its to remove now.
  ::kill(successor, SIGTERM);
  const std::optional<int> new_exit = old.wait_exit_of(successor, 10s);
  ASSERT_TRUE(new_exit) << old.log();
  EXPECT_EQ(*new_exit, 0) << old.log();
}

class UpgradeEveryModel : public ModelTest {};

TEST_P(UpgradeEveryModel, HandsOverTheListenerWithoutARefusedOrResetConnection) {
  upgrade_once({GetParam(), {}, false});
}

INSTANTIATE_TEST_SUITE_P(Models, UpgradeEveryModel, ::testing::ValuesIn(all_model_names()), ModelTestName());

class UpgradeThreaded : public ModelTest {};

// Two SO_REUSEPORT sockets: both handed over, each accepted from (the kernel hashes the loop's
// connections over both: one nobody accepts from would strand some, and the loop would time out).
TEST_P(UpgradeThreaded, HandsOverEveryLoopsSocket) {
  upgrade_once({GetParam(), {"--threads", "2"}, false});
}

INSTANTIATE_TEST_SUITE_P(Models, UpgradeThreaded, ::testing::Values("epoll", "uring"), ModelTestName());

TEST(Upgrade, UnixSocketFileStaysAndServes) {
  upgrade_once({"epoll", {}, true});
}

// The copy of the binary an install replaces: a script that exits 1, then a file that is not
// executable, then one that never says it serves, then one that writes the pid file and dies;
// each time the old process says why and goes on serving, the pid file naming it. The real binary back: the next USR2
// works.
TEST(Upgrade, FailingNewBinaryLeavesTheOldOneServing) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string program = dir.file("iomux");
  const auto install = [&](const std::string& from_file, const std::string& text, mode_t mode) {
    const std::string tmp = program + ".new";
    std::filesystem::remove(tmp);
    if (from_file.empty()) {
      std::ofstream(tmp) << text;
    } else {
      std::filesystem::copy_file(from_file, tmp);
    }
    ::chmod(tmp.c_str(), mode);
    // As an install does: a rename, since the running file cannot be written (ETXTBSY).
    std::filesystem::rename(tmp, program);
  };
  install(IOMUX_CLI_PATH, "", 0755);
  const std::string pid_file = dir.file("pid");
  Served old(
      program,
      {"--model", "epoll", "--host", "127.0.0.1", "--port", "0", "--pid-file", pid_file, "--upgrade-timeout", "1"},
      dir.file("log"));
  const std::optional<std::string> where_text = old.listening();
  ASSERT_TRUE(where_text) << old.log();
  ASSERT_TRUE(wait_until([&] { return read_pid(pid_file) == old.pid(); })) << old.log();
  const Endpoint where = resolve_one(*where_text);
  const auto still_serving = [&] {
    UniqueFd c = connect_to(where);
    return c && ask_on(c.get()) == kReply;
  };

  struct Failure {
    std::string script;
    mode_t mode;
    std::string logged;
  };
  const std::vector<Failure> failures{
      {"#!/bin/sh\nexit 1\n", 0755, "did not start: it exited with status 1; still serving"},
      {"#!/bin/sh\nexit 0\n", 0644, "cannot execute " + program + ": Permission denied; still serving"},
      {"#!/bin/sh\nexec sleep 30\n", 0755, "did not say it serves within 1000 ms (killed); still serving"},
      // Wrote its pid file, then died before it said it serves (failed before: the pid file
      // went on naming the dead process).
      {"#!/bin/sh\necho $$ > " + pid_file + "\nexit 3\n", 0755, "it exited with status 3; still serving"},
  };
  std::size_t attempts = 0;
  for (const Failure& f : failures) {
    install("", f.script, f.mode);
    ::kill(old.pid(), SIGUSR2);
    ++attempts;
    ASSERT_TRUE(wait_until(
        [&] {
          const std::string log = old.log();
          std::size_t n = 0;
          for (std::size_t at = log.find("upgrade failed:"); at != std::string::npos;
               at = log.find("upgrade failed:", at + 1))
            ++n;
          return n == attempts;
        },
        10s))
        << old.log();
    EXPECT_NE(old.log().find(f.logged), std::string::npos) << old.log();
    EXPECT_EQ(read_pid(pid_file), old.pid());
    EXPECT_TRUE(still_serving()) << old.log();
  }

  install(IOMUX_CLI_PATH, "", 0755);
  ::kill(old.pid(), SIGUSR2);
  const pid_t successor = old.successor(pid_file);
  ASSERT_NE(successor, 0) << "the pid file never named a new process\n" << old.log();
  const std::optional<int> old_exit = old.wait_exit_of(old.pid(), 10s);
  ASSERT_TRUE(old_exit) << old.log();
  EXPECT_EQ(*old_exit, 0) << old.log();
  EXPECT_TRUE(still_serving()) << old.log();
  ::kill(successor, SIGTERM);
  EXPECT_EQ(old.wait_exit_of(successor, 10s), std::optional<int>(0)) << old.log();
}

}  // namespace
}  // namespace iomux::test::upgrade_test
