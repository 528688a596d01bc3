// One client connection of a reactor thread. It owns its socket, the bytes of an unfinished
// request (only in line mode) and the replies the peer has not taken yet; both buffers are
// empty — no heap memory — on an idle connection.
//
// Reads go straight into the loop's shared scratch area, through the protocol core, and the
// replies leave with one send() (RequestStream, shared with the blocking models' Session). Pending output above --max-pending pauses
// reading from this connection (back-pressure) until it drains below half.
#pragma once

#include <cstdint>
#include <string_view>

#include "iomux/endpoint.hpp"
#include "iomux/event_loop.hpp"
#include "iomux/fd.hpp"
#include "iomux/timer_queue.hpp"
#include "server/request_stream.hpp"

namespace iomux::detail {

class ReactorThread;

class Connection final : public IoHandler {
 public:
  Connection(ReactorThread& owner, UniqueFd fd, const Endpoint& peer);
  ~Connection() override;

  // Loop thread. start() registers with the poller; false if it refused (closed then).
  bool start();
  void handle_events(std::uint32_t events) override;

  // Graceful shutdown: stop reading, close once owed replies are flushed.
  void drain();
  // Close now, logging `why`.
  void close(std::string_view why);
  void close(const char* why) { close(std::string_view(why)); }
  void close(const std::string& why) { close(std::string_view(why)); }

  int fd() const noexcept { return fd_.get(); }

 private:
  void on_readable(std::uint32_t events);
  void on_writable();
  // Answers what `chunk` brought and sends the replies. False when the connection closed.
  bool process(const RequestStream::Chunk& chunk);
  void after_output_change(std::size_t old_pending);
  void update_interest();
  void finish_or_linger();
  void arm_idle_timer();
  void on_idle_timer();

  enum class State : std::uint8_t {
    open,         // reading requests
    flushing,     // no more reading (peer half-closed, protocol error, drain): send then close
    lingering,    // sent everything after a protocol error; discard input until the peer closes
    closed,
  };

  ReactorThread& owner_;
  UniqueFd fd_;
  RequestStream stream_;  // its unfinished line and unsent replies
  Endpoint peer_;
  EventLoop::Clock::time_point last_activity_;
  TimerId timer_ = kNoTimer;
  std::uint32_t interest_ = 0;
  State state_ = State::open;
  bool paused_ = false;          // back-pressure: reading stopped until the replies drain
  bool peer_closed_ = false;     // read returned 0
  bool protocol_error_ = false;  // an error reply was queued; linger before closing
  const char* close_reason_ = "";
};

}  // namespace iomux::detail
