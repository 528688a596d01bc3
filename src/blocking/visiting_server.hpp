// The loop of the two models that visit every connection in turn, one thread for all of them
// (nonblocking and timeout, the tutorial's sections 3 and 4): each pass runs due timers
// (idle timeouts among them) and mail, accepts a burst of new connections, gives every
// connection one BlockingTransport::visit(), and drops the closed ones. Stopping is the blocking
// family's (stop_control.hpp): a graceful stop closes the listener and keeps passing until the
// owed replies are out or the drain watchdog cuts it after drain_timeout; an immediate stop
// ends the loop at once.
//
// What makes the two models different is left to them: how a pass accepts (and sets up) new
// connections, and what the thread does after a pass in which nothing moved.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "blocking/acceptor.hpp"
#include "blocking/blocking_transport.hpp"
#include "core/thread_stats.hpp"
#include "iomux/server.hpp"

namespace iomux::detail::blocking {

class VisitingServer : public Server {
 public:
  void run() final;
  void stop(StopMode mode) noexcept final {
    if (mode == StopMode::hand_over) ctx_.hand_over_listeners();
    stop_.request(mode);
  }
  std::vector<InheritedListener> duplicate_listeners() const final { return ctx_.duplicate_listeners(); }

  std::vector<Endpoint> local_endpoints() const final { return ctx_.listening_on(); }
  StatsSnapshot stats() const final;
  std::string_view model() const noexcept final { return ctx_.options().model; }
  std::vector<LoopHandle> loops() final { return {executor_.handle()}; }

 protected:
  // Opens the listeners (O_NONBLOCK or not). `accept_flags` are accept4()'s for new sockets.
  VisitingServer(ServerOptions options, HandlerFactory factory, bool non_blocking, int accept_flags);

  // Accepts what is waiting on one listener (`local`: its endpoint), at most a burst, into
  // connections_ (add_connection()). True if anything moved. A pass visits every listener.
  virtual bool accept_burst(Acceptor& acceptor, const ListenSocket& listener, const Endpoint& local) = 0;
  // After a pass that started at `pass_start` and moved nothing: wait for something to do.
  virtual void after_idle_pass(SteadyClock::time_point pass_start) = 0;
  // Stops accepting; the loop calls it on a graceful stop and at the end.
  virtual void close_listeners() { listeners_.clear(); }

  // Admits an accepted connection (ServerContext::admit) and serves it. `stop`: see
  // BlockingTransport.
  void add_connection(UniqueFd fd, const Endpoint& peer, const Endpoint& local, StopControl* stop);

  // Loop::connect (BlockingLoop::set_connector): a non-blocking connect(), visited like every
  // connection from the next pass on (the pass may be iterating connections_ now).
  ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options);

  ServerContext ctx_;
  StopControl stop_;
  ThreadStats stats_;
  BlockingLoop executor_;
  std::vector<SharedListener> listeners_;  // in ServerContext::listening_on()'s order
  std::vector<std::unique_ptr<BlockingTransport>> connections_;
  std::vector<std::unique_ptr<BlockingTransport>> opened_;  // outbound, made during a pass

 private:
  int accept_flags_;
  bool non_blocking_;
};

}  // namespace iomux::detail::blocking
