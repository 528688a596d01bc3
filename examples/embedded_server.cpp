// Embedding libiomux: run a server of any model inside your program, talk to it, stop it.
//
//   embedded_server [MODEL]     (default: epoll)
//
// It starts a line-protocol server on 127.0.0.1 with an ephemeral port, sends one request as a
// client, prints the reply and the server's counters, and stops the server gracefully.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "iomux/protocols.hpp"
#include "iomux/server.hpp"

namespace {

// A plain blocking client socket connected to 127.0.0.1:port, with a receive timeout.
int connect_client(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval five_seconds{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five_seconds, sizeof five_seconds);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  iomux::ServerOptions options;
  options.model = argc > 1 ? argv[1] : "epoll";
  options.listeners = {iomux::Endpoint::loopback_v4(0)};
  options.logger = std::make_shared<iomux::Logger>(iomux::LogLevel::warn);

  std::unique_ptr<iomux::Server> server;
  try {
    server = iomux::make_server(options, iomux::line_protocol());
  } catch (const iomux::ServerError& e) {
    std::fprintf(stderr, "cannot start: %s\n", e.what());
    return 1;
  }
  std::jthread loop([&] { server->run(); });

  const int client = connect_client(server->local_endpoint().port());
  if (client < 0) {
    std::perror("connect");
    server->stop(iomux::StopMode::immediate);
    return 1;
  }
  const std::string request = "hello from an embedded client\n";
  [[maybe_unused]] ssize_t sent = ::send(client, request.data(), request.size(), MSG_NOSIGNAL);
  char reply[256];
  const ssize_t n = ::recv(client, reply, sizeof reply, 0);
  std::printf("model %s on %s replied: %.*s", std::string(server->model()).c_str(),
              server->local_endpoint().to_string().c_str(), n > 0 ? static_cast<int>(n) : 0, reply);
  ::close(client);
  server->stop(iomux::StopMode::graceful);
  loop.join();
  std::printf("%s\n", server->stats().summary().c_str());
  return n > 0 ? 0 : 1;
}
