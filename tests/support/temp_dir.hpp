// A directory of the test's own under /tmp (mkdtemp), removed with what is in it at the end:
// Unix socket paths for tests that run in parallel.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace iomux::test {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/iomux-test-XXXXXX";
    if (::mkdtemp(name)) path_ = name;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] bool ok() const { return !path_.empty(); }
  // `name` inside the directory (short: sun_path holds 107 bytes).
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace iomux::test
