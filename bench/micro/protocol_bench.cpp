// Protocol::consume, the core every model shares: how much a request costs before any IO.
// Each iteration feeds one chunk (as one recv() would deliver it) to the core with a sink that
// only counts bytes, so the numbers are the parsing and reply-selection cost alone.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "iomux/protocol.hpp"

namespace {

class CountingSink : public iomux::ReplySink {
 public:
  void reply(std::string_view bytes) override { bytes_ += bytes.size(); }
  std::size_t bytes_ = 0;
};

iomux::Protocol make(iomux::ProtocolMode mode) {
  iomux::ProtocolConfig cfg;
  cfg.mode = mode;
  return iomux::Protocol(cfg);
}

// One chunk of range(0) bytes, answered whole (ack: the reply text, echo: the chunk itself).
void run_chunk(benchmark::State& state, iomux::ProtocolMode mode) {
  const iomux::Protocol proto = make(mode);
  const std::string chunk(static_cast<std::size_t>(state.range(0)), 'x');
  CountingSink sink;
  for (auto _ : state) {
    auto r = proto.consume(chunk, 0, sink);
    benchmark::DoNotOptimize(r);
  }
  benchmark::DoNotOptimize(sink.bytes_);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetItemsProcessed(state.iterations());
}

void BM_Protocol_Ack(benchmark::State& state) { run_chunk(state, iomux::ProtocolMode::ack); }
void BM_Protocol_Echo(benchmark::State& state) { run_chunk(state, iomux::ProtocolMode::echo); }
BENCHMARK(BM_Protocol_Ack)->Arg(64)->Arg(16 * 1024)->Arg(64 * 1024);
BENCHMARK(BM_Protocol_Echo)->Arg(64)->Arg(16 * 1024)->Arg(64 * 1024);

// Line mode, one line of range(0) bytes (including the '\n') per chunk.
void BM_Protocol_Line(benchmark::State& state) {
  const iomux::Protocol proto = make(iomux::ProtocolMode::line);
  std::string line(static_cast<std::size_t>(state.range(0)) - 1, 'x');
  line += '\n';
  CountingSink sink;
  for (auto _ : state) {
    auto r = proto.consume(line, 0, sink);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Protocol_Line)->Arg(64)->Arg(16 * 1024);

// Line mode, range(0) pipelined 16-byte lines in one chunk: the cost per request when a client
// sends many requests before reading.
void BM_Protocol_LinePipelined(benchmark::State& state) {
  const iomux::Protocol proto = make(iomux::ProtocolMode::line);
  std::string chunk;
  for (std::int64_t i = 0; i < state.range(0); ++i) chunk += "hello, pipeline\n";
  CountingSink sink;
  for (auto _ : state) {
    auto r = proto.consume(chunk, 0, sink);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * chunk.size()));
}
BENCHMARK(BM_Protocol_LinePipelined)->Arg(1)->Arg(16)->Arg(256);

// Line mode, a long line arriving in 64-byte pieces: the `scanned` argument keeps each call
// O(new bytes); this measures a whole 16 KiB line delivered that way.
void BM_Protocol_LineTrickle(benchmark::State& state) {
  const iomux::Protocol proto = make(iomux::ProtocolMode::line);
  const std::size_t total = 16 * 1024, piece = 64;
  std::string line(total - 1, 'x');
  line += '\n';
  CountingSink sink;
  for (auto _ : state) {
    std::size_t scanned = 0;
    for (std::size_t have = piece; have <= total; have += piece) {
      auto r = proto.consume(std::string_view(line).substr(0, have), scanned, sink);
      benchmark::DoNotOptimize(r);
      scanned = have;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * total));
}
BENCHMARK(BM_Protocol_LineTrickle);

}  // namespace
