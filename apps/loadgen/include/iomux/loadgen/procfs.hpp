// Reading a process's CPU time and memory from /proc, and CPU pinning helpers.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iomux::loadgen {

struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  std::uint64_t utime_ticks = 0;  // all threads of the process, in clock ticks
  std::uint64_t stime_ticks = 0;
  long num_threads = 0;
  [[nodiscard]] std::uint64_t cpu_ticks() const noexcept { return utime_ticks + stime_ticks; }
};

// Parses one /proc/PID/stat line. The command name (field 2) is in parentheses and may hold
// spaces and parentheses itself, so fields are counted from the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view line);
// VmRSS from the text of /proc/PID/status, in KiB.
std::optional<std::uint64_t> parse_vm_rss_kib(std::string_view status_text);

std::optional<ProcStat> read_proc_stat(pid_t pid);

// A process and all its descendants (found through the ppid fields of /proc/*/stat): summed CPU
// ticks and thread counts, and the number of processes. Covers servers started through a shell
// wrapper and pre-forking servers. nullopt when `pid` itself is gone.
struct TreeStat {
  ProcStat total;  // state is the root's
  std::size_t processes = 0;
  std::vector<pid_t> pids;
};
std::optional<TreeStat> read_tree_stat(pid_t pid);
// Summed VmRSS of the given processes, in KiB (processes gone meanwhile are skipped).
std::optional<std::uint64_t> read_tree_rss_kib(const std::vector<pid_t>& pids);
std::optional<std::uint64_t> read_vm_rss_kib(pid_t pid);

// sysconf(_SC_CLK_TCK), usually 100.
long clock_ticks_per_second() noexcept;
double ticks_to_us(std::uint64_t ticks) noexcept;

// How many CPUs this process may run on (sched_getaffinity), at least 1.
int usable_cpu_count() noexcept;
// Whether `cpu` is in this process's affinity mask.
bool cpu_usable(int cpu) noexcept;
// Pins the calling thread (pid 0) or process `pid` to one CPU; returns an error text or "".
std::string pin_to_cpu(pid_t pid, int cpu);

// The path of the running executable (readlink /proc/self/exe); empty on failure.
std::string self_exe_path();

}  // namespace iomux::loadgen
