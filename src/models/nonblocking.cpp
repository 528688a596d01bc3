// Model `nonblocking`: the tutorial's section 3 (non-blocking IO), done properly. Every socket
// is O_NONBLOCK, so no call ever sleeps: one thread loops over the listener (accept until
// EAGAIN, at most kAcceptBurst per pass) and over every connection (send what is pending, then
// one recv), and after a pass in which nothing moved it sleeps --poll-interval (1 ms by
// default). Unlike the tutorial's program, which loops on one client until it leaves, this one
// serves all of them at once.
//
// The trade-off is CPU and latency. Each pass costs a recv() per connection whether or not it
// has anything to say, O(n) system calls to find the few that are ready; and a request that
// arrives while the thread sleeps waits up to the poll interval. A shorter interval buys
// latency with more idle CPU; select/poll/epoll (section 5) exist so the kernel can say which
// sockets are ready instead.
//
// Back-pressure: a connection whose pending output reaches --max-pending is not read until it
// drains below half. Idle connections are closed after --idle-timeout. stop() only raises a
// flag (and cuts the sleep short); the loop sees it within one pass.
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <memory>
#include <thread>
#include <vector>

#include "iomux/socket.hpp"
#include "models/blocking_io.hpp"
#include "server/model_factory.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail {
namespace {

// Connections one pass may accept: enough for a burst, few enough that the connected clients
// still get their turn during a connection storm.
constexpr int kAcceptBurst = 64;

class NonblockingServer final : public Server {
 public:
  explicit NonblockingServer(ServerOptions options)
      : ctx_(std::move(options)),
        stop_(ctx_.options().drain_timeout),
        listener_(ctx_.open_listener(/*non_blocking=*/true, /*reuse_port=*/false)),
        local_(iomux::local_endpoint(listener_.get())) {
    ctx_.log().info("listening on {} (model {}, one thread polling every socket, {} ms back-off)",
                    local_.to_string(), ctx_.options().model, ctx_.options().poll_interval.count());
  }

  void run() override {
    StatsReporter reporter(ctx_, [this] { return stats(); });
    AcceptOne accept(ctx_, stats_, SOCK_NONBLOCK);
    std::array<char, kScratchSize> scratch;
    bool draining = false;
    SteadyClock::time_point drain_deadline;
    for (;;) {
      const StopControl::Level level = stop_.level();
      if (level == StopControl::Level::cut) break;
      const auto now = SteadyClock::now();
      if (level == StopControl::Level::draining && !draining) {
        draining = true;
        drain_deadline = now + ctx_.options().drain_timeout;
        listener_.reset();
        for (auto& s : sessions_) s->drain();
      }
      bool progress = listener_ && accept_burst(accept);
      for (auto& s : sessions_) progress = s->visit(scratch, now) || progress;
      std::erase_if(sessions_, [](const auto& s) { return s->closed(); });
      if (draining) {
        if (sessions_.empty()) break;
        if (now >= drain_deadline) {
          for (auto& s : sessions_) s->close("drain timeout");
          break;
        }
      }
      if (!progress) back_off();
    }
    sessions_.clear();  // each closes with "server stopped"
    listener_.reset();
  }

  void stop(StopMode mode) noexcept override { stop_.request(mode); }

  Endpoint local_endpoint() const override { return local_; }
  StatsSnapshot stats() const override { return stats_.snapshot(); }
  std::string_view model() const noexcept override { return ctx_.options().model; }

 private:
  // True if anything was accepted (or refused).
  bool accept_burst(AcceptOne& accept) {
    bool progress = false;
    for (int i = 0; i < kAcceptBurst; ++i) {
      AcceptOne::Result a = accept(listener_.get());
      if (!a.fd) {
        if (a.error == EINTR) continue;
        break;  // EAGAIN: nobody waiting; anything else was logged, try again next pass
      }
      progress = true;
      if (!ctx_.admit(stats_, a.peer)) continue;
      stats_.connections_accepted.add();
      sessions_.push_back(std::make_unique<Session>(ctx_, stats_, std::move(a.fd), a.peer, nullptr));
    }
    return progress;
  }

  void back_off() {
    const auto interval = ctx_.options().poll_interval;
    if (interval.count() > 0)
      stop_.sleep_for(interval);  // a stop() wakes it at once
    else
      std::this_thread::yield();
  }

  ServerContext ctx_;
  StopControl stop_;
  ThreadStats stats_;
  UniqueFd listener_;
  Endpoint local_;
  std::vector<std::unique_ptr<Session>> sessions_;
};

}  // namespace

std::unique_ptr<Server> make_nonblocking_server(ServerOptions options) {
  return std::make_unique<NonblockingServer>(std::move(options));
}

}  // namespace iomux::detail
