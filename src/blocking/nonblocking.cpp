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
// flag (and cuts the sleep short); the loop sees it within one pass. The pass loop itself is
// shared with the timeout model (visiting_server.cpp); this file is what differs.
#include <sys/socket.h>

#include <memory>
#include <thread>

#include "blocking/visiting_server.hpp"
#include "server/model_factory.hpp"

namespace iomux::detail::blocking {
namespace {

class NonblockingServer final : public VisitingServer {
 public:
  NonblockingServer(ServerOptions options, HandlerFactory factory)
      : VisitingServer(std::move(options), std::move(factory), /*non_blocking=*/true, SOCK_NONBLOCK) {
    ctx_.log().info("listening on {} (model {}, one thread polling every socket, {} ms back-off)",
                    ctx_.listening_description(), ctx_.options().model, ctx_.options().poll_interval.count());
  }

 private:
  bool accept_burst(Acceptor& acceptor, const ListenSocket& listener, const Endpoint& local) override {
    bool progress = false;
    for (int i = 0; i < kAcceptBurst; ++i) {
      Acceptor::Result a = acceptor.accept(listener);
      if (!a.fd) {
        if (a.failure == AcceptFailure::retry) continue;
        break;  // nobody waiting; anything else was logged: try again next pass
      }
      progress = true;
      add_connection(std::move(a.fd), a.peer, local, nullptr);
    }
    return progress;
  }

  // Nothing is ready anywhere: sleep the back-off (a stop() wakes it at once).
  void after_idle_pass(SteadyClock::time_point) override {
    const auto interval = ctx_.options().poll_interval;
    if (interval.count() > 0)
      stop_.sleep_for(interval);
    else
      std::this_thread::yield();
  }
};

}  // namespace
}  // namespace iomux::detail::blocking

namespace iomux::detail {

std::unique_ptr<Server> make_nonblocking_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<blocking::NonblockingServer>(std::move(options), std::move(factory));
}

}  // namespace iomux::detail
