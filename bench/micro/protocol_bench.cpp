// The protocols without sockets: how much user-space work one request costs in each, from its
// bytes to its reply bytes. The built-in line protocol runs as a handler through a real
// ConnectionCore (tests/support/core_harness.hpp), as the servers run it; resp and http run
// their IO-free cores (Session::process) on a pipeline of 16 requests per call, the way
// redis-benchmark -P 16 and wrk with pipeline.lua present them.
//
//   build/bench/micro/micro_bench --benchmark_filter=Protocol
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iomux/protocols.hpp"
#include "protocols/http/service.hpp"
#include "protocols/http/session.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/reply_queue.hpp"
#include "protocols/resp/server_info.hpp"
#include "protocols/resp/session.hpp"
#include "support/core_harness.hpp"

namespace {

constexpr int kPipeline = 16;

std::string repeated(const std::string& request) {
  std::string all;
  for (int i = 0; i < kPipeline; ++i) all += request;
  return all;
}

// 16 pipelined lines through the line handler and the connection core, per iteration.
void BM_Protocol_LineHandler(benchmark::State& state) {
  iomux::test::CoreHarness h(iomux::line_protocol());
  const std::string input = repeated("request\n");
  for (auto _ : state) {
    h.feed(input);
    benchmark::DoNotOptimize(h.take_output());
  }
  state.SetItemsProcessed(state.iterations() * kPipeline);
}
BENCHMARK(BM_Protocol_LineHandler);

void resp_pipeline(benchmark::State& state, const std::string& request) {
  iomux::resp::Keyspace keyspace(iomux::resp::KeyspaceOptions{std::size_t{1} << 30, false, {}});
  iomux::resp::ServerInfo info;
  iomux::resp::Session session(keyspace, info);
  const std::string input = repeated(request);
  iomux::resp::ReplyQueue out;
  struct Discard {
    void copy(std::string_view bytes) { benchmark::DoNotOptimize(bytes.data()); }
    void share(std::shared_ptr<const void>, std::string_view bytes) { benchmark::DoNotOptimize(bytes.data()); }
    void own(std::string&& bytes) { benchmark::DoNotOptimize(bytes.data()); }
  } sink;
  for (auto _ : state) {
    const auto r = session.process(input, out);
    out.take(sink, SIZE_MAX);
    benchmark::DoNotOptimize(r.consumed);
  }
  state.SetItemsProcessed(state.iterations() * kPipeline);
}

// redis-benchmark's SET and GET: one key, a 3-byte value.
void BM_Protocol_RespSet(benchmark::State& state) {
  resp_pipeline(state, "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n");
}
BENCHMARK(BM_Protocol_RespSet);

void BM_Protocol_RespGet(benchmark::State& state) {
  resp_pipeline(state, "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n");
}
BENCHMARK(BM_Protocol_RespGet);

// wrk's request for the TechEmpower plaintext test.
void BM_Protocol_HttpPlaintext(benchmark::State& state) {
  iomux::http::Service service{iomux::http::Options{}};
  iomux::http::Session session(service);
  const std::string input = repeated("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
  std::string out;
  for (auto _ : state) {
    out.clear();
    const auto r = session.process(input, out);
    benchmark::DoNotOptimize(r.consumed);
  }
  state.SetItemsProcessed(state.iterations() * kPipeline);
}
BENCHMARK(BM_Protocol_HttpPlaintext);

}  // namespace
