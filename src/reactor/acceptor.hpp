// Accepts connections for a reactor thread, and keeps accepting sanely when fds run out.
#pragma once

#include <cstdint>

#include "iomux/event_loop.hpp"
#include "iomux/fd.hpp"

namespace iomux::detail {

class ReactorThread;

class Acceptor final : public IoHandler {
 public:
  Acceptor(ReactorThread& owner, UniqueFd listener);

  // Loop thread.
  void start();
  void close();
  int fd() const noexcept { return listener_.get(); }

  void handle_events(std::uint32_t events) override;

 private:
  void shed_one();

  ReactorThread& owner_;
  UniqueFd listener_;
  // Held in reserve for EMFILE: see shed_one().
  UniqueFd spare_;
};

}  // namespace iomux::detail
