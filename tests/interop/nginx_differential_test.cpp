// iomux's HTTP framing against nginx's, request by request (issue 16: "is there any byte
// sequence iomux frames differently from nginx?"). A corpus of hostile requests goes to an
// nginx this test starts (private config and prefix in a temporary directory, one process,
// `return 200`, on a free 127.0.0.1 port) and to `iomux serve --protocol http` (build/iomux,
// port 0). For each, the responses must agree in number and status class, or iomux must be the
// stricter: an error where nginx answers, fewer responses after an error. Never more.
//
// The test prints its table (Markdown); docs/protocols.md carries it:
//   IOMUX_NGINX_TABLE=/tmp/nginx-table.md build/tests/nginx_differential_tests
// writes it to a file too. nginx comes from scripts/install-deps.sh; without it, a skip.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/socket.hpp"
#include "interop/client_tools.hpp"
#include "iomux/log.hpp"
#include "support/http_shapes.hpp"
#include "support/subprocess.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

const std::string kCli = IOMUX_CLI_PATH;

std::string nginx_binary() {
  for (const char* path : {"/usr/sbin/nginx", "/usr/local/sbin/nginx"})
    if (::access(path, X_OK) == 0) return path;
  return on_path("nginx") ? "nginx" : "";
}

// nginx with its own prefix in a temporary directory, in the foreground, one process (no
// master: nothing survives it when the test kills it).
class Nginx {
 public:
  Nginx() {
    char dir_template[] = "/tmp/iomux-nginx-XXXXXX";
    if (!::mkdtemp(dir_template)) return;
    dir_ = dir_template;
    // A port taken between unused_port() and nginx's bind: another try with another port.
    for (int attempt = 0; attempt < 5 && port_ == 0; ++attempt) start(unused_port());
  }
  ~Nginx() {
    process_.reset();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  int port() const { return port_; }
  std::string error_log() const {
    std::ifstream in(dir_ + "/error.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  void start(int port) {
    if (port == 0) return;
    std::ofstream conf(dir_ + "/nginx.conf");
    conf << "worker_processes 1;\n"
            "daemon off;\n"
            "master_process off;\n"
            "pid "
         << dir_ << "/nginx.pid;\n"
         << "error_log " << dir_ << "/error.log info;\n"
         << "events { worker_connections 64; }\n"
            "http {\n"
            "  access_log off;\n"
            "  client_body_temp_path "
         << dir_ << "/body;\n"
         << "  proxy_temp_path " << dir_ << "/proxy;\n"
         << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n"
         << "  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
         << "  scgi_temp_path " << dir_ << "/scgi;\n"
         << "  server {\n"
            "    listen 127.0.0.1:"
         << port << ";\n"
         << "    location / { return 200 \"ok\\n\"; }\n"
            "  }\n"
            "}\n";
    conf.close();
    process_ = std::make_unique<Subprocess>(
        std::vector<std::string>{nginx_binary(), "-p", dir_, "-c", dir_ + "/nginx.conf", "-e", dir_ + "/error.log"});
    if (!process_->started()) return;
    // Up when it answers as nginx on the port; failed when it logs an emergency (the port was
    // taken: it exits).
    const Endpoint endpoint = resolve_one("127.0.0.1", static_cast<std::uint16_t>(port));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline && error_log().find("[emerg]") == std::string::npos) {
      if (UniqueFd fd = connect_to(endpoint, std::chrono::seconds(2))) {
        send_text(fd.get(), "GET / HTTP/1.0\r\n\r\n");
        if (recv_exact(fd.get(), 4096).find("Server: nginx") != std::string::npos) {
          port_ = port;
          return;
        }
        break;  // another server took the port
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    process_.reset();
  }

  std::string dir_;
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

// `iomux serve --protocol http` on 127.0.0.1:0.
struct IomuxServe {
  IomuxServe() {
    proc = std::make_unique<Subprocess>(std::vector<std::string>{kCli, "serve", "--protocol", "http", "--model",
                                                                 "epoll", "--host", "127.0.0.1", "--port", "0", "-q"});
    auto m = proc->wait_for_output(std::regex(R"(listening on (\S+):(\d+))"), std::chrono::seconds(10));
    if (m) port = std::stoi((*m)[2]);
  }
  std::unique_ptr<Subprocess> proc;
  int port = 0;
};

// What a server answered: the status of each final response (100 Continue left out), 9 for an
// HTTP/0.9 answer (bytes that are not a status line: nginx answers "GET /" so).
std::vector<int> exchange(int port, const std::string& request) {
  UniqueFd fd = connect_to(resolve_one("127.0.0.1", static_cast<std::uint16_t>(port)), std::chrono::seconds(3));
  if (!fd) return {-1};
  send_text(fd.get(), request);
  ::shutdown(fd.get(), SHUT_WR);  // both servers then answer what they have and close
  std::string in;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    in.append(buf, static_cast<std::size_t>(got));
  }
  std::vector<int> statuses;
  std::string_view rest = in;
  while (!rest.empty()) {
    if (rest.substr(0, 7) != "HTTP/1.") {
      statuses.push_back(9);
      break;
    }
    const std::size_t head_end = rest.find("\r\n\r\n");
    if (head_end == std::string_view::npos || rest.size() < 12) break;
    const int status = std::atoi(std::string(rest.substr(9, 3)).c_str());
    std::size_t length = 0;
    static const std::regex kLength(R"(\r\n[Cc]ontent-[Ll]ength: *(\d+))");
    const std::string head(rest.substr(0, head_end + 2));
    std::smatch m;
    if (std::regex_search(head, m, kLength)) length = std::stoul(m[1]);
    rest.remove_prefix(std::min(rest.size(), head_end + 4 + (status == 100 ? 0 : length)));
    if (status != 100) statuses.push_back(status);
  }
  return statuses;
}

std::string join(const std::vector<int>& statuses) {
  if (statuses.empty()) return "none";
  std::string text;
  for (int s : statuses) text += (text.empty() ? "" : " ") + (s == 9 ? std::string("0.9 body") : std::to_string(s));
  return text;
}

bool is_error(int status) {
  return status >= 400;
}

enum class Verdict { same, same_refusal, stricter, laxer };

// Agree, or iomux stricter: an error where nginx answers, fewer responses after an error.
Verdict compare(const std::vector<int>& nginx, const std::vector<int>& iomux) {
  bool stricter = false, other_error = false;
  const std::size_t common = std::min(nginx.size(), iomux.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (nginx[i] / 100 == iomux[i] / 100) continue;
    if (is_error(iomux[i]) && is_error(nginx[i])) {
      other_error = true;  // both refuse, with another class (400 against 501)
    } else if (is_error(iomux[i]) && !is_error(nginx[i])) {
      stricter = true;
    } else {
      return Verdict::laxer;
    }
    if (i + 1 < iomux.size()) return Verdict::laxer;  // iomux went on after a disagreement
  }
  if (iomux.size() > nginx.size()) return Verdict::laxer;
  if (iomux.size() < nginx.size()) {
    if (iomux.empty() || !is_error(iomux.back())) return Verdict::laxer;
    stricter = true;
  }
  if (stricter) return Verdict::stricter;
  return other_error ? Verdict::same_refusal : Verdict::same;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::same:
      return "same";
    case Verdict::same_refusal:
      return "both refuse";
    case Verdict::stricter:
      return "iomux stricter";
    case Verdict::laxer:
      return "**iomux laxer**";
  }
  return "";
}

struct Case {
  std::string name;
  std::string bytes;
};

// Everyday requests, then every shape of tests/support/http_shapes.hpp with a request hidden
// behind it, then a few more.
std::vector<Case> corpus() {
  const std::string& hidden = kHiddenRequest;
  std::vector<Case> cases = {
      {"GET", "GET / HTTP/1.1\r\nHost: t\r\n\r\n"},
      {"three pipelined GETs", hidden + hidden + hidden},
      {"POST with Content-Length, then GET",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + hidden},
      {"chunked POST, then GET", chunked("5\r\nhello\r\n0\r\n\r\n") + hidden},
      {"Expect: 100-continue",
       "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" + hidden},
      {"empty lines before a request", "\r\n\r\n" + hidden},
      {"HTTP/1.0, then GET", "GET / HTTP/1.0\r\n\r\n" + hidden},
      {"HTTP/1.0 keep-alive, then GET", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + hidden},
      {"HTTP/1.0 Connection: close, keep-alive", "GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n" + hidden},
      {"HTTP/1.0 Connection: keep-alive, close", "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n" + hidden},
      {"HTTP/1.1 Connection: close, then GET", "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + hidden},
      {"HTTP/0.9 request line", "GET /\r\n"},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
      {"unknown method", "BREW / HTTP/1.1\r\nHost: t\r\n\r\n" + hidden},
      {"lower-case method", "get / HTTP/1.1\r\nHost: t\r\n\r\n" + hidden},
      {"target of 9 KiB", "GET /" + std::string(9 * 1024, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n"},
      {"field of 20 KiB", "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(20 * 1024, 'x') + "\r\n\r\n"},
      {"Content-Length and chunked, body smuggling a request",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
      {"chunked then Content-Length: 0",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: "
       "0\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
           hidden},
      {"two different Content-Lengths",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhello" + hidden},
      {"Content-Length with trailing space",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5 \r\n\r\nhello" + hidden},
      {"absolute-form with another Host", "GET http://x/plaintext HTTP/1.1\r\nHost: y\r\n\r\n" + hidden},
  };
  for (const Shape& shape : refused_shapes()) cases.push_back({shape.name, shape.request + hidden});
  for (const Shape& shape : accepted_shapes()) cases.push_back({"accepted: " + shape.name, shape.request + hidden});
  return cases;
}

TEST(NginxDifferential, IomuxFramesEveryRequestLikeNginxOrMoreStrictly) {
  const std::string nginx_path = nginx_binary();
  if (nginx_path.empty())
    GTEST_SKIP() << "nginx is not installed: install the Debian package nginx (scripts/install-deps.sh does)";
  Nginx nginx;
  ASSERT_GT(nginx.port(), 0) << "nginx did not start: " << nginx.error_log();
  IomuxServe iomux;
  ASSERT_GT(iomux.port, 0) << iomux.proc->err();

  std::ostringstream table;
  table << "| # | request | nginx | iomux | verdict |\n|---:|---|---|---|---|\n";
  int index = 0;
  for (const Case& c : corpus()) {
    const std::vector<int> from_nginx = exchange(nginx.port(), c.bytes);
    const std::vector<int> from_iomux = exchange(iomux.port, c.bytes);
    const Verdict verdict = compare(from_nginx, from_iomux);
    table << "| " << ++index << " | " << c.name << " | " << join(from_nginx) << " | " << join(from_iomux) << " | "
          << to_string(verdict) << " |\n";
    EXPECT_NE(verdict, Verdict::laxer) << c.name << ": nginx " << join(from_nginx) << ", iomux " << join(from_iomux)
                                       << "\n  request: " << escape_bytes(c.bytes, 200);
  }
  std::cout << table.str();
  if (const char* path = std::getenv("IOMUX_NGINX_TABLE")) std::ofstream(path) << table.str();
}

}  // namespace
}  // namespace iomux::test
