// `iomux client`: the tutorial's client. Whatever is not given on the command line is asked
// for (with the tutorial's prompts when stdin is a terminal, read line by line otherwise).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "commands.hpp"
#include "core/socket.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/log.hpp"

namespace iomux::cli {
namespace {

struct ClientArgs {
  std::string host;
  std::string port;
  std::string message;
  bool line = false;
  double timeout_s = 5;
};

std::optional<std::string> ask(const char* prompt) {
  if (isatty(STDIN_FILENO)) {
    std::cout << prompt << std::flush;
  }
  std::string answer;
  if (!std::getline(std::cin, answer)) return std::nullopt;
  return answer;
}

int fail(const std::string& message) {
  fmt::print(stderr, "iomux client: {}\n", message);
  return 1;
}

int run_client(ClientArgs a) {
  if (a.host.empty()) {
    auto v = ask("server ip: ");
    if (!v) return fail("no host given");
    a.host = *v;
  }
  if (a.port.empty()) {
    auto v = ask("server port: ");
    if (!v) return fail("no port given");
    a.port = *v;
  }
  auto port = parse_port(a.port);
  if (!port) return fail("port must be a number from 0 to 65535, got '" + escape_bytes(a.port) + "'");
  if (a.message.empty()) {
    auto v = ask("message to send: ");
    if (!v) return fail("no message given");
    a.message = *v;
  }
  if (a.message.empty() && !a.line) return fail("the message is empty (an empty send is no request)");
  if (a.line) a.message += '\n';

  const auto timeout = std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000));
  Endpoint ep;
  try {
    ep = resolve_one(a.host, *port);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  std::error_code ec;
  detail::UniqueFd fd = detail::connect_tcp(ep, timeout, ec);
  if (!fd) return fail("cannot connect to " + ep.to_string() + ": " + ec.message());
  if ((ec = detail::send_all(fd.get(), a.message.data(), a.message.size())))
    return fail("send failed: " + ec.message());

  // ack mode: print what the first read brings (the tutorial reads once); --line: read until
  // the reply's line end.
  std::string reply;
  char buf[64 * 1024];
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd.get(), POLLIN, 0};
    int rc = ::poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
    if (rc == 0) return fail(reply.empty() ? "no reply within the timeout" : "reply incomplete within the timeout");
    if (rc < 0 && errno == EINTR) continue;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::string("receive failed: ") + std::strerror(errno));
    if (n == 0) {
      if (reply.empty()) return fail("the server closed the connection without replying");
      break;
    }
    reply.append(buf, static_cast<std::size_t>(n));
    if (!a.line || reply.find('\n') != std::string::npos) break;
  }
  if (a.line) {
    while (!reply.empty() && (reply.back() == '\n' || reply.back() == '\r')) reply.pop_back();
  }
  // The reply is the server's bytes: print it escaped, so it cannot drive the terminal.
  fmt::print("received: {}\n", escape_bytes(reply, 64 * 1024));
  return 0;
}

}  // namespace

void register_client(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("client", "Send one message and print the reply (prompts for what is missing)");
  cmd->add_option("host", args->host, "Server address or host name");
  cmd->add_option("port", args->port, "Server port");
  cmd->add_option("message", args->message, "The message to send");
  cmd->add_flag("--line", args->line, "End the message with \\n and wait for a whole reply line");
  cmd->add_option("--timeout", args->timeout_s, "Seconds to wait for connect and reply")
      ->check(kPositive)
      ->capture_default_str();
  cmd->callback([args, &exit_code] { exit_code = run_client(*args); });
}

}  // namespace iomux::cli
