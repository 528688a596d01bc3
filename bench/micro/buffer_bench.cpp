// iomux::detail::Buffer, the per-connection byte store: append + consume in steady state, growth from
// empty, and read_from() on a socketpair (readv into the buffer and a 64 KiB stack spill).
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <stdexcept>
#include <string>

#include "core/buffer.hpp"
#include "core/fd.hpp"

namespace {

// Append range(0) bytes, consume them all: the common "reply queued, then fully sent" path.
// The cursors go back to zero, so after the first iteration this never allocates.
void BM_Buffer_AppendConsume(benchmark::State& state) {
  const std::string bytes(static_cast<std::size_t>(state.range(0)), 'x');
  iomux::detail::Buffer buf;
  for (auto _ : state) {
    buf.append(bytes);
    benchmark::DoNotOptimize(buf.peek());
    buf.consume(buf.readable());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Buffer_AppendConsume)->Arg(64)->Arg(16 * 1024);

// Append in 64-byte pieces, consume half now and then: the buffer compacts and grows.
void BM_Buffer_PartialConsume(benchmark::State& state) {
  const std::string piece(64, 'x');
  iomux::detail::Buffer buf;
  for (auto _ : state) {
    for (int i = 0; i < 64; ++i) {
      buf.append(piece);
      if (i % 4 == 3) buf.consume(buf.readable() / 2);
    }
    buf.consume(buf.readable());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 64 * 64);
}
BENCHMARK(BM_Buffer_PartialConsume);

// An idle connection's buffer: allocate on first append, free with release_if_empty().
void BM_Buffer_GrowFromEmpty(benchmark::State& state) {
  const std::string bytes(static_cast<std::size_t>(state.range(0)), 'x');
  iomux::detail::Buffer buf;
  for (auto _ : state) {
    buf.append(bytes);
    buf.consume(buf.readable());
    buf.release_if_empty();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Buffer_GrowFromEmpty)->Arg(64)->Arg(16 * 1024);

// write() range(0) bytes into one end of a socketpair, read_from() them on the other: one
// write + one readv per iteration, the spill area taking what the (empty) buffer cannot.
void BM_Buffer_ReadFromSocketpair(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  iomux::detail::UniqueFd a(fds[0]), b(fds[1]);
  const std::string bytes(static_cast<std::size_t>(state.range(0)), 'x');
  std::array<char, 64 * 1024> spill;
  iomux::detail::Buffer buf;
  for (auto _ : state) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::write(a.get(), bytes.data() + sent, bytes.size() - sent);
      if (n <= 0) {
        state.SkipWithError("write failed");
        return;
      }
      sent += static_cast<std::size_t>(n);
    }
    while (buf.readable() < bytes.size()) {
      if (buf.read_from(b.get(), spill) <= 0) {
        state.SkipWithError("read_from failed");
        return;
      }
    }
    buf.consume(buf.readable());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Buffer_ReadFromSocketpair)->Arg(64)->Arg(16 * 1024);

}  // namespace
