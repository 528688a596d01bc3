// asio_server.cpp - standalone asio peer (no Boost).
//
// The classic asio server shape: one io_context run by one thread, an
// acceptor that keeps an async_accept outstanding, and one session object per
// connection, kept alive by the shared_ptr captured in its pending handler.
// A session loops async_read_some -> async_write -> async_read_some with a
// fixed per-connection read buffer; it never reads while a write is in
// flight, which is also its backpressure.
//
// Usage: peer_asio --port P [--host H] [--protocol ack|echo] [--reply TEXT]

#include <asio.hpp>

#include <sys/resource.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace {

using asio::ip::tcp;

// 16 KiB, the same amount libevent's bufferevents read per call.  A larger
// buffer would cost 15,000 x its size in memory at full concurrency.
constexpr std::size_t kReadBufferSize = 16 * 1024;
constexpr int kListenBacklog = 4096;

// ------------------------------------------------------------------ options

struct Options {
  std::string host = "127.0.0.1";
  int port = -1;
  bool echo = false;
  std::string reply = "----ok----Request accepted";
};

void usage(std::FILE* out, const char* prog) {
  std::fprintf(out,
               "usage: %s --port P [--host H] [--protocol ack|echo] [--reply TEXT]\n"
               "  --port P          TCP port to listen on (0 = pick a free one)\n"
               "  --host H          address to bind (default 127.0.0.1)\n"
               "  --protocol ack    answer every chunk read with the reply text (default)\n"
               "  --protocol echo   send received bytes back unchanged\n"
               "  --reply TEXT      reply text for ack (default ----ok----Request accepted)\n",
               prog);
}

[[noreturn]] void bad_usage(const char* prog, const char* what, std::string_view arg) {
  std::fprintf(stderr, "%s: %s '%.*s'\n", prog, what, static_cast<int>(arg.size()), arg.data());
  usage(stderr, prog);
  std::exit(2);
}

// Accepts "--flag value" and "--flag=value".  Any problem: usage, exit 2.
Options parse_options(int argc, char** argv) {
  Options o;
  const char* prog = argv[0];
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout, prog);
      std::exit(0);
    }
    if (arg.substr(0, 2) != "--") bad_usage(prog, "unexpected argument", arg);
    std::string_view name = arg;
    std::string_view value;
    bool have_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      have_value = true;
    }
    if (name != "--port" && name != "--host" && name != "--protocol" && name != "--reply")
      bad_usage(prog, "unknown option", arg);
    if (!have_value) {
      if (i + 1 >= argc) bad_usage(prog, "missing value for", arg);
      value = argv[++i];
    }
    if (name == "--port") {
      std::string s(value);
      char* end = nullptr;
      errno = 0;
      long p = std::strtol(s.c_str(), &end, 10);
      if (errno != 0 || s.empty() || *end != '\0' || p < 0 || p > 65535) bad_usage(prog, "bad port", value);
      o.port = static_cast<int>(p);
    } else if (name == "--host") {
      if (value.empty()) bad_usage(prog, "bad host", value);
      o.host = value;
    } else if (name == "--protocol") {
      if (value == "ack")
        o.echo = false;
      else if (value == "echo")
        o.echo = true;
      else
        bad_usage(prog, "bad protocol", value);
    } else {
      if (value.empty()) bad_usage(prog, "reply must not be empty:", value);
      o.reply = value;
    }
  }
  if (o.port < 0) bad_usage(prog, "missing required option", "--port");
  return o;
}

void raise_nofile_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) std::perror("setrlimit(RLIMIT_NOFILE)");
  }
}

// ------------------------------------------------------------------ server

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Options& opt) : socket_(std::move(socket)), echo_(opt.echo), reply_(opt.reply) {}

  void start() { do_read(); }

 private:
  void do_read() {
    socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
      if (!ec) self->do_write(n);
      // On EOF or error the last shared_ptr goes away
      // here and the socket is closed.
    });
  }

  void do_write(std::size_t n) {
    asio::const_buffer out = echo_ ? asio::buffer(buffer_.data(), n) : asio::buffer(reply_.data(), reply_.size());
    asio::async_write(socket_, out, [self = shared_from_this()](std::error_code ec, std::size_t) {
      if (!ec) self->do_read();
    });
  }

  tcp::socket socket_;
  bool echo_;
  std::string_view reply_;  // points into the Options owned by main()
  std::array<char, kReadBufferSize> buffer_;
};

class Server {
 public:
  Server(asio::io_context& io, const Options& opt) : io_(io), opt_(opt), acceptor_(io), retry_timer_(io) {}

  bool listen(std::error_code& ec) {
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(opt_.host, std::to_string(opt_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) return false;
    for (const auto& entry : results) {
      const tcp::endpoint ep = entry.endpoint();
      acceptor_.open(ep.protocol(), ec);
      if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor_.bind(ep, ec);
      if (!ec) acceptor_.listen(kListenBacklog, ec);
      if (!ec) return true;
      std::error_code ignored;
      acceptor_.close(ignored);
    }
    if (!ec) ec = asio::error::host_not_found;
    return false;
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void start_accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (!ec) {
        std::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), opt_)->start();
        start_accept();
      } else if (ec == asio::error::operation_aborted) {
        return;  // acceptor closed
      } else if (ec == asio::error::no_descriptors || ec == asio::error::no_memory ||
                 ec == asio::error::no_buffer_space) {
        // Out of descriptors: back off briefly instead of spinning.
        retry_timer_.expires_after(std::chrono::milliseconds(100));
        retry_timer_.async_wait([this](std::error_code e) {
          if (!e) start_accept();
        });
      } else {
        start_accept();  // e.g. a connection reset before accept
      }
    });
  }

 private:
  asio::io_context& io_;
  const Options& opt_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_options(argc, argv);

  raise_nofile_limit();
  std::signal(SIGPIPE, SIG_IGN);

  try {
    asio::io_context io(1);  // one thread runs it

    Server server(io, opt);
    std::error_code ec;
    if (!server.listen(ec)) {
      std::fprintf(stderr, "cannot listen on %s:%d: %s\n", opt.host.c_str(), opt.port, ec.message().c_str());
      return 1;
    }

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](std::error_code, int) { io.stop(); });

    const tcp::endpoint ep = server.local_endpoint();
    const std::string addr = ep.address().to_string();
    if (ep.address().is_v6())
      std::printf("listening on [%s]:%u\n", addr.c_str(), unsigned{ep.port()});
    else
      std::printf("listening on %s:%u\n", addr.c_str(), unsigned{ep.port()});
    std::fflush(stdout);

    server.start_accept();
    io.run();
    // Destroying the io_context destroys the pending handlers, which
    // releases the sessions and closes their sockets.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fatal: %s\n", e.what());
    return 1;
  }
  return 0;
}
