// Socket activation: listening sockets a service manager opened and handed over (systemd's
// protocol, sd_listen_fds(3), read here without libsystemd). The manager binds the sockets
// (a .socket unit, or `systemd-socket-activate -l 127.0.0.1:7890 ...`), starts the program
// with them as fds 3, 4, ... and says so in the environment:
//
//   LISTEN_PID=<the program's pid>  LISTEN_FDS=<how many>  LISTEN_FDNAMES=web:admin (optional)
//
//   iomux::ServerOptions opts;
//   opts.inherited = iomux::inherited_listeners();  // first thing in main(): no thread yet
//   if (!opts.inherited.empty()) opts.listeners.clear();  // serve on them instead of binding
//   auto server = iomux::make_server(opts, iomux::http_protocol());
#pragma once

#include <string>
#include <vector>

namespace iomux {

// A listening socket the server takes over instead of binding one: its fd and, for messages,
// the name its manager gave it (LISTEN_FDNAMES; "" when none was given).
struct InheritedListener {
  int fd = -1;
  std::string name;
};

// The protocol's first fd (SD_LISTEN_FDS_START).
inline constexpr int kFirstListenFd = 3;

// Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the environment, unsets all three,
// whatever they said, so a child this program starts does not take the sockets for its own, and
// marks each fd close-on-exec. Empty when nothing was handed to this process: the variables are
// unset, LISTEN_PID is another process's (a parent's, whose environment was inherited: the
// sockets were not handed to us), or LISTEN_FDS is 0. Throws ServerError when they are
// malformed (a LISTEN_PID or LISTEN_FDS that is not a decimal number, LISTEN_FDNAMES with more
// or fewer names than LISTEN_FDS) or an fd is not open. Not thread-safe (it changes the
// environment): call it before any thread exists. Whether each fd is a listening stream socket
// is checked by make_server (ServerOptions::inherited).
std::vector<InheritedListener> inherited_listeners();

}  // namespace iomux
