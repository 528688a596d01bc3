// The `iomux` executable end to end: serve, client, models, and the tutorial's own client
// against `iomux serve` for every model.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "iomux/models.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

const std::string kCli = IOMUX_CLI_PATH;
const std::regex kListening(R"(listening on (\S+):(\d+))");

std::string seed_dir() {
  if (const char* env = std::getenv("IOMUX_SEED_DIR")) return env;
  return IOMUX_SEED_DIR;
}

// `iomux serve` on 127.0.0.1, port 0; the port read from its "listening on" line.
struct ServeProcess {
  explicit ServeProcess(const std::string& model, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{kCli, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc = std::make_unique<Subprocess>(argv);
    auto m = proc->wait_for_output(kListening, std::chrono::seconds(10));
    if (m) port = std::stoi((*m)[2]);
  }
  std::unique_ptr<Subprocess> proc;
  int port = 0;
};

class CliEveryModel : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    Availability a = probe_model(GetParam());
    if (!a.available) GTEST_SKIP() << GetParam() << " unavailable here: " << a.reason;
  }
};

TEST_P(CliEveryModel, ClientGetsTheReplyAndServerStopsCleanlyOnSigterm) {
  ServeProcess server(GetParam());
  ASSERT_GT(server.port, 0) << server.proc->err();
  Subprocess client({kCli, "client", "127.0.0.1", std::to_string(server.port), "hello"});
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(10)), 0) << client.err();
  EXPECT_NE(client.out().find("----ok----Request accepted"), std::string::npos) << client.out();
  server.proc->signal(SIGTERM);
  EXPECT_EQ(server.proc->wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(server.proc->err().find("stopped: connections 0 open (accepted 1"), std::string::npos)
      << server.proc->err();
}

TEST_P(CliEveryModel, TutorialClientGetsTheReply) {
  std::string client_py = seed_dir() + "/client.py";
  if (!std::filesystem::exists(client_py)) GTEST_SKIP() << "no tutorial programs at " << seed_dir();
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  ServeProcess server(GetParam());
  ASSERT_GT(server.port, 0) << server.proc->err();
  Subprocess client({"python3", client_py});
  client.write_stdin("127.0.0.1\n" + std::to_string(server.port) + "\n你好, iomux\n");
  client.close_stdin();
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(10)), 0) << client.err();
  EXPECT_NE(client.out().find("----ok----Request accepted"), std::string::npos) << client.out();
}

INSTANTIATE_TEST_SUITE_P(Models, CliEveryModel, ::testing::ValuesIn(all_model_names()), ModelTestName());

// Only --listen: the default 0.0.0.0:7890 is not opened (--host/--port would add it).
TEST(Cli, ListenIsRepeatableTcpAndUnixAndTheSocketFileGoesAtStop) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("cli.sock");
  Subprocess server({kCli, "serve", "--listen", "127.0.0.1:0", "--listen", "unix:" + path, "--protocol", "line",
                     "--unix-mode", "600"});
  auto m = server.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+), unix:(\S+) \(model epoll)"),
                                  std::chrono::seconds(10));
  ASSERT_TRUE(m) << server.err();
  EXPECT_EQ((*m)[2], path);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (const Endpoint& where :
       {resolve_one("127.0.0.1", static_cast<std::uint16_t>(std::stoi((*m)[1]))), resolve_one("unix:" + path)}) {
    UniqueFd c = connect_to(where);
    ASSERT_TRUE(c) << where.to_string();
    ASSERT_TRUE(send_text(c.get(), "hi\n"));
    EXPECT_EQ(recv_exact(c.get(), kLineReply.size()), kLineReply) << where.to_string();
  }
  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(std::chrono::seconds(10)), 0) << server.err();
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the socket file outlived the server";
}

TEST(Cli, ThePidFileNamesTheServerWhileItRunsAndGoesAtStop) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("iomux.pid");
  ServeProcess server("epoll", {"--pid-file", path});
  ASSERT_GT(server.port, 0) << server.proc->err();
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(path); }));
  std::ifstream in(path);
  long pid = 0;
  in >> pid;
  EXPECT_EQ(pid, server.proc->pid());
  server.proc->signal(SIGTERM);
  EXPECT_EQ(server.proc->wait_exit(std::chrono::seconds(10)), 0) << server.proc->err();
  EXPECT_FALSE(std::filesystem::exists(path)) << "the pid file outlived the server";

  // One that cannot be written is a clear error, not a server running without it.
  ServeProcess refused("epoll", {"--pid-file", dir.file("no-such-dir/iomux.pid")});
  EXPECT_EQ(refused.proc->wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(refused.proc->err().find("cannot write the pid file"), std::string::npos) << refused.proc->err();
}

TEST(Cli, ABadListenAddressIsAClearError) {
  Subprocess server({kCli, "serve", "--listen", "unix:"});
  EXPECT_EQ(server.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(server.err().find("invalid address 'unix:': empty path after unix:"), std::string::npos) << server.err();
}

TEST(Cli, VerboseLogsRequestsEscaped) {
  ServeProcess server("epoll", {"-v"});
  ASSERT_GT(server.port, 0);
  UniqueFd c = connect_to(resolve_one("127.0.0.1", static_cast<std::uint16_t>(server.port)));
  ASSERT_TRUE(send_text(c.get(), "evil\x1b[2J\r\n"));
  ASSERT_EQ(recv_exact(c.get(), 26), std::string(kDefaultReply));
  EXPECT_TRUE(
      server.proc->wait_for_output(std::regex(R"(request from .*evil\\x1b\[2J\\r\\n)"), std::chrono::seconds(5)))
      << server.proc->err();
  EXPECT_EQ(server.proc->err().find('\x1b'), std::string::npos);
}

TEST(Cli, QuietLogsNoConnectionsButStillTheSummary) {
  ServeProcess server("poll", {"-q"});
  ASSERT_GT(server.port, 0);
  Subprocess client({kCli, "client", "127.0.0.1", std::to_string(server.port), "hi"});
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(10)), 0);
  server.proc->signal(SIGINT);
  EXPECT_EQ(server.proc->wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_EQ(server.proc->err().find("connect 127.0.0.1"), std::string::npos) << server.proc->err();
  EXPECT_NE(server.proc->err().find("stopped:"), std::string::npos);
}

TEST(Cli, ClientPromptsReadFromStdinWhenArgumentsAreMissing) {
  ServeProcess server("select", {"--protocol", "line"});
  ASSERT_GT(server.port, 0);
  Subprocess client({kCli, "client", "--line"});
  client.write_stdin("127.0.0.1\n" + std::to_string(server.port) + "\nhello\n");
  client.close_stdin();
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(10)), 0) << client.err();
  EXPECT_NE(client.out().find("received: ----ok----Request accepted"), std::string::npos) << client.out();
}

TEST(Cli, ClientFailsClearlyWhenNothingListens) {
  // Bind a port and close it: almost surely nothing listens there now.
  std::error_code ec;
  UniqueFd l = listen_tcp(Endpoint::loopback_v4(0), {}, ec);
  int port = local_endpoint(l.get()).port();
  l.reset();
  Subprocess client({kCli, "client", "127.0.0.1", std::to_string(port), "x", "--timeout", "2"});
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(client.err().find("cannot connect"), std::string::npos) << client.err();
}

TEST(Cli, BadArgumentsExitNonZeroWithAReason) {
  Subprocess bad_model({kCli, "serve", "--model", "carrier-pigeon"});
  EXPECT_NE(bad_model.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(bad_model.err().find("carrier-pigeon"), std::string::npos);
  Subprocess bad_port({kCli, "client", "127.0.0.1", "99999", "x"});
  EXPECT_NE(bad_port.wait_exit(std::chrono::seconds(10)), 0);
  Subprocess bad_host({kCli, "serve", "--host", "no.such.host.invalid", "--port", "0"});
  EXPECT_EQ(bad_host.wait_exit(std::chrono::seconds(10)), 1);
  EXPECT_NE(bad_host.err().find("cannot resolve"), std::string::npos) << bad_host.err();
}

TEST(Cli, NumbersAreCheckedInWordsAndSizesTakeUnits) {
  Subprocess negative({kCli, "serve", "--port", "0", "--max-pending", "-5"});
  EXPECT_NE(negative.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(negative.err().find("--max-pending: must be greater than 0, not -5"), std::string::npos) << negative.err();
  EXPECT_LT(negative.err().size(), 200u) << "a short reason, not CLI11's range up to DBL_MAX";
  Subprocess zero_timeout({kCli, "client", "127.0.0.1", "1", "x", "--timeout", "0"});
  EXPECT_NE(zero_timeout.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(zero_timeout.err().find("--timeout: must be greater than 0"), std::string::npos) << zero_timeout.err();
  // 1K = 1024: a 1025-byte line is over the limit and closes the connection with an error.
  ServeProcess server("epoll", {"--protocol", "line", "--max-line", "1K", "--max-pending", "256K"});
  ASSERT_GT(server.port, 0) << server.proc->err();
  UniqueFd c = connect_to(Endpoint::loopback_v4(static_cast<std::uint16_t>(server.port)));
  ASSERT_TRUE(send_text(c.get(), std::string(1024, 'a') + "\n"));
  EXPECT_EQ(recv_exact(c.get(), kDefaultReply.size() + 2), std::string(kDefaultReply) + "\r\n");
  ASSERT_TRUE(send_text(c.get(), std::string(1025, 'b') + "\n"));
  EXPECT_TRUE(wait_closed(c.get()));
  server.proc->signal(SIGTERM);
  EXPECT_EQ(server.proc->wait_exit(std::chrono::seconds(10)), 0);
}

TEST(Cli, ModelsListsAllTen) {
  Subprocess models({kCli, "models"});
  EXPECT_EQ(models.wait_exit(std::chrono::seconds(10)), 0);
  for (const ModelInfo& m : all_models())
    EXPECT_NE(models.out().find(std::string(m.name) + " "), std::string::npos) << m.name;
  // The --threads column says which models take it: MODEL AVAILABLE --threads ...
  std::istringstream lines(models.out());
  int rows = 0;
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string name, available, threads;
    words >> name >> available >> threads;
    const ModelInfo* m = find_model(name);
    if (!m) continue;
    ++rows;
    EXPECT_EQ(threads, m->multi_threaded ? "yes" : "no") << line;
  }
  EXPECT_EQ(rows, static_cast<int>(all_models().size()));
}

TEST(Cli, VersionAndHelp) {
  Subprocess version({kCli, "--version"});
  EXPECT_EQ(version.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(version.out().find("iomux "), std::string::npos);
  for (const char* cmd : {"serve", "client", "models"}) {
    Subprocess help({kCli, cmd, "--help"});
    EXPECT_EQ(help.wait_exit(std::chrono::seconds(10)), 0) << cmd;
    EXPECT_NE(help.out().find("Usage"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace iomux::test
