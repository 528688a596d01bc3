// The default clock of the RESP server: milliseconds of std::chrono::steady_clock. The
// keyspace's TTLs and INFO's uptime read it; tests inject clocks of their own.
#pragma once

#include <chrono>

namespace iomux::resp {

inline std::chrono::milliseconds steady_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace iomux::resp
