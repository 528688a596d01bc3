// Drives a Handler through a real ConnectionCore with no socket at all: the IO-free way to
// test (and fuzz) a protocol and the connection lifecycle. feed() is what the peer does: its
// bytes wait in the "kernel" until the core wants to read, then they are delivered as an
// engine delivers them (the kept input with the new bytes appended); while the core lingers
// they are discarded. The "socket" takes whatever is owed (all of it, or nothing while
// `stalled`).
//
// Timers run when the test advances the clock (advance()); mail posted from other threads
// runs in run_mail().
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/connection_core.hpp"
#include "core/executor.hpp"
#include "core/server_context.hpp"
#include "core/thread_stats.hpp"
#include "core/timer_queue.hpp"
#include "iomux/handler.hpp"
#include "iomux/server.hpp"
#include "support/internals.hpp"

namespace iomux::test {

class CoreHarness final : public detail::Executor, public detail::Transport {
 public:
  explicit CoreHarness(HandlerFactory factory, ServerOptions options = quiet_options())
      : CoreHarness(std::make_unique<detail::ServerContext>(std::move(options), std::move(factory))) {}

  // An outbound connection (Loop::connect) to `to`, connecting until connect_completes().
  struct Outbound {
    Endpoint to = Endpoint::loopback_v4(6379);
  };
  CoreHarness(Outbound out, const HandlerFactory& factory, ServerOptions options = quiet_options())
      : CoreHarness(std::make_unique<detail::ServerContext>(std::move(options), factory), factory(), out.to) {}
  // The connect completed: what an engine does then.
  void connect_completes() {
    core_->connected();
    core_->open([this] { return send(); });
    pump();
  }

  ~CoreHarness() override {
    core_.reset();
    close_mailbox();
  }

  static ServerOptions quiet_options() {
    ServerOptions o;
    o.logger = std::make_shared<Logger>(LogLevel::error, [](LogLevel, std::string_view) {});
    return o;
  }

  // Bytes arrive from the peer.
  void feed(std::string_view bytes) {
    in_kernel_.append(bytes);
    pump();
  }
  // Bytes the peer sent that the core has not read (it does not want to, now).
  [[nodiscard]] std::size_t unread() const { return in_kernel_.size(); }
  // The peer shuts down its side.
  void peer_shutdown() {
    if (open()) core_->peer_shutdown();
  }
  // The socket stops (or starts again) taking bytes.
  void stall(bool stalled) {
    stalled_ = stalled;
    if (!stalled && open()) core_->settle_with([this] { return send(); });
    pump();
  }
  // Time passes: due timers run.
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    set_now(now_);
    timers_.run_expired(now_);
    pump();
  }
  void run_mail() {
    deliver_mail();
    pump();
  }

  // What the peer received so far (and forget it).
  std::string take_output() { return std::exchange(output_, {}); }
  [[nodiscard]] bool open() const { return core_ && core_->state() != detail::ConnectionCore::State::closed; }
  [[nodiscard]] bool fin_sent() const { return fin_; }
  [[nodiscard]] detail::ConnectionCore& core() { return *core_; }
  [[nodiscard]] const ThreadStats& thread_stats() const { return stats_; }
  [[nodiscard]] detail::ServerContext& server_context() { return *ctx_; }

  // Executor.
  TimerId start_timer(Clock::time_point when, std::function<void()> callback) override {
    return timers_.start(when, std::move(callback));
  }
  bool cancel_timer(TimerId id) override { return timers_.cancel(id); }

  // Transport.
  void settle() override {
    if (core_->connecting()) {
      core_->output_changed();
      return;
    }
    core_->settle_with([this] { return send(); });
  }
  void shutdown_write() override { fin_ = true; }
  void release_socket() override { released_ = true; }

 private:
  explicit CoreHarness(std::unique_ptr<detail::ServerContext> ctx)
      : Executor(*ctx, stats_, /*batch=*/nullptr, [] {}), ctx_(std::move(ctx)) {
    set_now(now_);
    std::unique_ptr<Handler> handler = ctx_->admit(stats_, Endpoint::loopback_v4(40000));
    if (!handler) throw std::runtime_error("the handler factory failed");
    core_.emplace(*this, *this, std::move(handler), Endpoint::loopback_v4(40000), local_, 7);
    core_->open([this] { return send(); });
  }

  CoreHarness(std::unique_ptr<detail::ServerContext> ctx, std::unique_ptr<Handler> handler, const Endpoint& to)
      : Executor(*ctx, stats_, /*batch=*/nullptr, [] {}), ctx_(std::move(ctx)) {
    set_now(now_);
    core_.emplace(*this, *this, std::move(handler), to, local_, 7, /*outbound=*/true);
  }

  // What an engine does whenever it could read: deliver what has arrived, or discard it.
  void pump() {
    while (open() && !in_kernel_.empty() && !core_->connecting()) {
      detail::ConnectionCore& c = *core_;
      if (c.discarding()) {
        in_kernel_.clear();
        return;
      }
      if (!c.wants_read()) return;
      std::string bytes = std::exchange(in_kernel_, {});
      if (!c.keeps_input()) {
        // The engine's own buffer, as a scratch area would be (the core copies what it keeps).
        scratch_ = std::move(bytes);
        c.serve(scratch_, false, [this] { return send(); });
      } else {
        c.kept_input().append(bytes);
        c.serve(c.kept_input().view(), true, [this] { return send(); });
      }
    }
  }

  int send() {
    detail::ConnectionCore& c = *core_;
    detail::OutputQueue& q = c.queue();
    std::size_t taken = 0;
    while (!stalled_ && !q.empty() && !q.blocked()) {
      iovec iov[16];
      const std::size_t n = q.gather(iov);
      if (n == 0) break;
      std::size_t bytes = 0;
      for (std::size_t i = 0; i < n; ++i) {
        output_.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        bytes += iov[i].iov_len;
      }
      q.consume(bytes);
      taken += bytes;
    }
    stats_.bytes_out.add(taken);
    c.output_changed();
    return 0;
  }

  ThreadStats stats_;
  std::unique_ptr<detail::ServerContext> ctx_;
  detail::TimerQueue timers_;
  Clock::time_point now_ = Clock::now();
  const Endpoint local_ = Endpoint::loopback_v4(7890);  // the listener, as far as the core knows
  std::optional<detail::ConnectionCore> core_;
  std::string scratch_;
  std::string in_kernel_;
  std::string output_;
  bool stalled_ = false;
  bool fin_ = false;
  bool released_ = false;
};

}  // namespace iomux::test
