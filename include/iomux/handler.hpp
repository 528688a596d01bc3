// Your protocol on every IO model: a Handler per connection, called by whichever of the ten
// models the server runs, chosen at run time.
//
//   struct Upper : iomux::Handler {
//     std::size_t on_data(std::span<const char> in, iomux::Connection& conn) override {
//       std::string_view text(in.data(), in.size());
//       std::size_t used = 0;
//       for (std::size_t nl; (nl = text.find('\n', used)) != text.npos; used = nl + 1) {
//         std::string line(text.substr(used, nl - used));
//         for (char& ch : line) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
//         conn.write(std::move(line += "\r\n"));
//       }
//       return used;                  // the unfinished line is kept and presented again
//     }
//   };
//   auto server = iomux::make_server(opts, iomux::handler_factory<Upper>());
//
// The library owns the input (muduo's and libevent's shape, which also fits io_uring's
// provided buffers): each on_data() call gets every byte not consumed yet and returns how many
// it used; the rest is kept, bounded, and presented again with the next bytes.
//
// Thread rules. Every Handler method and every Connection method runs on the connection's own
// thread: on the event-loop models (select, poll, epoll, epoll-et, sigio, uring, nonblocking,
// timeout) that is the loop thread, shared with many other connections, so a handler must not
// block; on blocking and threaded it is the connection's own thread. Other threads reach a
// connection only through a ConnectionHandle or a DeferredReply, which are safe from any thread.
// Debug builds assert the rule.
//
// Connections of one thread may act on each other directly: a handler may call the Connection
// of another connection on its own thread (one it opened with conn.loop().connect(), say) as
// that connection's own handler would, as libuv's handles and muduo's TcpConnections on one
// loop do. What it writes there is sent before the thread waits again (once, after the
// current call: several writes go out together). A proxy is made this way (src/protocols/
// proxy_handler.cpp). Keep such a reference only until that connection's on_close().
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "iomux/endpoint.hpp"
#include "iomux/log.hpp"
#include "iomux/stats.hpp"

namespace iomux {

namespace detail {
class ConnectionLink;
class Mailbox;
}  // namespace detail

class Connection;
class Loop;

using TimerId = std::uint64_t;  // 0 is never a valid id
inline constexpr TimerId kNoTimer = 0;

// Why a connection ended: the last thing its handler hears.
enum class CloseReason : std::uint8_t {
  peer_closed,        // the peer closed its side, and every reply owed was sent
  peer_reset,         // a reset or another socket error (CloseInfo::error says which)
  closed_by_handler,  // Connection::close(), close_after_flush(), or ConnectionHandle::close()
  input_limit,        // more unconsumed input than the connection's max_input
  output_limit,       // owed more than ServerOptions::max_output, and the peer is not reading
  send_timeout,       // the peer took no owed output for ServerOptions::send_timeout
  deferred_limit,     // more deferred replies than ServerOptions::max_deferred
  memory_budget,      // evicted to keep the server under ServerOptions::max_memory
  idle_timeout,       // silent for ServerOptions::idle_timeout
  handler_error,      // a handler method threw (what it wrote before was sent first)
  server_stopped,     // the server stopped (after its graceful drain, or at once)
  // Outbound connections only (Loop::connect), instead of on_open: the connection was never
  // established.
  connect_failed,   // refused, unreachable, no such Unix socket... (CloseInfo::error says which)
  connect_timeout,  // not established within ConnectOptions::timeout
};
std::string_view to_string(CloseReason reason) noexcept;

struct CloseInfo {
  CloseReason reason;
  int error = 0;            // errno, for peer_reset and connect_failed
  std::string_view detail;  // what the server logged, e.g. "reset by peer"
};

// What ConnectionHandle calls answer.
enum class PostResult : std::uint8_t {
  posted,  // queued; it runs on the connection's thread unless the connection closes first
  gone,    // the connection is closed (or the handle refers to none): nothing was queued
  full,    // ServerOptions::max_posted tasks are already waiting for this connection
};

// A connection's address from any thread. Copyable and cheap; it never dangles: it shares a
// small link with the connection (not the connection itself), which the connection severs as
// it closes, so every call after that answers PostResult::gone.
class ConnectionHandle {
 public:
  ConnectionHandle() noexcept = default;

  // Any thread. Runs `task` on the connection's thread with its Connection.
  [[nodiscard]] PostResult post(std::function<void(Connection&)> task) const;
  // Any thread. Queues `bytes` for sending (a post that calls Connection::write).
  [[nodiscard]] PostResult write(std::string bytes) const;
  // Any thread. The same without a copy: one message to many connections shares one buffer.
  [[nodiscard]] PostResult write(std::shared_ptr<const std::string> bytes) const;
  // Any thread. Closes the connection at once (owed replies are dropped), even when its thread
  // is blocked sending to a peer that does not read (blocking and threaded models). Not bounded
  // by max_posted.
  PostResult close() const;
  // Any thread. A hint: the connection may close right after the answer.
  [[nodiscard]] bool open() const noexcept;
  explicit operator bool() const noexcept { return static_cast<bool>(link_); }

 private:
  friend class Connection;
  explicit ConnectionHandle(std::shared_ptr<detail::ConnectionLink> link) noexcept : link_(std::move(link)) {}
  std::shared_ptr<detail::ConnectionLink> link_;
};

// A place in a connection's reply order, reserved now (Connection::defer) and filled later from
// any thread: replies written after it wait behind it. Move-only. Destroying it unfilled fills
// it with nothing, so the replies behind it are not held forever.
class DeferredReply {
 public:
  DeferredReply() noexcept = default;
  DeferredReply(DeferredReply&& other) noexcept;
  DeferredReply& operator=(DeferredReply&& other) noexcept;
  DeferredReply(const DeferredReply&) = delete;
  DeferredReply& operator=(const DeferredReply&) = delete;
  ~DeferredReply();

  // Any thread, once. False when the connection is already gone (the bytes are dropped), or
  // this reply was filled before or is empty.
  bool fill(std::string bytes);
  // True until filled.
  explicit operator bool() const noexcept { return static_cast<bool>(link_); }

 private:
  friend class Connection;
  DeferredReply(std::shared_ptr<detail::ConnectionLink> link, std::uint64_t id) noexcept
      : link_(std::move(link)), id_(id) {}
  std::shared_ptr<detail::ConnectionLink> link_;
  std::uint64_t id_ = 0;
};

// A loop's address from any thread (Loop::handle()): copyable, cheap, never dangles (it
// shares the loop's mailbox, not the loop).
class LoopHandle {
 public:
  LoopHandle() noexcept = default;
  // Any thread. Runs `task` on the loop's thread, not tied to any connection. At most
  // ServerOptions::max_posted tasks wait per loop: more answers PostResult::full (nothing is
  // queued: the caller decides, e.g. to retry later or drop). Once the loop has stopped (the
  // server stopped; on `threaded`, the connection whose thread it was closed): gone.
  [[nodiscard]] PostResult post(std::function<void()> task) const;
  // The same, with the loop: how a thread outside the server opens a connection on a loop
  // (`h.post([=](iomux::Loop& l) { l.connect(to, std::make_unique<H>()); })`).
  [[nodiscard]] PostResult post(std::function<void(Loop&)> task) const;
  explicit operator bool() const noexcept { return static_cast<bool>(mailbox_); }

 private:
  friend class Loop;
  LoopHandle(std::shared_ptr<detail::Mailbox> mailbox, Loop* loop) noexcept
      : mailbox_(std::move(mailbox)), loop_(loop) {}
  std::shared_ptr<detail::Mailbox> mailbox_;
  // Used only by a task running on the loop's thread: the loop exists then (its mailbox closes,
  // dropping what waits, before it goes).
  Loop* loop_ = nullptr;
};

class Handler;

// How Loop::connect() opens a connection.
struct ConnectOptions {
  // How long the connection may take to be established before it ends with
  // CloseReason::connect_timeout. Linux alone would retry an unanswered SYN for about two
  // minutes (tcp_syn_retries); 10 s covers three retransmissions (at 1, 3 and 7 s) of a lossy
  // path, and no client of a proxy waits two minutes. Zero: no limit but the kernel's.
  std::chrono::milliseconds timeout{10'000};
};

// The thread a connection runs on (Connection::loop()), for work that belongs to no
// connection: periodic jobs, caches to expire. An event loop (reactor and uring models, one per
// --threads); on the blocking family, the thread that serves the connection (docs/handlers.md
// says what that means for each model). A task or timer that throws is logged and counted as
// a handler error; the loop goes on. Timers and waiting tasks are dropped when the loop stops.
class Loop {
 public:
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Owner thread. Runs `callback` on this thread after `delay` (a periodic job starts the next
  // one from its callback). Not cancelled when the connection that started it closes.
  TimerId start_timer(std::chrono::milliseconds delay, std::function<void()> callback);
  // Owner thread. True when the timer was pending (it will not run). Only this loop's own
  // timers (start_timer above): a connection's timer id is not one of them.
  bool cancel_timer(TimerId id);
  // Any thread. For other threads (and other loops) to post to this one.
  [[nodiscard]] LoopHandle handle();
  [[nodiscard]] std::chrono::steady_clock::time_point now() const noexcept;

  // Owner thread. Opens a connection to `to` (a numeric IPv4/IPv6 address or a Unix socket:
  // resolve a host name before, never on the loop) served on this thread by `handler`, like
  // an accepted one: asio's async_connect and libuv's uv_tcp_connect, with the handler as the
  // callback. Returns at once; once established, on_open(); if it cannot be (refused,
  // unreachable, past options.timeout), on_close() with CloseReason::connect_failed (and the
  // errno) or connect_timeout, and no on_open(). Never calls the handler before it returns.
  // The handle works at once: bytes written through it (or by a posted task) before the
  // connection is established are sent once it is, so a proxy forwards its client's first
  // request without waiting. Everything an accepted connection has applies (bounds, memory
  // budget, back-pressure, timers, a graceful stop's drain), but max_connections, which
  // bounds what clients may open, not what the server's own handlers do. peer() is `to`;
  // local() is the address the kernel bound (known once established).
  ConnectionHandle connect(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options = {});

 protected:
  Loop() = default;
  ~Loop() = default;
};

// One connection as its handler sees it. The library owns it; a handler gets a reference in
// every call and must not keep it past on_close() (keep a ConnectionHandle instead). Every
// method: the connection's own thread only (see the thread rules above).
class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- Output. Bytes leave in the order of the calls, deferred places included. Writes after
  // close() or after the connection closed are ignored; a write (or defer()) after
  // shutdown_write() is the handler's error: the bytes are dropped, the error is logged and
  // counted, and the connection closes once what was owed before is sent
  // (CloseReason::handler_error, as if the handler had thrown).

  // Copies `bytes` (they need to live only during the call). Bytes that are part of the input
  // of the current on_data() call are not copied when they can be sent at once.
  void write(std::string_view bytes);
  void write(const char* bytes) { write(std::string_view(bytes)); }
  // Sends `bytes` without copying them: they must stay valid and unchanged for as long as the
  // server exists (a constant reply, a string literal).
  void write_static(std::string_view bytes);
  // Takes `bytes` over without copying; the library frees them once sent.
  void write(std::string&& bytes);
  void write(std::unique_ptr<char[]> bytes, std::size_t size);
  // Sends `bytes` without copying them; `owner` keeps them alive and unchanged until they are
  // sent (and until the kernel is done with them: on uring, after the connection closed too).
  // For values shared by many replies or connections (a cached value, a broadcast message):
  // the memory budget counts one owner's bytes once per connection, however many times its
  // replies reference them.
  void write(std::shared_ptr<const void> owner, std::string_view bytes);
  void write(std::shared_ptr<const std::string> bytes);
  // Reserves the next place in the reply order (see DeferredReply). At most
  // ServerOptions::max_deferred may be unfilled at once: reading pauses at that many, and one
  // more closes the connection (CloseReason::deferred_limit) and returns an empty reply.
  [[nodiscard]] DeferredReply defer();
  // Reads no more; sends every owed reply (deferred ones once filled), then FIN, then closes.
  // `reason` is what the disconnect log line says (default "closed by handler").
  void close_after_flush(std::string_view reason = {});
  // Closes now; owed replies are dropped. on_close() follows before this returns.
  void close(std::string_view reason = {});
  // Half-close: once every reply owed now (deferred ones once filled) has gone to the socket,
  // sends FIN (shutdown(SHUT_WR)); reading goes on, and the peer's FIN still comes as
  // on_peer_shutdown(). Nothing may be written after it (see above). When both sides are shut
  // (this and the peer's FIN, in either order) the connection closes by itself once the owed
  // bytes are sent (CloseReason::peer_closed). Idempotent.
  void shutdown_write();
  // shutdown_write() was called.
  [[nodiscard]] bool write_shut() const noexcept;

  // ---- Flow.

  // Bytes owed to the peer and not yet taken by the socket (filled deferred replies included).
  [[nodiscard]] std::size_t pending_output() const noexcept;
  // Deferred replies reserved and not filled yet, and whether one more may be reserved. A
  // handler that cannot answer without deferring stops consuming input when can_defer() is
  // false: reading is paused then, and the kept input is presented again once replies drain.
  [[nodiscard]] std::size_t deferred_outstanding() const noexcept;
  [[nodiscard]] bool can_defer() const noexcept;
  // True while reading is paused: by back-pressure (pending output over max_pending, or too
  // many deferred replies), by the server's memory budget, or by pause_reading().
  [[nodiscard]] bool reading_paused() const noexcept;
  // Stops reading until resume_reading() (libuv's uv_read_stop/uv_read_start): the socket is
  // not read, so the kernel's receive buffer fills and TCP slows the peer; input kept already
  // is not presented to on_data() again until the resume (on uring, bytes of a receive that
  // was in flight are kept too, past max_input if need be: the bound applies at the next
  // call). Independent of back-pressure: resuming does not lift a back-pressure pause, and
  // back-pressure ending (on_drain) does not lift this one. While paused the idle timeout
  // does not run (it is not the peer's silence); resuming restarts its clock. The kept input
  // is presented again after the current handler call returns (then on_data with it, even
  // with no new bytes). Owner thread: another connection of the thread may call them (a proxy
  // pauses its client while the upstream owes too much, and resumes it from the upstream's
  // on_drain). Both idempotent.
  void pause_reading() noexcept;
  void resume_reading() noexcept;
  // pause_reading() holds now (whatever back-pressure does).
  [[nodiscard]] bool reading_paused_by_hand() const noexcept;
  // Reads no more until every byte owed now has gone to the socket; then on_drain() is called
  // and the kept input is presented again, with or without new bytes. For a handler that stops
  // consuming because it has written enough for now (a pipeline of large replies): it is
  // called again once the peer has taken them.
  void wait_for_drain() noexcept;
  // Calls on_drain() once the output owed (pending_output()) has fallen to `at_most` bytes or
  // fewer, without pausing reading (wait_for_drain() does pause it): muduo's write-complete
  // callback, libevent's low watermark. Once per call; a later call replaces the mark. Already
  // there: on_drain() right after the current call. A proxy writes what one side reads to the
  // other, pauses the reading side while the writing side owes more than it wants, and asks
  // this of the writing side, whose on_drain() resumes the reader.
  void notify_drain(std::size_t at_most = 0) noexcept;
  // The most unconsumed input this connection may keep (ServerOptions::max_input to start).
  // A connection that keeps more is closed with CloseReason::input_limit.
  void set_max_input(std::size_t bytes) noexcept;
  [[nodiscard]] std::size_t max_input() const noexcept;
  // What the handler itself holds for this connection between calls (buffers it keeps), so
  // that the server's memory budget (ServerOptions::max_memory) and bytes_held count it. Set it
  // whenever it changes; it is accounted after the current call.
  void set_handler_memory(std::size_t bytes) noexcept;

  // ---- Timers: the callback runs on this connection's thread, never after on_close().
  TimerId start_timer(std::chrono::milliseconds delay, std::function<void(Connection&)> callback);
  // True when the timer was pending (it will not run).
  bool cancel_timer(TimerId id);

  // ---- Identity and services.

  // For other threads: see ConnectionHandle.
  [[nodiscard]] ConnectionHandle handle();
  // The thread this connection runs on, for timers and tasks that belong to no connection.
  [[nodiscard]] Loop& loop() const noexcept;
  [[nodiscard]] const Endpoint& peer() const noexcept;
  // The listener the connection came in on, as Server::local_endpoints() has it (one of
  // ServerOptions::listeners, with its real port): the same object for every connection of a
  // listener, so a handler can tell them apart by it. Not getsockname()'s answer: a wildcard
  // listener (0.0.0.0:7890) reports itself, not the address the client dialled, and asking
  // would cost a syscall per accept.
  [[nodiscard]] const Endpoint& local() const noexcept;
  [[nodiscard]] bool is_open() const noexcept;
  // When the current event started (the loop's clock): cheap, good for timeouts and dates.
  [[nodiscard]] std::chrono::steady_clock::time_point now() const noexcept;
  // Counts requests for the server's statistics and this connection's disconnect log line.
  void count_requests(std::uint64_t n = 1) noexcept;
  // The requests counted on this connection so far (count_requests()).
  [[nodiscard]] std::uint64_t requests() const noexcept;
  // The server's logger (log client bytes through escape_bytes()).
  [[nodiscard]] Logger& log() const noexcept;
  // The server's model name and its counters (summed over its threads).
  [[nodiscard]] std::string_view model() const noexcept;
  [[nodiscard]] StatsSnapshot server_stats() const;
  // The server's listening sockets were handed to another process (an upgrade,
  // StopMode::hand_over): it serves new connections, so this drain may take its time (up to
  // drain_timeout) to lose nothing, such as the first request of a client that has just
  // connected. Any thread.
  [[nodiscard]] bool server_handing_over() const noexcept;

 protected:
  Connection() = default;
  ~Connection() = default;
};

// One per connection, made by the server's HandlerFactory on the connection's thread.
class Handler {
 public:
  virtual ~Handler() = default;

  // The connection is accepted: the peer is conn.peer(). A greeting may be written here.
  virtual void on_open(Connection& /*conn*/) {}

  // `in` is every byte received and not consumed yet, oldest first. Return how many bytes were
  // used (0..in.size()); the rest is kept and presented again, with the next bytes appended.
  // `in` is valid only during this call (on uring it may be the kernel's receive buffer): copy
  // what must outlive it. Debug builds overwrite used input after the call, so a handler that
  // keeps a view into it sees garbage at once.
  virtual std::size_t on_data(std::span<const char> in, Connection& conn) = 0;

  // The peer shut down its sending side (read returned 0). Default: close after every owed
  // reply is sent.
  virtual void on_peer_shutdown(Connection& conn) { conn.close_after_flush(); }

  // Reading resumed after back-pressure: pending output fell to half of max_pending, the
  // deferred replies to half of max_deferred, or everything owed at wait_for_drain() was sent;
  // or the output fell to what notify_drain() asked.
  virtual void on_drain(Connection& /*conn*/) {}

  // A graceful stop began (Server::stop(StopMode::graceful or hand_over)): no more connections
  // are accepted (conn.server_handing_over() tells a hand-over to another process).
  // Return false (the default) and this connection reads no more: the replies owed are sent,
  // then it closes (CloseReason::server_stopped), so a request whose bytes are still on their
  // way is not answered. Return true to go on reading, so that it is: the handler then ends the
  // connection itself, close_after_flush() after its last reply (an HTTP server answers with
  // "Connection: close"), or ServerOptions::drain_timeout closes it. `input_waiting`: the peer
  // has sent bytes not consumed yet (kept, or still unread in the socket), part of a request as
  // far as the server can tell; an idle connection has none and is best let go at once. Called
  // once per connection, on the models that can keep reading while they drain: select, poll,
  // epoll, epoll-et, sigio, uring and nonblocking. blocking, threaded and timeout stop by
  // shutting each socket's reading side (it wakes the thread blocked in it): they never call it
  // and drain as for false; except in a hand-over, which shuts nothing down: they call it too.
  virtual bool on_server_drain(Connection& /*conn*/, bool /*input_waiting*/) { return false; }

  // The last call. `conn` can no longer send; its handle answers `gone` from now on.
  virtual void on_close(Connection& /*conn*/, const CloseInfo& /*info*/) {}
};

// Makes the handler for each new connection. Called on the thread that will serve it, so with
// --threads N (or the threaded model) it is called from several threads at once.
using HandlerFactory = std::function<std::unique_ptr<Handler>()>;

// A factory that makes `H(args...)` for every connection (the arguments are copied once).
template <typename H, typename... Args>
HandlerFactory handler_factory(Args... args) {
  return [=] { return std::make_unique<H>(args...); };
}

}  // namespace iomux
