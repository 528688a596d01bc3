#include "core/server_context.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "core/socket.hpp"
#include "iomux/upgrade.hpp"

namespace iomux::detail {

namespace {

// The fds of ServerOptions::inherited, owned at once: make_server takes them over whatever
// happens next.
std::vector<UniqueFd> own_inherited(std::vector<InheritedListener>& inherited) noexcept {
  std::vector<UniqueFd> out;
  try {
    out.reserve(inherited.size());
  } catch (...) {
    close_inherited(inherited);
    return out;
  }
  for (const InheritedListener& l : inherited) out.emplace_back(l.fd);
  return out;
}

}  // namespace

void close_inherited(const std::vector<InheritedListener>& inherited) noexcept {
  for (const InheritedListener& l : inherited)
    if (l.fd >= 0) ::close(l.fd);
}

ServerContext::ServerContext(ServerOptions options, HandlerFactory factory)
    : inherited_fds_(own_inherited(options.inherited)),
      inherited_count_(options.inherited.size()),
      options_(std::move(options)),
      factory_(std::move(factory)),
      logger_(options_.logger ? options_.logger : std::make_shared<Logger>()),
      budget_(options_.max_memory) {
  if (!factory_) throw ServerError("no handler factory given");
  if (options_.listeners.empty() && options_.inherited.empty())
    throw ServerError("no endpoint to listen on (ServerOptions::listeners and inherited are empty)");
  if (inherited_fds_.size() != inherited_count_) throw ServerError("out of memory for the inherited listeners");
}

std::unique_ptr<Handler> ServerContext::make_handler() const {
  std::unique_ptr<Handler> h = factory_();
  if (!h) throw ServerError("the handler factory returned no handler");
  return h;
}

SharedListener ServerContext::open_listener_on(const Endpoint& where, bool non_blocking, bool reuse_port) const {
  ListenOptions lo;
  lo.backlog = options_.backlog;
  lo.non_blocking = non_blocking;
  lo.reuse_port = reuse_port && !where.is_unix();
  std::error_code ec;
  std::string why;
  SharedListener listener = listen_on(where, lo, options_.unix_mode, ec, why);
  if (!listener) throw ServerError("cannot listen on " + where.to_string() + ": " + (why.empty() ? ec.message() : why));
  return listener;
}

std::vector<SharedListener> ServerContext::open_listeners(bool non_blocking, bool reuse_port, int loops) {
  // Inherited sockets a service manager gave (served first, in order), and the ones an
  // upgrade's predecessor opened for listeners[i] (named upgrade_listener_name(i)), which take
  // its place: binding it again would fail, or, under SO_REUSEPORT, open a second group.
  std::vector<SharedListener> given_by_manager;
  std::vector<std::vector<SharedListener>> handed(options_.listeners.size());
  for (std::size_t i = 0; i < inherited_fds_.size(); ++i) {
    const InheritedListener& given = options_.inherited[i];
    const std::string which = "inherited fd " + std::to_string(given.fd) +
                              (given.name.empty() ? std::string() : " ('" + escape_bytes(given.name) + "')");
    std::string why;
    SharedListener listener = adopt_listener(std::move(inherited_fds_[i]), why);
    if (!listener) throw ServerError("cannot serve on " + which + ": " + why);
    // The flag is the open file's, shared with whoever else holds the socket: systemd does
    // not accept on a socket it hands over (Accept=no), and an upgrade's predecessor runs the
    // same model, which wants the same.
    if (std::error_code ec = set_non_blocking(listener->fd(), non_blocking))
      throw ServerError("cannot serve on " + which + ": cannot set O_NONBLOCK: " + ec.message());
    const std::optional<std::size_t> place = upgrade_listener_index(given.name);
    if (place && *place < handed.size())
      handed[*place].push_back(std::move(listener));
    else
      given_by_manager.push_back(std::move(listener));
  }
  inherited_fds_.clear();
  std::vector<SharedListener> out;
  std::vector<Endpoint> where;
  for (SharedListener& l : given_by_manager) {
    manager_fds_.push_back(l->inherited_fd());
    for (const InheritedListener& given : options_.inherited)
      if (given.fd == l->inherited_fd()) manager_names_.push_back(given.name);
    l->enlist(registry_, out.size());
    out.push_back(std::move(l));
    where.push_back(out.back()->local());
  }
  for (std::size_t i = 0; i < options_.listeners.size(); ++i) {
    std::vector<SharedListener>& group = handed[i];
    if (group.empty()) {
      out.push_back(open_listener_on(options_.listeners[i], non_blocking, reuse_port));
      out.back()->enlist(registry_, out.size() - 1);
    } else {
      if (group.size() > static_cast<std::size_t>(std::max(loops, 1))) {
        // Each loop takes one of them; more than there are loops would leave some unread, and
        // what the kernel queues on an unread SO_REUSEPORT socket is lost: they are closed
        // here (the predecessor accepts on them until it drains).
        logger_->warn("{} listening sockets handed over for {}, for {} loop{}: the extra ones are not served",
                      group.size(), options_.listeners[i].to_string(), loops, loops == 1 ? "" : "s");
        group.resize(static_cast<std::size_t>(std::max(loops, 1)));
      }
      for (SharedListener& l : group) l->enlist(registry_, out.size());
      out.push_back(group.front());
      if (group.size() > 1) groups_.emplace(out.size() - 1, std::move(group));
    }
    where.push_back(out.back()->local());
  }
  if (listening_.empty()) listening_ = std::move(where);
  return out;
}

SharedListener ServerContext::listener_for_another_loop(const SharedListener& first, int loop) const {
  // Several sockets handed over for one endpoint (the predecessor's loops' SO_REUSEPORT
  // group): one per loop, so that each is accepted from; shared when there are more loops.
  if (const auto group = groups_.find(first->endpoint_index()); group != groups_.end())
    return group->second[static_cast<std::size_t>(loop) % group->second.size()];
  // An inherited TCP socket is shared too: binding another on its port would need
  // SO_REUSEPORT on the socket we were given, and would open one its owner does not hold.
  if (!first->tcp() || first->inherited()) return first;
  SharedListener another = open_listener_on(first->local(), /*non_blocking=*/true, /*reuse_port=*/true);
  another->enlist(registry_, first->endpoint_index());
  return another;
}

std::vector<InheritedListener> ServerContext::duplicate_listeners() const {
  std::vector<InheritedListener> out;
  // Owned until returned: a failure part-way closes what was duplicated.
  std::vector<UniqueFd> owned;
  {
    std::lock_guard lock(registry_->mutex);
    out.reserve(registry_->live.size());
    owned.reserve(registry_->live.size());
    for (const ListenSocket* l : registry_->live) {
      UniqueFd copy(::fcntl(l->fd(), F_DUPFD_CLOEXEC, 0));
      if (!copy)
        throw ServerError("cannot duplicate the listener on " + l->local().to_string() + ": " + last_error().message());
      const std::size_t i = l->endpoint_index();
      const std::size_t managed = manager_fds_.size();
      out.push_back({copy.get(), i < managed ? manager_names_[i] : upgrade_listener_name(i - managed)});
      owned.push_back(std::move(copy));
    }
  }
  for (UniqueFd& fd : owned) fd.release();
  return out;
}

std::string ServerContext::listening_description() const {
  std::string out;
  for (std::size_t i = 0; i < listening_.size(); ++i) {
    if (!out.empty()) out += ", ";
    out += listening_[i].to_string();
    if (i < manager_fds_.size()) out += " (inherited fd " + std::to_string(manager_fds_[i]) + ")";
  }
  return out;
}

std::unique_ptr<Handler> ServerContext::admit(ThreadStats& stats, const Endpoint& peer) {
  if (!reserve(stats, peer)) return nullptr;
  return handler_for(stats, peer);
}

bool ServerContext::reserve(ThreadStats& stats, const Endpoint& peer) {
  std::size_t max = options_.max_connections;
  std::size_t open = open_.fetch_add(1, std::memory_order_relaxed);
  if (max == 0 || open < max) return true;
  open_.fetch_sub(1, std::memory_order_relaxed);
  refuse(stats, fmt::format("connection limit reached (max_connections {}) for {}", max, peer.to_string()));
  return false;
}

std::unique_ptr<Handler> ServerContext::handler_for(ThreadStats& stats, const Endpoint& peer) {
  try {
    std::unique_ptr<Handler> handler = make_handler();
    stats.connections_accepted.add();
    return handler;
  } catch (const std::exception& e) {
    release();
    refuse(stats, fmt::format("the handler factory failed for {}: {}", peer.to_string(), e.what()));
    return nullptr;
  }
}

AcceptFailure ServerContext::accept_failed(int err, int listener, SpareFd& spare, ThreadStats& stats, bool* shed_more) {
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      return AcceptFailure::none_waiting;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      return AcceptFailure::retry;
    case EINVAL:
      return AcceptFailure::listener_closed;
    case EMFILE:
    case ENFILE: {
      const bool more = spare.shed(listener);
      if (shed_more) *shed_more = more;
      stats.connections_refused.add();
      log_accept_error(err);
      return AcceptFailure::out_of_fds;
    }
    default:
      log_accept_error(err);
      return AcceptFailure::transient;
  }
}

void ServerContext::refuse(ThreadStats& stats, std::string_view why) {
  stats.connections_refused.add();
  std::uint64_t suppressed = 0;
  if (!logger_->enabled(LogLevel::warn) || !refuse_limiter_.allow(&suppressed)) return;
  if (suppressed)
    logger_->warn("refused a connection: {} ({} more refusals not logged)", why, suppressed);
  else
    logger_->warn("refused a connection: {}", why);
}

void ServerContext::log_accept_error(int err) {
  std::uint64_t suppressed = 0;
  if (!accept_error_limiter_.allow(&suppressed)) return;
  logger_->error("accept failed: {}{}", describe_errno(err),
                 suppressed ? fmt::format(" ({} more not logged)", suppressed) : std::string());
}

void ServerContext::log_eviction(const Endpoint& peer, std::size_t held) {
  std::uint64_t suppressed = 0;
  if (!logger_->enabled(LogLevel::warn) || !eviction_limiter_.allow(&suppressed)) return;
  logger_->warn("evicting {}: it holds {} bytes and the server {} of max_memory {}{}", peer.to_string(), held,
                budget_.used(), budget_.limit(),
                suppressed ? fmt::format(" ({} more evictions not logged)", suppressed) : std::string());
}

void ServerContext::log_connect(const Endpoint& peer, const Endpoint& local, int fd) const {
  if (!logger_->enabled(LogLevel::info)) return;
  // A Unix client is usually unnamed: the listener is what tells one from another.
  if (listening_.size() > 1 || peer.is_unix())
    logger_->info("connect {} on {} (fd {}, {} open)", peer.to_string(), local.to_string(), fd,
                  open_.load(std::memory_order_relaxed));
  else
    logger_->info("connect {} (fd {}, {} open)", peer.to_string(), fd, open_.load(std::memory_order_relaxed));
}

void ServerContext::log_outbound(const Endpoint& peer, const Endpoint& local, int fd) const {
  if (!logger_->enabled(LogLevel::info)) return;
  logger_->info("connected to {} from {} (fd {})", peer.to_string(), local.to_string(), fd);
}

void ServerContext::log_connect_failed(const Endpoint& peer, std::string_view why) {
  // An upstream that is down fails every connect to it: rate-limited like refusals.
  std::uint64_t suppressed = 0;
  if (!logger_->enabled(LogLevel::warn) || !connect_failure_limiter_.allow(&suppressed)) return;
  logger_->warn("connect to {} failed: {}{}", peer.to_string(), why,
                suppressed ? fmt::format(" ({} more not logged)", suppressed) : std::string());
}

void ServerContext::log_disconnect(const Endpoint& peer, const Endpoint& local, std::string_view why,
                                   std::uint64_t requests) const {
  if (!logger_->enabled(LogLevel::info)) return;
  if (listening_.size() > 1 || peer.is_unix())
    logger_->info("disconnect {} on {}: {} ({} requests)", peer.to_string(), local.to_string(), why, requests);
  else
    logger_->info("disconnect {}: {} ({} requests)", peer.to_string(), why, requests);
}

std::string describe_errno(int err) {
  switch (err) {
    case ECONNRESET:
      return "reset by peer";
    case EPIPE:
      return "peer stopped reading (broken pipe)";
    case ETIMEDOUT:
      return "timed out";
    default:
      return std::strerror(err);
  }
}

}  // namespace iomux::detail
