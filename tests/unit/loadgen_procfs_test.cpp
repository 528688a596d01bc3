// /proc parsing, the listening-line matcher, shell command handling, CPU helpers.
#include <gtest/gtest.h>

#include <unistd.h>

#include "iomux/loadgen/procfs.hpp"
#include "iomux/loadgen/spawn.hpp"

namespace {

using namespace iomux::loadgen;

TEST(LoadgenProcfs, ParsesAStatLine) {
  // A real line from /proc/PID/stat (fields: pid comm state ppid ... utime(14) stime(15) ...).
  const char* line =
      "12345 (iomux) S 100 12345 100 34816 12345 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 987654 "
      "123456789 512 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  const auto s = parse_proc_stat(line);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->ppid, 100);
  EXPECT_EQ(s->utime_ticks, 250u);
  EXPECT_EQ(s->stime_ticks, 75u);
  EXPECT_EQ(s->cpu_ticks(), 325u);
  EXPECT_EQ(s->num_threads, 3);
}

TEST(LoadgenProcfs, CommandNameWithSpacesAndParentheses) {
  const char* line =
      "7 (a (weird) name) R 1 7 7 0 -1 4194304 0 0 0 0 11 22 0 0 20 0 1 0 5 1000 10 "
      "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
  const auto s = parse_proc_stat(line);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, 'R');
  EXPECT_EQ(s->utime_ticks, 11u);
  EXPECT_EQ(s->stime_ticks, 22u);
  EXPECT_EQ(s->num_threads, 1);
}

TEST(LoadgenProcfs, RejectsGarbage) {
  EXPECT_FALSE(parse_proc_stat("").has_value());
  EXPECT_FALSE(parse_proc_stat("12 (x) S 1 2 3").has_value());  // too short
  EXPECT_FALSE(parse_proc_stat("no parentheses at all 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18").has_value());
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 2 0 0 20 0 1 0 5").has_value());
}

TEST(LoadgenProcfs, ParsesVmRss) {
  const char* status =
      "Name:\tiomux\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t   10000 kB\nVmRSS:\t    4321 kB\n"
      "RssAnon:\t    1000 kB\nThreads:\t1\n";
  EXPECT_EQ(parse_vm_rss_kib(status), 4321u);
  EXPECT_FALSE(parse_vm_rss_kib("Name:\tkthreadd\nState:\tS\n").has_value());  // kernel threads have none
  EXPECT_FALSE(parse_vm_rss_kib("").has_value());
}

TEST(LoadgenProcfs, ReadsThisProcess) {
  const auto s = read_proc_stat(::getpid());
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->ppid, ::getppid());
  EXPECT_GE(s->num_threads, 1);
  const auto rss = read_vm_rss_kib(::getpid());
  ASSERT_TRUE(rss.has_value());
  EXPECT_GT(*rss, 0u);
  const auto tree = read_tree_stat(::getpid());
  ASSERT_TRUE(tree.has_value());
  EXPECT_GE(tree->processes, 1u);
  EXPECT_EQ(tree->pids.front(), ::getpid());
  EXPECT_GE(tree->total.cpu_ticks(), s->cpu_ticks());
  EXPECT_FALSE(read_proc_stat(-5).has_value());
  EXPECT_GT(clock_ticks_per_second(), 0);
  EXPECT_DOUBLE_EQ(ticks_to_us(static_cast<std::uint64_t>(clock_ticks_per_second())), 1e6);
  EXPECT_GE(usable_cpu_count(), 1);
  EXPECT_FALSE(self_exe_path().empty());
}

TEST(LoadgenSpawn, FindsTheListeningLine) {
  auto a = find_listen_address("2024-01-01T00:00:00Z info listening on 127.0.0.1:41234 (model epoll)");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 41234);
  a = find_listen_address("listening on [::1]:7890");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 7890);
  a = find_listen_address("listening on 0.0.0.0:80");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(connect_endpoint_for(*a).to_string(), "127.0.0.1:80");
  EXPECT_EQ(connect_endpoint_for({"::", 80}).to_string(), "[::1]:80");
  EXPECT_FALSE(find_listen_address("listening on port 80").has_value());
  EXPECT_FALSE(find_listen_address("listening on 127.0.0.1:0").has_value());
  EXPECT_FALSE(find_listen_address("listening on 127.0.0.1:123456").has_value());
  EXPECT_FALSE(find_listen_address("").has_value());
}

TEST(LoadgenSpawn, ShellCommands) {
  EXPECT_TRUE(is_simple_command("peer_floor_epoll --port 0 --reply 'a b'"));
  EXPECT_TRUE(is_simple_command("server > /tmp/log 2>&1") == false);  // '&' makes it compound
  EXPECT_FALSE(is_simple_command("cd /x && ./server"));
  EXPECT_FALSE(is_simple_command("FOO=1 ./server"));
  EXPECT_FALSE(is_simple_command("a; b"));
  EXPECT_EQ(SpawnSpec::shell("srv --port 0").argv.back(), "exec srv --port 0");
  EXPECT_EQ(SpawnSpec::shell("a && b").argv.back(), "a && b");
  EXPECT_EQ(SpawnSpec::shell("srv --port 0").command_line(), "srv --port 0");

  const auto m = SpawnSpec::iomux_model("epoll", "line", {"--threads", "2"}, "/usr/bin/iomux");
  const std::vector<std::string> want = {
      "/usr/bin/iomux", "serve", "--model", "epoll",     "--host", "127.0.0.1", "--port", "0",
      "--protocol",     "line",  "-q",      "--threads", "2"};
  EXPECT_EQ(m.argv, want);
  EXPECT_EQ(SpawnSpec::iomux_model("poll", "ack").argv.front(), self_exe_path());
}

}  // namespace
