// The proxy (proxy.hpp) as two handlers on the public API: ClientSide for an accepted
// connection, UpstreamSide for the connection it opens. The two run on one thread (the client
// side opens the upstream on its own loop), so each calls the other's Connection directly,
// with no lock and no copy beyond the write; each forgets the other in its on_close().
//
// One request's path: the client's bytes arrive in ClientSide's on_data (RelaySide::relay),
// which writes them to the upstream's Connection; the loop sends them before it waits again.
// The reply comes back the same way through UpstreamSide.
#include "iomux/proxy.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "iomux/error.hpp"

namespace iomux {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

// What every handler of the server shares, on every thread: the upstreams, whose turn is
// next, and which refused lately.
class Upstreams {
 public:
  explicit Upstreams(ProxyOptions options)
      : options_(std::move(options)),
        down_until_(std::make_unique<std::atomic<std::int64_t>[]>(options_.upstreams.size())) {
    for (std::size_t i = 0; i < options_.upstreams.size(); ++i) down_until_[i].store(0, std::memory_order_relaxed);
  }

  [[nodiscard]] const ProxyOptions& options() const noexcept { return options_; }
  [[nodiscard]] const Endpoint& at(std::size_t i) const noexcept { return options_.upstreams[i]; }

  // The next upstream in turn that `tried` does not hold, preferring one not marked down;
  // kNone when the client has tried them all.
  std::size_t pick(SteadyClock::time_point now, const std::vector<bool>& tried) {
    const std::size_t n = options_.upstreams.size();
    const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
    const std::int64_t now_ns = ticks(now);
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (start + k) % n;
        if (!tried.empty() && tried[i]) continue;
        if (pass == 0 && down_until_[i].load(std::memory_order_relaxed) > now_ns) continue;
        return i;
      }
    }
    return kNone;
  }

  void mark_down(std::size_t i, SteadyClock::time_point now) noexcept {
    down_until_[i].store(ticks(now + options_.retry_after), std::memory_order_relaxed);
  }
  void mark_up(std::size_t i) noexcept {
    if (down_until_[i].load(std::memory_order_relaxed) != 0) down_until_[i].store(0, std::memory_order_relaxed);
  }

 private:
  static std::int64_t ticks(SteadyClock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }

  ProxyOptions options_;
  std::unique_ptr<std::atomic<std::int64_t>[]> down_until_;
  std::atomic<std::size_t> next_{0};
};

class ClientSide;
class UpstreamSide;

// What both sides do: relay what they read to the other side, pass a FIN on, and resume the
// other side's reading once their own output has drained.
class RelaySide : public Handler {
 public:
  explicit RelaySide(std::size_t max_buffered) noexcept : high_(max_buffered), low_(max_buffered / 2) {}

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    if (activity_) *activity_ = conn.now();
    Connection* out = other_ ? other_->conn_ : nullptr;
    if (out == nullptr) [[unlikely]]
      return in.size();  // the other side is gone: this one is closing after its flush
    out->write(std::string_view(in.data(), in.size()));
    if (out->pending_output() >= high_) {
      // Its peer is slower than ours: stop reading until it has taken half of what it owes.
      conn.pause_reading();
      paused_for_other_ = true;
      out->notify_drain(low_);
    }
    return in.size();
  }

  // Our peer will send no more: neither will the other side, once it has sent what it owes.
  void on_peer_shutdown(Connection& conn) override {
    if (other_ && other_->conn_)
      other_->conn_->shutdown_write();
    else
      conn.close_after_flush();
  }

  // Our output drained to the low mark: the other side may read again.
  void on_drain(Connection& conn) override {
    if (!other_ || !other_->conn_ || !other_->paused_for_other_ || conn.pending_output() > low_) return;
    other_->paused_for_other_ = false;
    other_->conn_->resume_reading();
  }

 protected:
  friend class ClientSide;  // each side reaches the other through a RelaySide*
  friend class UpstreamSide;

  // This side closed: the other side sends what it owes, then FIN, and closes.
  void sever(const CloseInfo& info) {
    conn_ = nullptr;
    RelaySide* other = std::exchange(other_, nullptr);
    if (!other) return;
    other->other_ = nullptr;
    other->activity_ = nullptr;  // the client side's, which may be going: the pair has ended
    if (other->conn_ && info.reason != CloseReason::server_stopped) other->conn_->close_after_flush(close_note(info));
  }

  static std::string close_note(const CloseInfo& info) {
    return "the other side closed: " + std::string(to_string(info.reason));
  }

  // The pair's last byte either way, kept by the client side (its idle timer reads it) and
  // written by both: null on a side that has no timer to feed.
  std::chrono::steady_clock::time_point* activity_ = nullptr;
  Connection* conn_ = nullptr;     // between on_open and on_close
  RelaySide* other_ = nullptr;     // the other side's handler, until either closes
  bool paused_for_other_ = false;  // reading paused until the other side drains
  std::size_t high_;
  std::size_t low_;
};

class UpstreamSide final : public RelaySide {
 public:
  UpstreamSide(ClientSide& client, std::size_t index, std::size_t max_buffered) noexcept;

  void on_open(Connection& conn) override;
  void on_close(Connection& conn, const CloseInfo& info) override;

 private:
  std::size_t index_;
  bool opened_ = false;
};

class ClientSide final : public RelaySide {
 public:
  explicit ClientSide(std::shared_ptr<Upstreams> upstreams) noexcept
      : RelaySide(upstreams->options().max_buffered), upstreams_(std::move(upstreams)) {}

  void on_open(Connection& conn) override {
    conn_ = &conn;
    // Nothing is read until an upstream takes the client: what it sends waits in the kernel.
    conn.pause_reading();
    const std::chrono::milliseconds idle = upstreams_->options().idle_timeout;
    if (idle.count() > 0) {
      last_activity_ = conn.now();
      activity_ = &last_activity_;
      watch_idle(conn, idle);
    }
    connect_next("");
  }

  void on_close(Connection& /*conn*/, const CloseInfo& info) override {
    // An upstream still connecting has no Connection yet: close it through its handle.
    const bool connecting = other_ && !other_->conn_;
    sever(info);
    if (connecting) upstream_.close();
  }

  // The upstream side's news.
  void upstream_opened(std::size_t index) {
    upstreams_->mark_up(index);
    conn_->resume_reading();
  }
  void upstream_failed(std::size_t index, const CloseInfo& info) {
    other_ = nullptr;
    upstreams_->mark_down(index, conn_->now());
    if (tried_.empty()) tried_.assign(upstreams_->options().upstreams.size(), false);
    tried_[index] = true;
    connect_next(std::string(upstreams_->at(index).to_string()) + ": " + std::string(info.detail));
  }

 private:
  friend class UpstreamSide;

  // One timer per idle period, not per byte: it looks at the pair's last activity when due and
  // starts again from there. The connect counts as waiting on the pair: its own timeout
  // ends it first.
  void watch_idle(Connection& conn, std::chrono::milliseconds idle) {
    const auto due = last_activity_ + idle;
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(due - conn.now());
    conn.start_timer(std::max(wait, std::chrono::milliseconds(1)), [this, idle](Connection& c) {
      if (c.now() - last_activity_ >= idle)
        c.close("no byte either way for " + std::to_string(idle.count()) + " ms (proxy idle timeout)");
      else
        watch_idle(c, idle);
    });
  }

  void connect_next(const std::string& last_failure) {
    const std::size_t index = upstreams_->pick(conn_->now(), tried_);
    if (index == kNone) {
      conn_->close("no upstream answered (last: " + last_failure + ")");
      return;
    }
    auto side = std::make_unique<UpstreamSide>(*this, index, upstreams_->options().max_buffered);
    side->activity_ = activity_;
    other_ = side.get();
    try {
      upstream_ = conn_->loop().connect(upstreams_->at(index), std::move(side),
                                        ConnectOptions{upstreams_->options().connect_timeout});
    } catch (const ServerError& e) {  // no socket to be had (EMFILE...)
      other_ = nullptr;
      conn_->close(std::string("cannot connect to an upstream: ") + e.what());
    }
  }

  std::shared_ptr<Upstreams> upstreams_;
  std::chrono::steady_clock::time_point last_activity_{};
  ConnectionHandle upstream_;
  std::vector<bool> tried_;  // made at the first failure
};

UpstreamSide::UpstreamSide(ClientSide& client, std::size_t index, std::size_t max_buffered) noexcept
    : RelaySide(max_buffered), index_(index) {
  other_ = &client;
}

void UpstreamSide::on_open(Connection& conn) {
  conn_ = &conn;
  opened_ = true;
  if (other_) static_cast<ClientSide*>(other_)->upstream_opened(index_);
}

void UpstreamSide::on_close(Connection& /*conn*/, const CloseInfo& info) {
  if (!opened_ && other_ &&
      (info.reason == CloseReason::connect_failed || info.reason == CloseReason::connect_timeout)) {
    ClientSide* client = static_cast<ClientSide*>(std::exchange(other_, nullptr));
    client->upstream_failed(index_, info);
    return;
  }
  sever(info);
}

}  // namespace

HandlerFactory proxy_protocol(ProxyOptions options) {
  if (options.upstreams.empty()) throw ServerError("the proxy needs at least one upstream");
  if (options.max_buffered == 0) throw ServerError("the proxy's max_buffered must be positive");
  auto upstreams = std::make_shared<Upstreams>(std::move(options));
  return [upstreams] { return std::make_unique<ClientSide>(upstreams); };
}

}  // namespace iomux
