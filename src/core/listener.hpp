// A listening socket the server opened, or one it inherited (ServerOptions::inherited): its fd,
// where it listens, and, for a Unix path the server bound, the socket file it made. Event loops
// that share one (a Unix listener under --threads N: Unix sockets have no SO_REUSEPORT) hold it
// through a shared_ptr, so the last loop to stop accepting closes it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "core/fd.hpp"
#include "iomux/endpoint.hpp"

namespace iomux::detail {

struct ListenOptions;
class ListenSocket;

// Every listening socket a server holds, for an upgrade (iomux/upgrade.hpp) to duplicate while
// the server runs: a loop closes its listeners when it stops accepting, so the fds are read
// under the mutex their closing takes too. Once `handed_over` is set, another process serves
// on the same sockets: a socket file is left in place at the end (it is the successor's now).
struct ListenerRegistry {
  std::mutex mutex;
  std::vector<const ListenSocket*> live;
  std::atomic<bool> handed_over{false};
};

class ListenSocket {
 public:
  ListenSocket(UniqueFd fd, const Endpoint& local) noexcept;
  // Removes the socket file this listener made (if it still is that file: another server may
  // have replaced it since, and unless the listeners were handed over), then closes the socket.
  ~ListenSocket();
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // The real port when 0 was asked for; a Unix listener's path or abstract name.
  [[nodiscard]] const Endpoint& local() const noexcept { return local_; }
  // TCP options (TCP_NODELAY) apply to what it accepts.
  [[nodiscard]] bool tcp() const noexcept { return !local_.is_unix(); }
  // Handed over, not opened here: another process may hold the same socket (systemd does), so
  // it is never shut down (stopping only closes this fd) and its socket file is not ours.
  [[nodiscard]] bool inherited() const noexcept { return inherited_fd_ >= 0; }
  // The fd number it was handed over as (it keeps it: nothing dups it), for messages; -1 if
  // it was opened here.
  [[nodiscard]] int inherited_fd() const noexcept { return inherited_fd_; }

  // Enlists it in `registry` until it closes; `endpoint` is its place in the server's
  // listening_on() (several sockets share one under --threads).
  void enlist(std::shared_ptr<ListenerRegistry> registry, std::size_t endpoint);
  [[nodiscard]] std::size_t endpoint_index() const noexcept { return endpoint_; }

 private:
  friend std::shared_ptr<ListenSocket> listen_on(const Endpoint&, const ListenOptions&, unsigned, std::error_code&,
                                                 std::string&);
  friend std::shared_ptr<ListenSocket> adopt_listener(UniqueFd, std::string&);
  UniqueFd fd_;
  Endpoint local_;
  std::string socket_file_;  // the path to remove at the end; "" for TCP and abstract names
  dev_t file_device_ = 0;
  ino_t file_inode_ = 0;
  int inherited_fd_ = -1;
  std::shared_ptr<ListenerRegistry> registry_;
  std::size_t endpoint_ = 0;
};

using SharedListener = std::shared_ptr<ListenSocket>;

// Opens a listener on `where` (TCP: listen_tcp; Unix: socket, bind, chmod to `unix_mode` when
// not 0, listen). A socket file left at a Unix path by a server that died is replaced; one a
// live server listens on is not (a connect to it tells which), nor is a file that is not a
// socket. Null with `ec`, and `why` when there is more to say than ec's message.
SharedListener listen_on(const Endpoint& where, const ListenOptions& opts, unsigned unix_mode, std::error_code& ec,
                         std::string& why);

// Takes over `fd`, a socket some other process made listen (ServerOptions::inherited): it must
// be a socket, SOCK_STREAM, listening, TCP (IPv4, IPv6) or Unix; it is made close-on-exec. Its
// endpoint is what getsockname() says. Null, with `why`, for an fd unfit (which is closed).
SharedListener adopt_listener(UniqueFd fd, std::string& why);

}  // namespace iomux::detail
