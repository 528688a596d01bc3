// Whether a thread of this process is asleep in a given system call, for tests that must act
// only once a server thread has blocked (in sigtimedwait, in a send to a peer that does not
// read) instead of sleeping "long enough" and hoping.
//
// The source is /proc/self/task/TID/syscall: the kernel shows the call's number only when the
// thread is not running and stays so while it looks (otherwise "running", or -1 outside a
// call), so a number there means the thread sleeps in that call.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace iomux::test {

// The system call thread `tid` of this process sleeps in; nullopt when it is running, outside
// a call, gone, or the kernel does not say.
inline std::optional<long> sleeping_in(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string first;
  if (!(in >> first)) return std::nullopt;
  try {
    std::size_t used = 0;
    const long nr = std::stol(first, &used);
    if (used != first.size() || nr < 0) return std::nullopt;
    return nr;
  } catch (const std::exception&) {
    return std::nullopt;  // "running"
  }
}

// The threads of this process.
inline std::vector<pid_t> thread_ids() {
  std::vector<pid_t> ids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    try {
      ids.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
    } catch (const std::exception&) {
    }
  }
  return ids;
}

// True once thread `tid` sleeps in system call `nr` (SYS_...), false after `timeout`.
inline bool wait_until_sleeping_in(pid_t tid, long nr, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (sleeping_in(tid) == nr) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A thread of this process, other than those in `except`, once one sleeps in one of `calls`;
// nullopt after `timeout`.
inline std::optional<pid_t> wait_for_thread_sleeping_in(std::initializer_list<long> calls,
                                                        const std::vector<pid_t>& except,
                                                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (pid_t tid : thread_ids()) {
      if (std::find(except.begin(), except.end(), tid) != except.end()) continue;
      const std::optional<long> nr = sleeping_in(tid);
      if (!nr) continue;
      for (long call : calls)
        if (*nr == call) return tid;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace iomux::test
