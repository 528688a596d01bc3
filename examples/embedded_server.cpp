// Embedding libiomux: run a server of any model inside your program, talk to it, stop it.
//
//   embedded_server [MODEL]     (default: epoll)
//
// It starts the server on 127.0.0.1 with an ephemeral port, sends one request as a client,
// prints the reply and the server's counters, and stops the server gracefully.
#include <sys/socket.h>

#include <cstdio>
#include <string>
#include <thread>

#include "iomux/models.hpp"
#include "iomux/server.hpp"
#include "iomux/socket.hpp"

int main(int argc, char** argv) {
  iomux::ServerOptions options;
  options.model = argc > 1 ? argv[1] : "epoll";
  options.listen = iomux::Endpoint::loopback_v4(0);
  options.protocol.mode = iomux::ProtocolMode::line;
  options.logger = std::make_shared<iomux::Logger>(iomux::LogLevel::warn);

  std::unique_ptr<iomux::Server> server;
  try {
    server = iomux::make_server(options);
  } catch (const iomux::ServerError& e) {
    std::fprintf(stderr, "cannot start: %s\n", e.what());
    return 1;
  }
  std::jthread loop([&] { server->run(); });

  std::error_code ec;
  iomux::UniqueFd client = iomux::connect_tcp(server->local_endpoint(), std::chrono::seconds(5), ec);
  if (!client) {
    std::fprintf(stderr, "connect: %s\n", ec.message().c_str());
    server->stop(iomux::StopMode::immediate);
    return 1;
  }
  iomux::set_recv_timeout(client.get(), std::chrono::seconds(5));
  const std::string request = "hello from an embedded client\n";
  iomux::send_all(client.get(), request.data(), request.size());
  char reply[256];
  ssize_t n = ::recv(client.get(), reply, sizeof reply, 0);
  std::printf("model %s on %s replied: %.*s", std::string(server->model()).c_str(),
              server->local_endpoint().to_string().c_str(), n > 0 ? static_cast<int>(n) : 0, reply);
  client.reset();
  server->stop(iomux::StopMode::graceful);
  loop.join();
  std::printf("%s\n", server->stats().summary().c_str());
  return n > 0 ? 0 : 1;
}
