// Option validation, request/reply bytes, the fd budget.
#include <gtest/gtest.h>

#include <string>

#include "iomux/loadgen/bench.hpp"

namespace {

using iomux::ProtocolMode;
using namespace iomux::loadgen;

std::string error_of(const BenchConfig& c) {
  return validate(c).value_or("");
}

TEST(LoadgenConfig, DefaultsAreValid) {
  BenchConfig c;
  EXPECT_FALSE(validate(c).has_value()) << error_of(c);
  EXPECT_EQ(c.target, "127.0.0.1:7890");
  EXPECT_EQ(c.connections, 10u);
  EXPECT_EQ(c.size, 64u);
  EXPECT_EQ(c.duration_s, 5.0);
  EXPECT_EQ(c.warmup_s, 1.0);
  EXPECT_EQ(c.timeout_s, 5.0);
  EXPECT_EQ(c.server_cpu, 0);
  EXPECT_EQ(c.load_cpu, 1);
}

TEST(LoadgenConfig, PipelineNeedsLineOrEcho) {
  BenchConfig c;
  c.pipeline = 4;
  EXPECT_NE(error_of(c).find("--pipeline > 1 needs --protocol line or echo"), std::string::npos) << error_of(c);
  c.protocol = ProtocolMode::line;
  EXPECT_FALSE(validate(c).has_value());
  c.protocol = ProtocolMode::echo;
  EXPECT_FALSE(validate(c).has_value());
  c.churn = true;
  EXPECT_NE(error_of(c).find("--churn"), std::string::npos);
}

TEST(LoadgenConfig, RejectsBadValues) {
  auto bad = [](auto mutate, const char* needle) {
    BenchConfig c;
    mutate(c);
    const std::string e = error_of(c);
    EXPECT_NE(e.find(needle), std::string::npos) << "error was: '" << e << "', wanted '" << needle << "'";
  };
  bad([](BenchConfig& c) { c.connections = 0; }, "--connections");
  bad([](BenchConfig& c) { c.size = 0; }, "--size");
  bad(
      [](BenchConfig& c) {
        c.size = 1;
        c.protocol = ProtocolMode::line;
      },
      "at least 2");
  bad(
      [](BenchConfig& c) {
        c.size = 70000;
        c.protocol = ProtocolMode::line;
      },
      "too long for line mode");
  bad([](BenchConfig& c) { c.duration_s = 0; }, "--duration");
  bad([](BenchConfig& c) { c.duration_s = -1; }, "--duration");
  bad([](BenchConfig& c) { c.warmup_s = -0.5; }, "--warmup");
  bad([](BenchConfig& c) { c.timeout_s = 0; }, "--timeout");
  bad([](BenchConfig& c) { c.rate = -3; }, "--rate");
  bad([](BenchConfig& c) { c.threads = 0; }, "--threads");
  bad([](BenchConfig& c) { c.threads = 11; }, "more than --connections");
  bad([](BenchConfig& c) { c.target = "localhost"; }, "bad target 'localhost'");
  bad([](BenchConfig& c) { c.target = "127.0.0.1:99999"; }, "bad target");
  bad(
      [](BenchConfig& c) {
        c.spawn_command = "x";
        c.model = "epoll";
      },
      "exclude each other");
  bad([](BenchConfig& c) { c.server_args = {"--threads", "2"}; }, "--server-arg needs --model");
  bad([](BenchConfig& c) { c.reply = ""; }, "--reply");
  bad(
      [](BenchConfig& c) {
        c.protocol = ProtocolMode::echo;
        c.size = 16u << 20;
        c.pipeline = 64;
      },
      "too large");
}

TEST(LoadgenConfig, RequestsModeNeedsNoDuration) {
  BenchConfig c;
  c.duration_s = 0;
  c.requests = 1000;
  EXPECT_FALSE(validate(c).has_value()) << error_of(c);
}

TEST(LoadgenConfig, SpawningIgnoresTheTarget) {
  BenchConfig c;
  c.model = "epoll";
  c.target = "not a target";
  EXPECT_FALSE(validate(c).has_value()) << error_of(c);
  c.server_args = {"--threads", "4"};
  EXPECT_FALSE(validate(c).has_value()) << error_of(c);
  EXPECT_TRUE(c.spawns());
}

TEST(LoadgenConfig, FdBudget) {
  BenchConfig c;
  c.connections = 15000;
  c.idle = 0;
  EXPECT_FALSE(check_fd_budget(c, 20000).has_value());
  c.idle = 10000;
  const auto why = check_fd_budget(c, 20000);
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("--connections 15000 + --idle 10000"), std::string::npos) << *why;
  EXPECT_NE(why->find("RLIMIT_NOFILE allows 20000"), std::string::npos) << *why;
  EXPECT_NE(why->find("at most 19935"), std::string::npos) << *why;
}

TEST(LoadgenConfig, RequestAndReplyBytes) {
  BenchConfig c;
  c.size = 30;
  const std::string ack = make_request(c);
  EXPECT_EQ(ack.size(), 30u);
  EXPECT_EQ(ack.find('\n'), std::string::npos);
  EXPECT_EQ(ack.substr(0, 3), "abc");
  EXPECT_EQ(expected_reply(c), "----ok----Request accepted");

  c.protocol = ProtocolMode::line;
  const std::string line = make_request(c);
  EXPECT_EQ(line.size(), 30u);
  EXPECT_EQ(line.find('\n'), 29u);
  EXPECT_EQ(expected_reply(c), "----ok----Request accepted\r\n");

  c.protocol = ProtocolMode::echo;
  EXPECT_EQ(expected_reply(c), make_request(c));

  c.protocol = ProtocolMode::ack;
  c.reply = "OK";
  EXPECT_EQ(expected_reply(c), "OK");
}

TEST(LoadgenConfig, ExitCode) {
  BenchResult r;
  EXPECT_EQ(r.exit_code(), 1);  // nothing completed
  r.requests = 10;
  EXPECT_EQ(r.exit_code(), 0);
  r.errors = 1;
  EXPECT_EQ(r.exit_code(), 1);
}

}  // namespace
