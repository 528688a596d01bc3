// Threads a test's handlers start (outside writers, reply fillers, posters), joined when the test
// is done with them or at the latest when the Workers object goes. Declare it before the server
// whose handlers use it, so the threads are joined after the server has stopped calling them.
#pragma once

#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace iomux::test {

class Workers {
 public:
  Workers() = default;
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;
  ~Workers() { join(); }

  // Starts f on a thread of its own; safe from any thread, handlers' included.
  template <typename F>
  void run(F&& f) {
    std::lock_guard lock(mutex_);
    threads_.emplace_back(std::forward<F>(f));
  }

  // Joins every thread started so far.
  void join() {
    std::vector<std::thread> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(threads_);
    }
    for (auto& t : all) t.join();
  }

 private:
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

}  // namespace iomux::test
