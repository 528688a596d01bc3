// systemd's socket activation variables, parsed without IO (inherited_listeners() in
// include/iomux/activation.hpp does the IO): what sd_listen_fds(3) reads, with its rules.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace iomux::detail {

struct ListenFds {
  int count = 0;                   // fds kFirstListenFd .. kFirstListenFd + count - 1
  std::vector<std::string> names;  // LISTEN_FDNAMES split at ':': empty (unset) or `count` many
};

// Null arguments are unset variables; `self` is the pid LISTEN_PID must name. A count of 0 when
// LISTEN_PID or LISTEN_FDS is unset, when LISTEN_PID is another process's, or when LISTEN_FDS
// is 0 (LISTEN_FDNAMES is not looked at then). nullopt, and `why`, when the text is not what
// the protocol allows: a LISTEN_PID or LISTEN_FDS that is not a plain decimal number (no sign,
// no space), a LISTEN_PID of 0, a count whose last fd would not fit in an int, LISTEN_FDNAMES
// with more or fewer names than LISTEN_FDS.
std::optional<ListenFds> parse_listen_fds(const char* listen_pid, const char* listen_fds, const char* listen_fdnames,
                                          pid_t self, std::string& why);

}  // namespace iomux::detail
