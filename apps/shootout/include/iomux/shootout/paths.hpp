// Where the running executable is: the build copies the shootout's scripts (gnuplot, wrk's
// pipelining script) next to it, and those copies are looked for first.
#pragma once

#include <filesystem>
#include <string>

#include "iomux/loadgen/procfs.hpp"

namespace iomux::shootout {

// The directory of /proc/self/exe, or "" when it cannot be read.
inline std::string exe_dir() {
  const std::string self = loadgen::self_exe_path();
  return self.empty() ? std::string() : std::filesystem::path(self).parent_path().string();
}

}  // namespace iomux::shootout
