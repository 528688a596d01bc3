// chat_server: each line a client sends goes to every other connected client, followed by
// "\r\n", across event-loop threads (--threads N). It shows ConnectionHandle: a handler keeps
// its connection's handle in a shared room, and other connections' handlers, on other threads,
// write to it through the handle; the write runs on the receiving connection's own thread.
//
//   chat_server --model epoll --threads 2 --host 127.0.0.1 --port 7002
//
// A client that stops reading does not slow the others: a message for it is queued on its own
// connection, never waited for. The room counts, per member, the bytes sent its way and not yet
// taken by its socket; once a member is more than kMaxBehind behind it is disconnected, and
// the server logs "fell behind". (On the event-loop models the bytes wait in its output; on
// threaded its thread is stuck in send() and they wait in its mailbox; either way the count
// grows.) On the blocking model (one client at a time) there is nobody to talk to: it runs,
// alone.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "example_main.hpp"
#include "iomux/handler.hpp"

namespace {

constexpr std::size_t kMaxBehind = 1024 * 1024;

class Room {
 public:
  std::uint64_t join(iomux::ConnectionHandle handle, std::string peer) {
    std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    members_.emplace(id, Member{std::move(handle), std::move(peer), std::make_shared<Backlog>()});
    return id;
  }
  void leave(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    members_.erase(id);
  }
  // Any thread: queues `message` for every member but `from`.
  void broadcast(std::uint64_t from, std::string message, iomux::Logger& log) {
    std::vector<Member> others;
    {
      std::lock_guard lock(mutex_);
      others.reserve(members_.size());
      for (const auto& [id, member] : members_)
        if (id != from) others.push_back(member);
    }
    auto shared = std::make_shared<const std::string>(std::move(message));
    const std::size_t size = shared->size();
    for (const Member& to : others) {
      Backlog& backlog = *to.backlog;
      if (backlog.queued.load() + backlog.unsent.load() > kMaxBehind) {
        if (!backlog.evicted.exchange(true)) {
          log.warn("chat: {} fell behind (over {} bytes unread); disconnecting", to.peer, kMaxBehind);
          to.handle.close();
        }
        continue;
      }
      backlog.queued += size;
      const iomux::PostResult r = to.handle.post([shared, backlog = to.backlog](iomux::Connection& c) {
        c.write(shared);  // every member's queue references the one message: no copy each
        backlog->queued -= shared->size();
        backlog->unsent = c.pending_output();  // what its socket did not take
      });
      if (r != iomux::PostResult::posted) backlog.queued -= size;
    }
  }

 private:
  // What a member has not taken yet: bytes on their way to its thread, bytes its socket did
  // not take. Shared with the tasks posted to it.
  struct Backlog {
    std::atomic<std::size_t> queued{0};
    std::atomic<std::size_t> unsent{0};
    std::atomic<bool> evicted{false};
  };
  struct Member {
    iomux::ConnectionHandle handle;
    std::string peer;
    std::shared_ptr<Backlog> backlog;
  };
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, Member> members_;
  std::uint64_t next_id_ = 1;
};

class Chatter final : public iomux::Handler {
 public:
  explicit Chatter(std::shared_ptr<Room> room) : room_(std::move(room)) {}

  void on_open(iomux::Connection& conn) override { id_ = room_->join(conn.handle(), conn.peer().to_string()); }

  std::size_t on_data(std::span<const char> in, iomux::Connection& conn) override {
    return iomux_example::for_each_line(in, conn, [&](std::string_view line) {
      std::string message(line);
      message += "\r\n";
      room_->broadcast(id_, std::move(message), conn.log());
      conn.count_requests();
      return true;
    });
  }

  void on_close(iomux::Connection&, const iomux::CloseInfo&) override { room_->leave(id_); }

 private:
  std::shared_ptr<Room> room_;
  std::uint64_t id_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return iomux_example::run(argc, argv, iomux::handler_factory<Chatter>(std::make_shared<Room>()));
}
