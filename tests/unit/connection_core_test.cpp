// The connection lifecycle every engine shares (ConnectionCore), driven without sockets
// (CoreHarness): what a handler is told and when, what is kept and bounded, what leaves and in
// which order, and how it ends. The same contract runs over real sockets on every model in
// tests/integration/handler_contract_test.cpp.
#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/core_harness.hpp"

namespace iomux::test {
namespace {

using namespace std::chrono_literals;

// A handler whose every call is scripted by the test, and which records what it was told.
struct Script {
  std::function<void(Connection&)> on_open;
  std::function<std::size_t(std::string_view, Connection&)> on_data;
  std::function<void(Connection&)> on_peer_shutdown;
  std::vector<std::string> events;
  std::optional<CloseInfo> closed;
  std::string close_detail;
};

class Scripted final : public Handler {
 public:
  explicit Scripted(Script& s) : s_(s) {}
  void on_open(Connection& c) override {
    s_.events.push_back("open");
    if (s_.on_open) s_.on_open(c);
  }
  std::size_t on_data(std::span<const char> in, Connection& c) override {
    s_.events.push_back("data:" + std::string(in.data(), in.size()));
    return s_.on_data ? s_.on_data({in.data(), in.size()}, c) : in.size();
  }
  void on_peer_shutdown(Connection& c) override {
    s_.events.push_back("peer_shutdown");
    if (s_.on_peer_shutdown)
      s_.on_peer_shutdown(c);
    else
      c.close_after_flush();
  }
  void on_drain(Connection&) override { s_.events.push_back("drain"); }
  void on_close(Connection& c, const CloseInfo& info) override {
    s_.events.push_back("close");
    s_.closed = info;
    s_.close_detail = std::string(info.detail);
    c.write("ignored after close");
  }

 private:
  Script& s_;
};

HandlerFactory scripted(Script& s) {
  return [&s] { return std::make_unique<Scripted>(s); };
}

ServerOptions options(std::function<void(ServerOptions&)> tweak = {}) {
  ServerOptions o = CoreHarness::quiet_options();
  if (tweak) tweak(o);
  return o;
}

TEST(ConnectionCore, UnconsumedInputIsPresentedAgainWithTheNextBytes) {
  Script s;
  s.on_data = [](std::string_view in, Connection&) { return in.size() >= 4 ? std::size_t{4} : std::size_t{0}; };
  CoreHarness h(scripted(s));
  h.feed("ab");
  h.feed("cdef");
  EXPECT_EQ(s.events, (std::vector<std::string>{"open", "data:ab", "data:abcdef"}));
  EXPECT_EQ(h.core().kept_input().view(), "ef");
}

TEST(ConnectionCore, KeptInputOverMaxInputClosesAndTheHandlerIsTold) {
  Script s;
  s.on_data = [](std::string_view, Connection&) { return std::size_t{0}; };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_input = 8; }));
  h.feed("12345678");
  EXPECT_TRUE(h.open());
  h.feed("9");
  EXPECT_FALSE(h.open());
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.closed->reason, CloseReason::input_limit);
  EXPECT_NE(s.close_detail.find("over the limit of 8"), std::string::npos);
}

TEST(ConnectionCore, RepliesLeaveInCallOrderWhateverTheirKind) {
  Script s;
  static const std::string constant = "[static]";
  s.on_data = [](std::string_view in, Connection& c) {
    c.write("[copy]");
    c.write_static(constant);
    c.write(std::string(40, 'm'));
    auto bytes = std::make_unique<char[]>(5);
    std::memcpy(bytes.get(), "[arr]", 5);
    c.write(std::move(bytes), 5);
    c.write(in);  // the input itself
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("<in>");
  EXPECT_EQ(h.take_output(), "[copy][static]" + std::string(40, 'm') + "[arr]<in>");
}

TEST(ConnectionCore, DeferredRepliesFilledOutOfOrderFromOtherThreadsLeaveInOrder) {
  Script s;
  std::vector<DeferredReply> places;
  s.on_data = [&](std::string_view in, Connection& c) {
    c.write("a|");
    places.push_back(c.defer());
    c.write("c|");
    places.push_back(c.defer());
    c.write("e");
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("go");
  EXPECT_EQ(h.take_output(), "a|");
  EXPECT_EQ(h.core().deferred_outstanding(), 2u);
  std::thread([&] { EXPECT_TRUE(places[1].fill("D|")); }).join();
  h.run_mail();
  EXPECT_EQ(h.take_output(), "");  // waits behind the first place
  std::thread([&] { EXPECT_TRUE(places[0].fill("B|")); }).join();
  h.run_mail();
  EXPECT_EQ(h.take_output(), "B|c|D|e");
  EXPECT_FALSE(places[0].fill("twice"));
}

TEST(ConnectionCore, ADeferredReplyDroppedUnfilledDoesNotHoldTheRest) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    { DeferredReply forgotten = c.defer(); }
    c.write("after");
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("x");
  h.run_mail();
  EXPECT_EQ(h.take_output(), "after");
}

TEST(ConnectionCore, ReadingPausesAtMaxDeferredAndOneMoreCloses) {
  Script s;
  std::vector<DeferredReply> places;
  s.on_data = [&](std::string_view in, Connection& c) {
    for (char ch : in) {
      if (ch == '!') {
        while (c.is_open()) places.push_back(c.defer());  // a handler that ignores can_defer()
      }
      places.push_back(c.defer());
    }
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_deferred = 3; }));
  h.feed("abc");
  EXPECT_TRUE(h.core().reading_paused());
  h.feed("d");
  EXPECT_EQ(h.unread(), 1u);  // not read while paused
  for (auto& p : places) p.fill("x");
  places.clear();
  h.run_mail();
  EXPECT_FALSE(h.core().reading_paused());
  EXPECT_EQ(h.unread(), 0u);
  EXPECT_EQ(s.events.back(), "data:d");
  h.feed("!");
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::deferred_limit);
}

TEST(ConnectionCore, CloseAfterFlushSendsEveryReplyDeferredOnesTooThenFin) {
  Script s;
  DeferredReply later;
  s.on_data = [&](std::string_view in, Connection& c) {
    c.write("now|");
    later = c.defer();
    c.write("last");
    c.close_after_flush();
    c.write("?");  // still owed: it goes before the FIN
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("bye");
  EXPECT_EQ(h.take_output(), "now|");
  EXPECT_FALSE(h.fin_sent());
  later.fill("filled|");
  h.run_mail();
  EXPECT_EQ(h.take_output(), "filled|last?");
  EXPECT_TRUE(h.fin_sent());
  EXPECT_TRUE(h.open());  // lingering: reading and discarding until the peer closes
  h.feed("ignored");
  EXPECT_EQ(s.events.back(), "data:bye");
  h.peer_shutdown();
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::closed_by_handler);
}

TEST(ConnectionCore, LingerEndsAfterTwoSecondsWithoutThePeersClose) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.close_after_flush("done");
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("x");
  EXPECT_TRUE(h.fin_sent());
  h.advance(1999ms);
  EXPECT_TRUE(h.open());
  h.advance(2ms);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.close_detail, "done");
}

TEST(ConnectionCore, ThePeersShutdownFlushesThenClosesByDefault) {
  Script s;
  CoreHarness h(scripted(s));
  h.stall(true);
  s.on_data = [](std::string_view in, Connection& c) {
    c.write("reply");
    return in.size();
  };
  h.feed("x");
  h.peer_shutdown();
  EXPECT_TRUE(h.open());  // a reply is still owed
  h.stall(false);
  EXPECT_EQ(h.take_output(), "reply");
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::peer_closed);
}

TEST(ConnectionCore, CloseNowDropsOwedRepliesAndOnCloseIsTheLastCall) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write("never sent");
    c.close("bad request");
    EXPECT_FALSE(c.is_open());
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("x");
  EXPECT_EQ(h.take_output(), "");
  EXPECT_EQ(s.events, (std::vector<std::string>{"open", "data:x", "close"}));
  EXPECT_EQ(s.close_detail, "bad request");
}

TEST(ConnectionCore, AHandlerThatThrowsIsClosedWithTheReason) {
  Script s;
  s.on_data = [](std::string_view, Connection&) -> std::size_t { throw std::runtime_error("boom"); };
  CoreHarness h(scripted(s));
  h.feed("x");
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::handler_error);
  EXPECT_NE(s.close_detail.find("boom"), std::string::npos);
  EXPECT_EQ(h.thread_stats().handler_errors.get(), 1u);
}

TEST(ConnectionCore, AHandlerThatThrowsAfterWritingSendsWhatItWroteThenCloses) {
  // `one\nTHROW\n`: the answer to `one` was written before the throw and is owed as much as
  // any reply (before, the peer got only EOF). The handler is not called again.
  Script s;
  int calls = 0;
  s.on_data = [&](std::string_view in, Connection& c) -> std::size_t {
    ++calls;
    c.write("answer to one\n");
    c.write(std::string(100, 'x'));
    c.start_timer(10ms, [](Connection& conn) { conn.write("from a timer of a broken handler"); });
    if (in.find("THROW") != std::string_view::npos) throw std::runtime_error("boom");
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("one\nTHROW\n");
  EXPECT_EQ(h.take_output(), "answer to one\n" + std::string(100, 'x'));
  EXPECT_TRUE(h.fin_sent());
  h.feed("more");
  h.advance(3s);  // the linger ends
  EXPECT_FALSE(h.open());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(h.take_output(), "");
  EXPECT_EQ(s.closed->reason, CloseReason::handler_error);
  EXPECT_NE(s.close_detail.find("boom"), std::string::npos);
  EXPECT_EQ(h.thread_stats().handler_errors.get(), 1u);
}

TEST(ConnectionCore, APostedTaskThatThrowsAfterWritingSendsWhatItWrote) {
  Script s;
  ConnectionHandle handle;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  CoreHarness h(scripted(s));
  ASSERT_EQ(handle.post([](Connection& c) {
    c.write("written by the task\n");
    throw std::runtime_error("task failed");
  }),
            PostResult::posted);
  ASSERT_EQ(handle.post([](Connection& c) { c.write("never: the handler is broken\n"); }), PostResult::posted);
  h.run_mail();
  EXPECT_EQ(h.take_output(), "written by the task\n");
  h.advance(3s);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::handler_error);
}

TEST(ConnectionCore, WhatTheHandlerHoldsCountsTowardTheBudgetUntilClose) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.set_handler_memory(in == "grow" ? 5000 : 100);
    return in.size();
  };
  CoreHarness h(scripted(s));
  const auto used = [&] { return h.server_context().budget_used(); };
  EXPECT_EQ(used(), 0u);
  h.feed("grow");
  EXPECT_EQ(used(), 5000u);
  EXPECT_EQ(h.core().held(), 5000u);
  h.feed("shrink");
  EXPECT_EQ(used(), 100u);
  h.core().close(CloseReason::closed_by_handler, 0, "test");
  EXPECT_EQ(used(), 0u);
}

TEST(ConnectionCore, AHandlerThatClaimsMoreThanItWasGivenIsClosed) {
  Script s;
  s.on_data = [](std::string_view in, Connection&) { return in.size() + 1; };
  CoreHarness h(scripted(s));
  h.feed("x");
  EXPECT_EQ(s.closed->reason, CloseReason::handler_error);
}

TEST(ConnectionCore, PendingOutputOverMaxPendingPausesAndHalfResumesWithOnDrain) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write(std::string(600, 'r'));
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_pending = 1000; }));
  h.stall(true);
  h.feed("1");
  EXPECT_FALSE(h.core().reading_paused());
  h.feed("2");
  EXPECT_TRUE(h.core().reading_paused());
  h.feed("3");
  EXPECT_EQ(h.unread(), 1u);
  h.stall(false);  // the peer reads: everything leaves, reading resumes
  EXPECT_FALSE(h.core().reading_paused());
  EXPECT_EQ(h.unread(), 0u);
  EXPECT_EQ(std::count(s.events.begin(), s.events.end(), "drain"), 1);
  EXPECT_EQ(h.take_output(), std::string(1800, 'r'));
}

TEST(ConnectionCore, OnResumeKeptInputIsPresentedAgainWithoutNewBytes) {
  // A handler that stops consuming while it cannot defer must hear its input again once
  // replies drain, even if the peer sends nothing more (it waits for the answers).
  Script s;
  std::vector<DeferredReply> places;
  s.on_data = [&](std::string_view in, Connection& c) {
    std::size_t used = 0;
    while (used < in.size() && c.can_defer()) {
      places.push_back(c.defer());
      ++used;
    }
    return used;
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_deferred = 2; }));
  h.feed("abcd");
  EXPECT_EQ(h.core().kept_input().view(), "cd");
  for (auto& p : places) p.fill(".");
  places.clear();
  h.run_mail();
  EXPECT_NE(std::find(s.events.begin(), s.events.end(), "data:cd"), s.events.end());
  EXPECT_EQ(h.core().kept_input().view(), "");
  EXPECT_EQ(h.core().deferred_outstanding(), 2u);
}

TEST(ConnectionCore, OutputOverMaxOutputClosesAConnectionThatDoesNotRead) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write(std::string(5000, 'z'));
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) {
                  o.max_pending = 1000;
                  o.max_output = 4000;
                }));
  h.stall(true);
  h.feed("x");
  EXPECT_TRUE(h.open());  // a peer that reads may take it: it has a second to start
  h.advance(500ms);
  EXPECT_TRUE(h.open());
  h.advance(600ms);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::output_limit);
}

TEST(ConnectionCore, OutputOverMaxOutputReachesAPeerThatKeepsReading) {
  // One large reply a handler chose to write is not fatal (before: closed at once, output_limit).
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write(std::string(50'000, 'z'));
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) {
                  o.max_pending = 1000;
                  o.max_output = 4000;
                }));
  h.stall(true);
  h.feed("x");
  for (int i = 0; i < 5; ++i) {
    h.advance(900ms);
    h.stall(false);  // takes everything owed, then stops taking again
    h.stall(true);
  }
  EXPECT_TRUE(h.open());
  EXPECT_EQ(h.take_output(), std::string(50'000, 'z'));
}

TEST(ConnectionCore, APeerThatTakesNoOutputForSendTimeoutIsClosed) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write("a small reply");
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.send_timeout = 5s; }));
  h.stall(true);
  h.feed("x");
  h.advance(4s);
  EXPECT_TRUE(h.open());
  h.advance(2s);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::send_timeout);
  EXPECT_EQ(h.thread_stats().connections_timed_out.get(), 1u);
}

TEST(ConnectionCore, ASendTimeoutCountsFromTheLastProgressNotTheFirstByte) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write(std::string(10'000, 'p'));
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.send_timeout = 5s; }));
  h.stall(true);
  h.feed("x");
  h.advance(4s);
  h.feed("y");  // more owed, nothing taken: no progress
  h.advance(2s);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::send_timeout);
}

TEST(ConnectionCore, WaitingForADeferredReplyIsNotASendTimeout) {
  Script s;
  DeferredReply later;
  s.on_data = [&](std::string_view in, Connection& c) {
    later = c.defer();
    c.write("behind the deferred reply");
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.send_timeout = 5s; }));
  h.feed("x");
  h.advance(20s);
  EXPECT_TRUE(h.open());
  later.fill("first|");
  h.run_mail();
  EXPECT_EQ(h.take_output(), "first|behind the deferred reply");
}

TEST(ConnectionCore, TimersRunOnTheConnectionAndNeverAfterClose) {
  Script s;
  int fired = 0;
  TimerId cancelled = kNoTimer;
  s.on_open = [&](Connection& c) {
    c.start_timer(10ms, [&](Connection& conn) {
      ++fired;
      conn.write("tick");
    });
    cancelled = c.start_timer(20ms, [&](Connection&) { fired += 100; });
    c.start_timer(50ms, [&](Connection&) { fired += 1000; });
  };
  CoreHarness h(scripted(s));
  Connection& conn = h.core();
  EXPECT_TRUE(conn.cancel_timer(cancelled));
  EXPECT_FALSE(conn.cancel_timer(cancelled));
  h.advance(30ms);
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(h.take_output(), "tick");
  conn.close();
  h.advance(100ms);
  EXPECT_EQ(fired, 1);
}

TEST(ConnectionCore, AHandleRunsTasksOnTheOwnerAndSaysGoneAfterClose) {
  Script s;
  ConnectionHandle handle;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  CoreHarness h(scripted(s));
  ASSERT_TRUE(handle.open());
  std::thread([&] { EXPECT_EQ(handle.write("from another thread"), PostResult::posted); }).join();
  EXPECT_EQ(h.take_output(), "");  // nothing runs until the owner takes its mail
  h.run_mail();
  EXPECT_EQ(h.take_output(), "from another thread");
  std::thread([&] { EXPECT_EQ(handle.close(), PostResult::posted); }).join();
  h.run_mail();
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::closed_by_handler);
  EXPECT_FALSE(handle.open());
  EXPECT_EQ(handle.post([](Connection&) { FAIL() << "ran after close"; }), PostResult::gone);
  EXPECT_EQ(ConnectionHandle().write("x"), PostResult::gone);
}

TEST(ConnectionCore, PostsAreBoundedPerConnection) {
  Script s;
  ConnectionHandle handle;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_posted = 3; }));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(handle.write("x"), PostResult::posted);
  EXPECT_EQ(handle.write("x"), PostResult::full);
  EXPECT_EQ(handle.close(), PostResult::posted);  // a close is never refused
  h.run_mail();
  EXPECT_EQ(handle.write("x"), PostResult::gone);
}

TEST(ConnectionCore, TheMemoryBudgetPausesALargeHolderAndEvictsOverTheLimit) {
  Script s;
  s.on_data = [](std::string_view, Connection&) { return std::size_t{0}; };  // keeps everything
  CoreHarness h(scripted(s), options([](ServerOptions& o) {
                  o.max_memory = 256 * 1024;  // soft mark 192 KiB; pause threshold 4 KiB
                  o.max_input = 1 << 20;
                }));
  h.feed(std::string(100 * 1024, 'k'));  // kept in a 128 KiB buffer
  EXPECT_FALSE(h.core().reading_paused());
  h.feed(std::string(30 * 1024, 'k'));  // 256 KiB held: over the soft mark, and a large holder
  EXPECT_TRUE(h.core().reading_paused());
  EXPECT_EQ(h.core().held(), h.server_context().budget().used());
  h.core().set_budget_paused(false);  // as if usage had fallen: it reads again, and grows
  h.feed(std::string(200 * 1024, 'k'));
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::memory_budget);
  EXPECT_EQ(h.thread_stats().connections_evicted.get(), 1u);
  EXPECT_EQ(h.server_context().budget().used(), 0u);
}

// A holder the budget paused waits for the server, not on its own: it counts as stalled only
// after twice the stall time, so that on `threaded` (one connection per thread, each thread
// evicting among its own) the holders that stalled on their own go first. Before, a client
// paused at the moment others stalled was closed in the same second as they were.
TEST(ConnectionCore, AHolderTheBudgetPausedIsStalledOnlyAfterTwiceTheStallTime) {
  Script s;
  s.on_data = [](std::string_view, Connection&) { return std::size_t{0}; };  // keeps everything
  CoreHarness h(scripted(s), options([](ServerOptions& o) {
                  o.max_memory = 256 * 1024;  // soft mark 192 KiB; pause threshold 4 KiB
                  o.max_input = 1 << 20;
                }));
  h.feed(std::string(60 * 1024, 'k'));  // under the soft mark: the budget does not act itself
  const std::size_t threshold = h.server_context().budget().pause_threshold();
  EXPECT_FALSE(h.core().budget_paused());
  h.advance(std::chrono::milliseconds(1100));
  EXPECT_TRUE(h.core().stalled_holder(h.now(), threshold));  // on its own: stalled after 1 s
  h.core().set_budget_paused(true);
  EXPECT_FALSE(h.core().stalled_holder(h.now(), threshold));  // paused by us: not yet
  h.advance(std::chrono::milliseconds(1000));
  EXPECT_TRUE(h.core().stalled_holder(h.now(), threshold));  // paused for long: it counts
}

TEST(ConnectionCore, APauseByHandHoldsKeptInputAndNewBytesUntilResumed) {
  Script s;
  ConnectionHandle handle;
  bool paused_once = false;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  s.on_data = [&](std::string_view in, Connection& c) {
    if (paused_once) return in.size();
    paused_once = true;
    c.pause_reading();
    return in.find('|') + 1;
  };
  CoreHarness h(scripted(s));
  h.feed("ab|cd");
  EXPECT_TRUE(h.core().reading_paused());
  EXPECT_TRUE(h.core().reading_paused_by_hand());
  h.feed("ef");
  EXPECT_EQ(h.unread(), 2u);
  EXPECT_EQ(s.events, (std::vector<std::string>{"open", "data:ab|cd"}));
  // Resumed from elsewhere (another connection's handler, through the handle): the kept input
  // first, on its own, then the bytes that waited in the socket. No on_drain: nothing drained.
  ASSERT_EQ(handle.post([](Connection& c) { c.resume_reading(); }), PostResult::posted);
  h.run_mail();
  EXPECT_FALSE(h.core().reading_paused());
  EXPECT_EQ(s.events, (std::vector<std::string>{"open", "data:ab|cd", "data:cd", "data:ef"}));
  EXPECT_EQ(h.thread_stats().connections_paused.get(), 0);
}

TEST(ConnectionCore, APauseByHandAndBackPressureAreIndependent) {
  Script s;
  ConnectionHandle handle;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  s.on_data = [](std::string_view in, Connection& c) {
    c.write(std::string(600, 'r'));
    return in.size();
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_pending = 1000; }));
  h.stall(true);
  h.feed("1");
  h.feed("2");  // 1200 owed: back-pressure
  ASSERT_TRUE(h.core().reading_paused());
  ASSERT_FALSE(h.core().reading_paused_by_hand());
  // Back-pressure ending does not undo a pause by hand...
  ASSERT_EQ(handle.post([](Connection& c) { c.pause_reading(); }), PostResult::posted);
  h.run_mail();
  h.stall(false);
  EXPECT_EQ(std::count(s.events.begin(), s.events.end(), "drain"), 1);
  EXPECT_TRUE(h.core().reading_paused());
  h.feed("3");
  EXPECT_EQ(h.unread(), 1u);
  // ...and resuming by hand does not override back-pressure.
  h.stall(true);
  ASSERT_EQ(handle.post([](Connection& c) {
    c.write(std::string(1200, 'w'));
    c.resume_reading();
  }),
            PostResult::posted);
  h.run_mail();
  EXPECT_FALSE(h.core().reading_paused_by_hand());
  EXPECT_TRUE(h.core().reading_paused());
  EXPECT_EQ(h.unread(), 1u);
  h.stall(false);
  EXPECT_EQ(h.unread(), 0u);
  EXPECT_EQ(s.events.back(), "data:3");
}

TEST(ConnectionCore, APausedConnectionIsNeitherOverItsInputBoundNorIdle) {
  Script s;
  ConnectionHandle handle;
  int calls = 0;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  s.on_data = [&](std::string_view in, Connection& c) {
    if (++calls > 1) return in.size();
    c.pause_reading();
    return std::size_t{0};  // keeps all of it, more than max_input
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) {
                  o.max_input = 8;
                  o.idle_timeout = 100ms;
                }));
  h.core().start_idle_timer();
  h.feed("0123456789ab");
  EXPECT_TRUE(h.open());
  // A receive that was in flight when it paused (uring) is kept too, past the bound.
  h.core().keep_while_paused("cd");
  EXPECT_TRUE(h.open());
  EXPECT_EQ(h.core().held(), h.server_context().budget().used());
  h.advance(500ms);
  EXPECT_TRUE(h.open()) << "a paused connection was closed as idle";
  ASSERT_EQ(handle.post([](Connection& c) { c.resume_reading(); }), PostResult::posted);
  h.run_mail();
  EXPECT_EQ(s.events.back(), "data:0123456789abcd");
  h.advance(90ms);
  EXPECT_TRUE(h.open()) << "the idle clock did not restart at the resume";
  h.advance(20ms);
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::idle_timeout);
}

TEST(ConnectionCore, ShutdownWriteSendsFinAfterEveryOwedByteAndReadingGoesOn) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    if (in == "half") {
      c.write("reply");
      c.shutdown_write();
      c.shutdown_write();  // idempotent
    }
    return in.size();
  };
  s.on_peer_shutdown = [](Connection&) {};  // both sides shut: it closes anyway
  CoreHarness h(scripted(s));
  h.stall(true);
  h.feed("half");
  EXPECT_FALSE(h.fin_sent());
  h.stall(false);
  EXPECT_EQ(h.take_output(), "reply");
  EXPECT_TRUE(h.fin_sent());
  EXPECT_TRUE(h.core().write_shut());
  h.feed("more");
  EXPECT_EQ(s.events.back(), "data:more");
  EXPECT_TRUE(h.open());
  h.peer_shutdown();
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::peer_closed);
}

TEST(ConnectionCore, ThePeersFinThenShutdownWriteCloses) {
  Script s;
  ConnectionHandle handle;
  s.on_open = [&](Connection& c) { handle = c.handle(); };
  s.on_peer_shutdown = [](Connection&) {};
  CoreHarness h(scripted(s));
  h.feed("x");
  h.peer_shutdown();
  EXPECT_TRUE(h.open());
  ASSERT_EQ(handle.post([](Connection& c) {
    c.write("last");
    c.shutdown_write();
  }),
            PostResult::posted);
  h.run_mail();
  EXPECT_EQ(h.take_output(), "last");
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::peer_closed);
}

TEST(ConnectionCore, AWriteAfterShutdownWriteIsAHandlerError) {
  Script s;
  s.on_data = [](std::string_view in, Connection& c) {
    c.write("owed");
    c.shutdown_write();
    c.write("too late");
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("x");
  EXPECT_EQ(h.take_output(), "owed");
  EXPECT_EQ(h.thread_stats().handler_errors.get(), 1u);
  EXPECT_TRUE(h.fin_sent());
  h.peer_shutdown();
  EXPECT_FALSE(h.open());
  EXPECT_EQ(s.closed->reason, CloseReason::handler_error);
  EXPECT_NE(s.close_detail.find("a write after shutdown_write()"), std::string::npos);
}

TEST(ConnectionCore, LoopTimersOutliveTheConnectionAndLoopPostsAreBounded) {
  Script s;
  int fired = 0;
  LoopHandle loop;
  s.on_open = [&](Connection& c) {
    Loop& l = c.loop();
    loop = l.handle();
    l.start_timer(50ms, [&] { ++fired; });
    const TimerId cancelled = l.start_timer(10ms, [&] { fired += 100; });
    EXPECT_TRUE(l.cancel_timer(cancelled));
    EXPECT_FALSE(l.cancel_timer(cancelled));
    // A connection's timer is not the loop's to cancel.
    const TimerId own = c.start_timer(10ms, [&](Connection&) { fired += 10; });
    EXPECT_FALSE(l.cancel_timer(own));
  };
  CoreHarness h(scripted(s), options([](ServerOptions& o) { o.max_posted = 2; }));
  h.advance(20ms);
  EXPECT_EQ(fired, 10);
  static_cast<Connection&>(h.core()).close();
  h.advance(40ms);
  EXPECT_EQ(fired, 11);
  std::thread([&] {
    EXPECT_EQ(loop.post([&] { fired += 1000; }), PostResult::posted);
    EXPECT_EQ(loop.post([] { throw std::runtime_error("loop boom"); }), PostResult::posted);
    EXPECT_EQ(loop.post([] {}), PostResult::full);
  }).join();
  h.run_mail();
  EXPECT_EQ(fired, 1011);
  EXPECT_EQ(h.thread_stats().handler_errors.get(), 1u);  // logged and counted; the loop goes on
  EXPECT_EQ(loop.post([] {}), PostResult::posted);
  EXPECT_EQ(LoopHandle().post([] {}), PostResult::gone);
}

TEST(ConnectionCore, DebugBuildsOverwriteInputAHandlerKeptAViewInto) {
#ifdef NDEBUG
  GTEST_SKIP() << "input is overwritten in debug builds only";
#else
  Script s;
  std::string_view kept;
  s.on_data = [&](std::string_view in, Connection&) {
    kept = in;  // wrong: the input dies with the call
    return in.size();
  };
  CoreHarness h(scripted(s));
  h.feed("secret");
  EXPECT_EQ(kept, std::string(6, '\xDD'));
#endif
}

// ---- outbound connections (Loop::connect): the core's part, before and after the connect

TEST(ConnectionCore, WhatIsWrittenToAConnectingConnectionLeavesOnceConnectedAfterOnOpen) {
  Script s;
  s.on_open = [](Connection& c) { c.write("greeting;"); };
  CoreHarness h(CoreHarness::Outbound{}, scripted(s));
  ConnectionHandle handle = static_cast<Connection&>(h.core()).handle();
  ASSERT_TRUE(handle.open());
  std::thread([&] { EXPECT_EQ(handle.write("early;"), PostResult::posted); }).join();
  h.run_mail();
  EXPECT_EQ(h.take_output(), "") << "sent before the connection was established";
  EXPECT_TRUE(s.events.empty()) << "the handler heard something before on_open";
  EXPECT_EQ(h.core().pending_output(), 6u);
  EXPECT_EQ(h.thread_stats().connections_open.get(), 0u);
  h.connect_completes();
  // Bytes leave in the order of the calls: the early write was made first.
  EXPECT_EQ(h.take_output(), "early;greeting;");
  EXPECT_EQ(s.events, std::vector<std::string>{"open"});
  EXPECT_EQ(h.thread_stats().connections_outbound.get(), 1u);
  EXPECT_EQ(h.thread_stats().connections_open.get(), 1u);
  EXPECT_EQ(h.thread_stats().connections_accepted.get(), 0u);
  h.feed("answer");
  EXPECT_EQ(s.events.back(), "data:answer");
}

TEST(ConnectionCore, AConnectThatFailsReachesOnCloseWithoutOnOpenAndHoldsNoPlace) {
  Script s;
  ServerOptions o = CoreHarness::quiet_options();
  o.max_connections = 1;
  CoreHarness h(CoreHarness::Outbound{}, scripted(s), o);
  // Outbound connections take no place under max_connections, and give none back.
  ThreadStats other;
  ASSERT_TRUE(h.server_context().reserve(other, Endpoint::loopback_v4(1)));
  h.core().close(CloseReason::connect_failed, ECONNREFUSED, "connect to 127.0.0.1:6379: refused");
  EXPECT_EQ(s.events, std::vector<std::string>{"close"});
  ASSERT_TRUE(s.closed);
  EXPECT_EQ(s.closed->reason, CloseReason::connect_failed);
  EXPECT_EQ(s.closed->error, ECONNREFUSED);
  EXPECT_EQ(h.thread_stats().connects_failed.get(), 1u);
  EXPECT_EQ(h.thread_stats().connections_open.get(), 0u);
  EXPECT_FALSE(h.server_context().reserve(other, Endpoint::loopback_v4(2))) << "the failed connect released a place";
  EXPECT_EQ(to_string(CloseReason::connect_timeout), "connect timeout");
}

TEST(ConnectionCore, AGracefulStopClosesAnIdleConnectingConnectionAndFlushesOneOwedOutput) {
  {
    Script s;
    CoreHarness h(CoreHarness::Outbound{}, scripted(s));
    h.core().drain();
    EXPECT_FALSE(h.open());
    EXPECT_EQ(s.closed->reason, CloseReason::server_stopped);
  }
  Script s;
  CoreHarness h(CoreHarness::Outbound{}, scripted(s));
  ConnectionHandle handle = static_cast<Connection&>(h.core()).handle();
  std::thread([&] { EXPECT_EQ(handle.write("owed"), PostResult::posted); }).join();
  h.run_mail();
  h.core().drain();
  EXPECT_TRUE(h.open()) << "closed with output owed before it could be sent";
  EXPECT_FALSE(h.fin_sent()) << "a FIN on a socket still connecting";
  h.connect_completes();
  EXPECT_EQ(h.take_output(), "owed");
  EXPECT_TRUE(h.fin_sent());
}

TEST(ConnectionCore, OutputOwedWhileConnectingIsNotThePeersStall) {
  Script s;
  ServerOptions o = CoreHarness::quiet_options();
  o.max_pending = 8;
  o.max_output = 16;
  o.send_timeout = 3s;
  CoreHarness h(CoreHarness::Outbound{}, scripted(s), o);
  ConnectionHandle handle = static_cast<Connection&>(h.core()).handle();
  std::thread([&] { EXPECT_EQ(handle.write(std::string(64, 'x')), PostResult::posted); }).join();
  h.run_mail();
  // A slow handshake (SYN retransmissions) is not a peer that refuses to read.
  h.advance(5s);
  EXPECT_TRUE(h.open()) << "closed while connecting: " << (s.closed ? to_string(s.closed->reason) : "");
  h.stall(true);
  h.connect_completes();
  h.advance(500ms);
  EXPECT_TRUE(h.open()) << "the send timeout counted the time spent connecting";
  h.stall(false);
  EXPECT_EQ(h.take_output(), std::string(64, 'x'));
}

}  // namespace
}  // namespace iomux::test
