#include "core/listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <string>
#include <utility>

#include "core/socket.hpp"

namespace iomux::detail {
namespace {

enum class Occupant { none, stale_socket, live_socket, not_a_socket, unknown };

// What is at a Unix socket path: a connect tells a live listener from the file a dead one
// left (ECONNREFUSED). Non-blocking, so a live server with a full backlog (EAGAIN) cannot
// make us wait; it counts as live.
Occupant occupant_of(const Endpoint& where, std::error_code& ec) {
  struct stat st {};
  if (::lstat(where.unix_path().c_str(), &st) != 0) {
    if (errno == ENOENT) return Occupant::none;
    ec = last_error();
    return Occupant::unknown;
  }
  if (!S_ISSOCK(st.st_mode)) return Occupant::not_a_socket;
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) {
    ec = last_error();
    return Occupant::unknown;
  }
  if (::connect(probe.get(), where.sockaddr_ptr(), where.sockaddr_len()) == 0) return Occupant::live_socket;
  switch (errno) {
    case ECONNREFUSED:
      return Occupant::stale_socket;
    case EAGAIN:
    case EINPROGRESS:
      return Occupant::live_socket;
    default:
      ec = last_error();
      return Occupant::unknown;
  }
}

UniqueFd listen_unix(const Endpoint& where, const ListenOptions& opts, unsigned unix_mode, std::error_code& ec,
                     std::string& why) {
  const std::string path = where.unix_path();
  if (!path.empty()) {
    switch (occupant_of(where, ec)) {
      case Occupant::none:
        break;
      case Occupant::stale_socket:
        // The file a server that did not stop cleanly left behind (nobody accepts on it).
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          ec = last_error();
          why = "cannot remove the stale socket file: " + ec.message();
          return {};
        }
        break;
      case Occupant::live_socket:
        ec = std::make_error_code(std::errc::address_in_use);
        why = "a server is listening on it (a live socket is never replaced)";
        return {};
      case Occupant::not_a_socket:
        ec = std::make_error_code(std::errc::file_exists);
        why = "the path exists and is not a socket (it is left alone)";
        return {};
      case Occupant::unknown:
        why = "cannot tell whether a server listens there: " + ec.message();
        return {};
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (opts.non_blocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd || ::bind(fd.get(), where.sockaddr_ptr(), where.sockaddr_len()) != 0) {
    ec = last_error();
    return {};
  }
  // After bind, as Redis's unixsocketperm: the file is made with the umask's mode first.
  if (!path.empty() && unix_mode != 0 && ::chmod(path.c_str(), unix_mode) != 0) {
    ec = last_error();
    why = "cannot chmod the socket file: " + ec.message();
    ::unlink(path.c_str());
    return {};
  }
  if (::listen(fd.get(), opts.backlog) != 0) {
    ec = last_error();
    if (!path.empty()) ::unlink(path.c_str());
    return {};
  }
  ec.clear();
  return fd;
}

}  // namespace

ListenSocket::ListenSocket(UniqueFd fd, const Endpoint& local) noexcept : fd_(std::move(fd)), local_(local) {}

ListenSocket::~ListenSocket() {
  if (registry_) {
    // Out of the registry before the fd closes (fd_ is closed after this body), so an upgrade
    // never duplicates a number that was closed and reused.
    std::lock_guard lock(registry_->mutex);
    std::erase(registry_->live, this);
    // The fd is closed under the mutex too: the number is free for reuse only once it is out.
    fd_.reset();
    if (registry_->handed_over.load(std::memory_order_acquire)) return;
  }
  if (socket_file_.empty()) return;
  struct stat st {};
  if (::lstat(socket_file_.c_str(), &st) == 0 && st.st_dev == file_device_ && st.st_ino == file_inode_)
    ::unlink(socket_file_.c_str());
}

void ListenSocket::enlist(std::shared_ptr<ListenerRegistry> registry, std::size_t endpoint) {
  endpoint_ = endpoint;
  std::lock_guard lock(registry->mutex);
  registry->live.push_back(this);
  registry_ = std::move(registry);
}

SharedListener listen_on(const Endpoint& where, const ListenOptions& opts, unsigned unix_mode, std::error_code& ec,
                         std::string& why) {
  why.clear();
  if (!where.is_unix()) {
    UniqueFd fd = listen_tcp(where, opts, ec);
    if (!fd) return nullptr;
    const Endpoint local = local_endpoint(fd.get());
    return std::make_shared<ListenSocket>(std::move(fd), local);
  }
  UniqueFd fd = listen_unix(where, opts, unix_mode, ec, why);
  if (!fd) return nullptr;
  auto listener = std::make_shared<ListenSocket>(std::move(fd), where);
  const std::string path = where.unix_path();
  struct stat st {};
  if (!path.empty() && ::lstat(path.c_str(), &st) == 0) {
    listener->socket_file_ = path;
    listener->file_device_ = st.st_dev;
    listener->file_inode_ = st.st_ino;
  }
  return listener;
}

SharedListener adopt_listener(UniqueFd fd, std::string& why) {
  why.clear();
  const auto fail = [&why](std::string reason) {
    why = std::move(reason);
    return nullptr;
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail("cannot fstat it: " + last_error().message());
  if (!S_ISSOCK(st.st_mode)) return fail("it is not a socket");
  int type = 0;
  int accepting = 0;
  int domain = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return fail("cannot read its SO_TYPE: " + last_error().message());
  if (type != SOCK_STREAM) return fail("it is not a stream socket (SO_TYPE " + std::to_string(type) + ")");
  len = sizeof domain;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
    return fail("cannot read its SO_DOMAIN: " + last_error().message());
  if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)
    return fail("it is neither TCP nor a Unix socket (address family " + std::to_string(domain) + ")");
  len = sizeof accepting;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0)
    return fail("cannot read its SO_ACCEPTCONN: " + last_error().message());
  if (!accepting) return fail("it is not listening (no listen() was called on it)");
  const int flags = ::fcntl(fd.get(), F_GETFD);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFD, flags | FD_CLOEXEC) != 0)
    return fail("cannot make it close-on-exec: " + last_error().message());
  const Endpoint local = local_endpoint(fd.get());
  const int number = fd.get();
  auto listener = std::make_shared<ListenSocket>(std::move(fd), local);
  listener->inherited_fd_ = number;
  return listener;
}

}  // namespace iomux::detail
