// A handler that says which listener a connection came in on: the tutorial's reply, '|', then
// conn.local(). For the tests of several listeners, inherited or bound.
#pragma once

#include <span>
#include <string>

#include "iomux/handler.hpp"
#include "support/test_net.hpp"

namespace iomux::test {

struct ReportsItsListener : Handler {
  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    conn.write(kReply + "|" + conn.local().to_string() + "\n");
    return in.size();
  }
};

// What ReportsItsListener answers on `listener`.
inline std::string reply_for(const Endpoint& listener) {
  return kReply + "|" + listener.to_string() + "\n";
}

}  // namespace iomux::test
