#include "iomux/loadgen/procfs.hpp"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace iomux::loadgen {
namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename T>
std::optional<T> to_number(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
  const auto close = line.rfind(')');
  if (close == std::string_view::npos || line.find('(') == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  // Fields after the name, 0-based: 0 state(3), 1 ppid(4), ..., 11 utime(14), 12 stime(15),
  // 17 num_threads(20).
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < rest.size() && fields.size() < 18) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\n')) ++i;
    std::size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j > i) fields.push_back(rest.substr(i, j - i));
    i = j;
  }
  if (fields.size() < 18 || fields[0].size() != 1) return std::nullopt;
  auto ut = to_number<std::uint64_t>(fields[11]);
  auto st = to_number<std::uint64_t>(fields[12]);
  auto nt = to_number<long>(fields[17]);
  auto pp = to_number<pid_t>(fields[1]);
  if (!ut || !st || !nt || !pp) return std::nullopt;
  ProcStat s;
  s.state = fields[0][0];
  s.ppid = *pp;
  s.utime_ticks = *ut;
  s.stime_ticks = *st;
  s.num_threads = *nt;
  return s;
}

std::optional<std::uint64_t> parse_vm_rss_kib(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.substr(0, 6) != "VmRSS:") continue;
    line.remove_prefix(6);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    std::size_t end = 0;
    while (end < line.size() && line[end] >= '0' && line[end] <= '9') ++end;
    if (end == 0) return std::nullopt;
    auto v = to_number<std::uint64_t>(line.substr(0, end));
    std::string_view unit = line.substr(end);
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (!v) return std::nullopt;
    if (unit.substr(0, 2) == "mB" || unit.substr(0, 2) == "MB") return *v * 1024;
    return v;  // the kernel always writes "kB"
  }
  return std::nullopt;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  auto text = slurp("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  return parse_proc_stat(*text);
}

std::optional<std::uint64_t> read_vm_rss_kib(pid_t pid) {
  auto text = slurp("/proc/" + std::to_string(pid) + "/status");
  if (!text) return std::nullopt;
  return parse_vm_rss_kib(*text);
}

std::optional<TreeStat> read_tree_stat(pid_t root) {
  auto root_stat = read_proc_stat(root);
  if (!root_stat) return std::nullopt;
  std::vector<std::pair<pid_t, ProcStat>> all;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      auto pid = to_number<pid_t>(e->d_name);
      if (!pid || *pid == root) continue;
      if (auto st = read_proc_stat(*pid)) all.emplace_back(*pid, *st);
    }
    ::closedir(d);
  }
  TreeStat t;
  t.total = *root_stat;
  t.processes = 1;
  t.pids.push_back(root);
  // Breadth-first over the ppid links; bounded by the number of processes.
  for (std::size_t next = 0; next < t.pids.size(); ++next) {
    for (const auto& [pid, st] : all) {
      if (st.ppid != t.pids[next]) continue;
      t.pids.push_back(pid);
      ++t.processes;
      t.total.utime_ticks += st.utime_ticks;
      t.total.stime_ticks += st.stime_ticks;
      t.total.num_threads += st.num_threads;
    }
  }
  return t;
}

std::optional<std::uint64_t> read_tree_rss_kib(const std::vector<pid_t>& pids) {
  std::optional<std::uint64_t> sum;
  for (pid_t p : pids)
    if (auto kib = read_vm_rss_kib(p)) sum = sum.value_or(0) + *kib;
  return sum;
}

long clock_ticks_per_second() noexcept {
  static const long hz = [] {
    long v = ::sysconf(_SC_CLK_TCK);
    return v > 0 ? v : 100L;
  }();
  return hz;
}

double ticks_to_us(std::uint64_t ticks) noexcept {
  return static_cast<double>(ticks) * 1e6 / static_cast<double>(clock_ticks_per_second());
}

int usable_cpu_count() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? n : 1;
}

bool cpu_usable(int cpu) noexcept {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return false;
  return CPU_ISSET(cpu, &set);
}

std::string pin_to_cpu(pid_t pid, int cpu) {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return "CPU " + std::to_string(cpu) + " out of range";
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(pid, sizeof set, &set) != 0)
    return "sched_setaffinity(CPU " + std::to_string(cpu) + "): " + std::strerror(errno);
  return {};
}

std::string self_exe_path() {
  std::vector<char> buf(4096);
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return {};
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

}  // namespace iomux::loadgen
