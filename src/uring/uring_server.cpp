// Model "uring": asynchronous IO with io_uring — tutorial section 2, "异步IO: Python实现不了"
// (asynchronous IO: the one model the tutorial's Python cannot show).
//
// Every other model is synchronous IO in the tutorial's sense: whether it blocks, polls, or
// waits for readiness (select/poll/epoll, SIGIO), the thread itself finally calls recv() and
// send() and waits while the kernel copies the bytes. Here the thread only *describes* the IO
// (submission queue entries) and later collects the results (completion queue entries): the
// kernel accepts the connection, picks a receive buffer, copies the data into it and tells us
// when it is done. No readiness, no EAGAIN, and — batched — no syscall per request at all:
//
//   * multishot accept: one request keeps accepting connections;
//   * multishot recv into a provided buffer ring: one request per connection keeps receiving
//     (up to 64 KiB, then it is re-armed: a bound for back-pressure; one-shot recvs on
//     kernels before 6.16, which cannot bound it), into 16 KiB buffers the kernel picks when
//     data arrives, so idle connections pin no buffer;
//   * sends own their bytes until their completion (for a reply that is the input itself, as
//     echo's, the receive buffer is lent to the send: zero copy);
//   * one io_uring_submit_and_wait per loop iteration submits every queued request and
//     collects a whole batch of completions.
//
// Kernel: Linux 6.0+ (multishot recv; provided buffer rings 5.19); 6.1+ for the best setup
// flags (SINGLE_ISSUER + DEFER_TASKRUN), with a fallback for older kernels. Refused where
// io_uring is disabled (kernel.io_uring_disabled, seccomp in containers): make_server throws.
//
// Trade-offs: the fastest model per request, but the buffers belong to the kernel while a
// request is in flight, so the bookkeeping is stricter (nothing is freed before its last
// completion); fixed memory per thread for the buffer ring (4 to 16 MiB); the most
// kernel-version-dependent model, and io_uring is often disabled in sandboxes for security.
//
// With --threads N: N rings, one per thread, each with its own SO_REUSEPORT listener on every
// TCP endpoint and a multishot accept on every listener.
// The engine is in src/uring/: ring.* (setup, buffer ring), uring_loop.* (the loop),
// uring_transport.* (a connection's IO), user_data.hpp (what a completion is about); the
// connection's lifecycle is the shared ConnectionCore (src/core/).
#include "server/loop_group_server.hpp"
#include "server/model_factory.hpp"
#include "uring/uring_loop.hpp"

namespace iomux::detail {
namespace {

class UringServer final : public LoopGroupServer<uring::UringLoop> {
 public:
  UringServer(ServerOptions options, HandlerFactory factory)
      : LoopGroupServer(checked(std::move(options)), std::move(factory),
                        [](ServerContext& ctx, std::vector<SharedListener> listeners) {
                          return std::make_unique<uring::UringLoop>(ctx, std::move(listeners));
                        }) {
    const int n = thread_count();
    ctx_.log().debug(
        "io_uring: {} ring{} ({}), {} recvs, {} x {} KiB receive buffers each (up to {})", n, n > 1 ? "s" : "",
        loops_[0]->ring_description(), loops_[0]->multishot_recvs() ? "multishot (bounded)" : "one-shot",
        uring::BufferPool::kBuffersPerSlab, uring::BufferPool::kBufferSize / 1024, uring::BufferPool::kMaxBuffers);
    log_listening();
  }

 private:
  static ServerOptions checked(ServerOptions options) {
    uring::check_kernel_support();  // a clear "why not" now, rather than failing recvs later
    return options;
  }
};

}  // namespace

std::unique_ptr<Server> make_uring_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<UringServer>(std::move(options), std::move(factory));
}

// The engine's own check: it runs a multishot recv into a provided buffer ring, so a kernel
// that has io_uring but not the features the engine uses is reported too.
std::string uring_unavailable_reason() {
  try {
    uring::check_kernel_support();
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace iomux::detail
