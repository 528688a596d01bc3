// deferred_server: a line "N text" is answered "text\r\n" after N milliseconds, by a pool of
// worker threads, and pipelined lines are answered in request order even when a later one is
// ready first. It shows Connection::defer(): the handler reserves each reply's place in the
// order at once and hands the DeferredReply to another thread, which fills it whenever it is
// done; the library sends the replies in reservation order.
//
//   deferred_server --model threaded --host 127.0.0.1 --port 7001
//   printf '300 slow\n0 fast\n' | nc 127.0.0.1 7001     # slow, then fast
//
// Bounds: at most max_deferred replies outstanding per connection (the handler stops consuming
// at can_defer() == false; reading pauses and resumes by itself), at most kMaxJobs in the pool
// (beyond, a line is answered "ERROR busy" at once), delays up to kMaxDelay.
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "example_main.hpp"
#include "iomux/handler.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxJobs = 100'000;
constexpr long kMaxDelay = 60'000;  // ms

// Worker threads that fill deferred replies once their time comes.
class DelayPool {
 public:
  explicit DelayPool(unsigned workers) {
    for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this](std::stop_token stop) { work(stop); });
  }
  ~DelayPool() {
    for (auto& w : workers_) w.request_stop();
    cv_.notify_all();
  }

  // Fills `reply` with `text` at `due`; when the pool is full, at once with an error.
  void submit(Clock::time_point due, iomux::DeferredReply reply, std::string text) {
    {
      std::lock_guard lock(mutex_);
      if (jobs_.size() < kMaxJobs) {
        jobs_.push(Job{due, std::make_shared<iomux::DeferredReply>(std::move(reply)), std::move(text)});
        cv_.notify_one();
        return;
      }
    }
    reply.fill("ERROR busy\r\n");
  }

 private:
  struct Job {
    Clock::time_point due;
    std::shared_ptr<iomux::DeferredReply> reply;  // shared: a priority_queue copies its top out
    std::string text;
    bool operator>(const Job& o) const { return due > o.due; }
  };

  void work(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
      if (jobs_.empty()) {
        cv_.wait(lock, stop, [this] { return !jobs_.empty(); });
        continue;
      }
      const Clock::time_point due = jobs_.top().due;
      if (Clock::now() < due) {
        cv_.wait_until(lock, stop, due, [this, due] { return !jobs_.empty() && jobs_.top().due < due; });
        continue;
      }
      Job job = jobs_.top();
      jobs_.pop();
      lock.unlock();
      job.reply->fill(std::move(job.text));  // from this thread; the library posts it home
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable_any cv_;
  std::priority_queue<Job, std::vector<Job>, std::greater<>> jobs_;
  std::vector<std::jthread> workers_;  // last: they stop before the queue goes
};

class Deferred final : public iomux::Handler {
 public:
  explicit Deferred(std::shared_ptr<DelayPool> pool) : pool_(std::move(pool)) {}

  std::size_t on_data(std::span<const char> in, iomux::Connection& conn) override {
    return iomux_example::for_each_line(in, conn, [&](std::string_view line) {
      if (!conn.can_defer()) return false;  // the rest is kept; presented again as replies drain
      answer(line, conn);
      return true;
    });
  }

 private:
  void answer(std::string_view line, iomux::Connection& conn) {
    conn.count_requests();
    long delay = -1;
    const std::size_t space = line.find(' ');
    const std::string_view number = line.substr(0, space);
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), delay);
    if (space == std::string_view::npos || ec != std::errc() || end != number.data() + number.size() || delay < 0 ||
        delay > kMaxDelay) {
      conn.write_static("ERROR expected \"N text\", N in milliseconds up to 60000\r\n");
      return;
    }
    std::string reply(line.substr(space + 1));
    reply += "\r\n";
    pool_->submit(conn.now() + std::chrono::milliseconds(delay), conn.defer(), std::move(reply));
  }

  std::shared_ptr<DelayPool> pool_;
};

}  // namespace

int main(int argc, char** argv) {
  auto pool = std::make_shared<DelayPool>(4);
  return iomux_example::run(argc, argv, iomux::handler_factory<Deferred>(pool));
}
