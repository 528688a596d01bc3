// Accepts connections for a reactor thread, and keeps accepting sanely when fds run out.
#pragma once

#include <cstdint>

#include "core/fd.hpp"
#include "core/spare_fd.hpp"
#include "reactor/event_loop.hpp"

namespace iomux::detail::reactor {

class ReactorLoop;

class Acceptor final : public IoHandler {
 public:
  Acceptor(ReactorLoop& owner, UniqueFd listener);

  // Loop thread.
  void start();
  void close();
  int fd() const noexcept { return listener_.get(); }

  void handle_events(std::uint32_t events) override;

 private:
  ReactorLoop& owner_;
  UniqueFd listener_;
  SpareFd spare_;  // for EMFILE
};

}  // namespace iomux::detail::reactor
