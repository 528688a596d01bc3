#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/server_info.hpp"
#include "protocols/resp/session.hpp"
#include "resp_test_text.hpp"

namespace iomux::resp {
namespace {

using test_text::cat;
using test_text::multibulk;

KeyspaceOptions quiet_keyspace() {
  KeyspaceOptions options;
  options.active_expiry = false;
  return options;
}

// A connection's view of a Session: keeps what process() did not consume and presents it
// again with the next bytes, as every server model does.
struct Connection {
  Connection(Keyspace& keyspace, ServerInfo& server, SessionOptions options = {})
      : session(keyspace, server, options) {}

  // Feeds `bytes` and returns the replies they produced.
  std::string feed(std::string_view bytes) {
    pending.append(bytes);
    std::string out;
    for (;;) {
      const Session::Result result = session.process(pending, queue);
      EXPECT_LE(result.consumed, pending.size());
      pending.erase(0, result.consumed);
      commands += result.commands;
      closed = closed || result.close;
      // "Sent": the caller takes what the queue holds, then calls again if told to.
      const std::size_t before = out.size();
      references += test_text::take(queue, out);
      largest_part = std::max(largest_part, out.size() - before);
      if (!result.output_full) break;
      ++pauses;
    }
    EXPECT_TRUE(queue.empty());
    sent += out.size();
    return out;
  }

  ReplyQueue queue;
  Session session;
  std::size_t references = 0;
  std::size_t largest_part = 0;
  std::string pending;
  std::size_t commands = 0;
  std::size_t pauses = 0;
  std::size_t sent = 0;
  bool closed = false;
};

class RespSession : public ::testing::Test {
 protected:
  Keyspace keyspace_{quiet_keyspace()};
  ServerInfo server_;
};

TEST_F(RespSession, PipelinedCommandsAreAnsweredInOrder) {
  Connection connection(keyspace_, server_);
  const std::string replies =
      connection.feed(cat({multibulk({"SET", "k", "1"}), "INCR k\r\n", multibulk({"GET", "k"}), "PING\r\n"}));
  EXPECT_EQ(replies, "+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n");
  EXPECT_EQ(connection.commands, 4u);
  EXPECT_TRUE(connection.pending.empty());
  EXPECT_FALSE(connection.closed);
}

TEST_F(RespSession, UnfinishedCommandWaitsForItsBytes) {
  Connection connection(keyspace_, server_);
  const std::string set = multibulk({"SET", "key", "value"});
  EXPECT_EQ(connection.feed(set.substr(0, 10)), "");
  EXPECT_EQ(connection.pending, set.substr(0, 10));  // nothing consumed
  EXPECT_EQ(connection.feed(set.substr(10) + "GE"), "+OK\r\n");
  EXPECT_EQ(connection.pending, "GE");
  EXPECT_EQ(connection.feed("T key\r\n"), "$5\r\nvalue\r\n");
}

TEST_F(RespSession, RepliesDoNotDependOnHowTheBytesArrive) {
  const std::string stream =
      cat({multibulk({"RPUSH", "l", "a", "b", "c"}), "LRANGE l 0 -1\r\n",
           multibulk({"SET", "s", std::string("x\r\n\0y", 5)}), "\r\n", multibulk({"GET", "s"}), "echo \"q \\x41\"\r\n",
           multibulk({"LPOP", "l", "2"}), "nosuchcommand a\r\n", multibulk({"DEL", "s", "l"})});
  std::string whole;
  {
    Keyspace keyspace(quiet_keyspace());
    Connection connection(keyspace, server_);
    whole = connection.feed(stream);
  }
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u}) {
    Keyspace keyspace(quiet_keyspace());
    Connection connection(keyspace, server_);
    std::string replies;
    for (std::size_t i = 0; i < stream.size(); i += chunk) replies += connection.feed(stream.substr(i, chunk));
    EXPECT_EQ(replies, whole) << "chunks of " << chunk;
  }
}

TEST_F(RespSession, QuitAnswersOkThenClosesAndIgnoresTheRest) {
  Connection connection(keyspace_, server_);
  EXPECT_EQ(connection.feed("PING\r\nQUIT\r\nSET k v\r\n"), "+PONG\r\n+OK\r\n");
  EXPECT_TRUE(connection.closed);
  EXPECT_TRUE(connection.pending.empty());     // all consumed
  EXPECT_EQ(keyspace_.counts().keys, 0u);      // SET after QUIT never ran
  EXPECT_EQ(connection.feed("PING\r\n"), "");  // a closed session answers nothing
}

TEST_F(RespSession, ProtocolErrorIsAnsweredAfterEarlierRepliesThenCloses) {
  Connection connection(keyspace_, server_);
  EXPECT_EQ(connection.feed("PING\r\n*1\r\n$x\r\nPING\r\n"), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
  EXPECT_TRUE(connection.closed);
  EXPECT_TRUE(connection.pending.empty());
}

TEST_F(RespSession, UnbalancedQuotesCloseTheConnection) {
  Connection connection(keyspace_, server_);
  EXPECT_EQ(connection.feed("set \"a b\r\n"), "-ERR Protocol error: unbalanced quotes in request\r\n");
  EXPECT_TRUE(connection.closed);
}

TEST_F(RespSession, CommandErrorsDoNotClose) {
  Connection connection(keyspace_, server_);
  EXPECT_EQ(connection.feed("foo\r\nget\r\nPING\r\n"),
            "-ERR unknown command 'foo', with args beginning with: \r\n"
            "-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n");
  EXPECT_FALSE(connection.closed);
}

TEST_F(RespSession, OverlongInlineLineIsRefusedBeforeItEnds) {
  Connection connection(keyspace_, server_);
  EXPECT_EQ(connection.feed(std::string(40000, 'a')), "");
  EXPECT_FALSE(connection.closed);
  EXPECT_EQ(connection.feed(std::string(40000, 'a')), "-ERR Protocol error: too big inline request\r\n");
  EXPECT_TRUE(connection.closed);
}

TEST_F(RespSession, KeptInputNeverExceedsMaxKeptInput) {
  SessionOptions options;
  options.limits.max_request = 1000;
  options.limits.max_inline = 100;
  Connection connection(keyspace_, server_, options);
  const std::string big = multibulk({"SET", "k", std::string(900, 'v')});
  for (char byte : big) {
    connection.feed(std::string_view(&byte, 1));
    ASSERT_LE(connection.pending.size(), connection.session.max_kept_input());
  }
  EXPECT_EQ(connection.commands, 1u);
}

TEST_F(RespSession, FullOutputPausesAndTheNextCallResumes) {
  SessionOptions options;
  options.max_output = 64;
  Connection connection(keyspace_, server_, options);
  connection.feed(multibulk({"SET", "k", std::string(50, 'v')}));
  std::string pipeline;
  for (int i = 0; i < 10; ++i) pipeline += "GET k\r\n";
  connection.feed(pipeline);
  EXPECT_EQ(connection.commands, 11u);  // every GET answered in the end
  EXPECT_GE(connection.pauses, 4u);     // but never more than two 57-byte replies at once
  EXPECT_EQ(connection.sent, 5u + 10 * 57);
}

TEST_F(RespSession, SessionsAreCountedAsConnectedClients) {
  EXPECT_EQ(server_.connected_clients(), 0);
  {
    Connection a(keyspace_, server_);
    Connection b(keyspace_, server_);
    EXPECT_EQ(server_.connected_clients(), 2);
    EXPECT_NE(a.session.client().id, b.session.client().id);
    a.feed("PING\r\nPING\r\n");
    EXPECT_EQ(server_.total_commands(), 2u);
  }
  EXPECT_EQ(server_.connected_clients(), 0);
  EXPECT_EQ(server_.total_connections(), 2u);
}

TEST_F(RespSession, ClientNameBelongsToItsSession) {
  Connection a(keyspace_, server_);
  Connection b(keyspace_, server_);
  a.feed("CLIENT SETNAME alice\r\n");
  EXPECT_EQ(a.feed("CLIENT GETNAME\r\n"), "$5\r\nalice\r\n");
  EXPECT_EQ(b.feed("CLIENT GETNAME\r\n"), "$-1\r\n");
}

// --- long replies: bounded parts, references, snapshots ------------------------------------

// One connection driven a call at a time, as the handler does: process(), then take at most
// max_output bytes of the queue.
struct Stepper {
  Stepper(Keyspace& keyspace, ServerInfo& server, std::size_t max_output)
      : session(keyspace, server, SessionOptions{Limits{}, max_output}), max_output(max_output) {}

  // One call; returns whether it must be called again (more output to take).
  bool step(std::string_view bytes = {}) {
    pending.append(bytes);
    const Session::Result result = session.process(pending, queue);
    pending.erase(0, result.consumed);
    const std::size_t before = sent.size();
    references += test_text::take(queue, sent, max_output);
    largest_part = std::max(largest_part, sent.size() - before);
    return result.output_full || !queue.empty();
  }
  void finish() {
    for (int i = 0; i < 1'000'000 && step(); ++i) {
    }
  }

  Session session;
  ReplyQueue queue;
  std::size_t max_output;
  std::string pending;
  std::string sent;
  std::size_t references = 0;
  std::size_t largest_part = 0;
};

std::string bulk(std::string_view value) {
  return cat({"$", std::to_string(value.size()), "\r\n", value, "\r\n"});
}

// Issue 16: SET k <1 MiB> then MGET k x 200 built a 200 MiB reply in memory. The reply now
// references the one value 200 times and goes out max_output bytes at a time.
TEST_F(RespSession, ManyCopiesOfALongValueAreReferencedAndGoOutInParts) {
  Stepper client(keyspace_, server_, 64 * 1024);
  const std::string value(1 << 20, 'v');
  client.step(multibulk({"SET", "k", value}));
  std::vector<std::string> mget{"MGET"};
  for (int i = 0; i < 200; ++i) mget.push_back("k");
  client.sent.clear();
  client.step(multibulk(mget));
  EXPECT_LE(client.queue.held(), 64 * 1024u);  // references and headers, not 200 copies
  client.finish();
  std::string want = "*200\r\n";
  for (int i = 0; i < 200; ++i) want += bulk(value);
  EXPECT_EQ(client.sent, want);
  EXPECT_EQ(client.largest_part, 64 * 1024u);
  EXPECT_GE(client.references, 200u);
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
}

TEST_F(RespSession, ALongListRangeIsMadeInPartsFromTheListAsItWas) {
  Stepper reader(keyspace_, server_, 4096);
  Stepper writer(keyspace_, server_, 4096);
  std::vector<std::string> push{"RPUSH", "l"};
  for (int i = 0; i < 1000; ++i) push.push_back("element-" + std::to_string(i));
  writer.step(multibulk(push));
  const std::size_t before = keyspace_.used_memory();
  // The range does not fit one part: its first part goes out, the rest waits.
  ASSERT_TRUE(reader.step(multibulk({"LRANGE", "l", "0", "-1"})));
  // Changes meanwhile go to a copy of the list; the reply is of the list as it was.
  writer.sent.clear();
  writer.step(multibulk({"LSET_IS_NOT_HERE"}));
  writer.step(multibulk({"RPOP", "l"}));
  writer.step(multibulk({"LPUSH", "l", "new"}));
  EXPECT_EQ(writer.sent, cat({"-ERR unknown command 'LSET_IS_NOT_HERE', with args beginning with: \r\n",
                              bulk("element-999"), ":1000\r\n"}));
  EXPECT_GT(keyspace_.used_memory(), before);  // the copy, and the old list the reply reads
  reader.finish();
  std::string want = "*1000\r\n";
  for (int i = 0; i < 1000; ++i) want += bulk("element-" + std::to_string(i));
  EXPECT_EQ(reader.sent, want);
  EXPECT_LE(reader.largest_part, 4096u);
  keyspace_.sweep_orphans();  // the old list goes once its reply is done
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
  EXPECT_EQ(writer.step(multibulk({"LLEN", "l"})), false);
  EXPECT_TRUE(writer.sent.ends_with(":1000\r\n"));
}

TEST_F(RespSession, PoppedElementsStayCountedUntilTheirReplyIsOut) {
  Stepper client(keyspace_, server_, 4096);
  std::vector<std::string> push{"RPUSH", "l"};
  for (int i = 0; i < 1000; ++i) push.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  client.step(multibulk(push));
  const std::size_t full = keyspace_.used_memory();
  client.sent.clear();
  ASSERT_TRUE(client.step(multibulk({"LPOP", "l", "1000"})));
  EXPECT_EQ(keyspace_.counts().keys, 0u);        // popped, all of them, at once
  EXPECT_GT(keyspace_.used_memory(), full / 2);  // but counted until they have gone out
  client.finish();
  keyspace_.sweep_orphans();
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
  EXPECT_LT(keyspace_.used_memory(), 1024u);
  std::string want = "*1000\r\n";
  for (int i = 0; i < 1000; ++i) want += bulk(std::string(100, static_cast<char>('a' + i % 26)));
  EXPECT_EQ(client.sent, want);
  EXPECT_LE(client.largest_part, 4096u);
}

TEST_F(RespSession, AValueReplacedWhileItsReplyWaitsIsSentWholeAndCountedUntilThen) {
  Stepper reader(keyspace_, server_, 64 * 1024);
  Stepper writer(keyspace_, server_, 64 * 1024);
  const std::string first(1 << 20, 'a');
  writer.step(multibulk({"SET", "k", first}));
  ASSERT_TRUE(reader.step(multibulk({"GET", "k"})));  // 64 KiB out, the rest referenced
  writer.step(multibulk({"SET", "k", "small"}));
  writer.step(multibulk({"APPEND", "k", std::string(100, 'b')}));
  // The replaced value is the reader's now, still counted (an orphan of the keyspace).
  EXPECT_GT(keyspace_.used_memory(), first.size());
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
  reader.finish();
  EXPECT_EQ(reader.sent, bulk(first));
  keyspace_.sweep_orphans();
  EXPECT_LT(keyspace_.used_memory(), 4096u);
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
  reader.sent.clear();
  reader.step(multibulk({"GET", "k"}));
  EXPECT_EQ(reader.sent, bulk("small" + std::string(100, 'b')));
}

TEST_F(RespSession, AppendAfterALongValueWasSentChangesACopy) {
  Stepper client(keyspace_, server_, 1024 * 1024);
  const std::string value(100 * 1024, 'x');
  client.step(multibulk({"SET", "k", value}));
  client.sent.clear();
  client.step(multibulk({"GET", "k"}));  // referenced: the value is not to change any more
  client.step(multibulk({"APPEND", "k", "yz"}));
  client.step(multibulk({"GET", "k"}));
  EXPECT_EQ(client.sent, cat({bulk(value), ":102402\r\n", bulk(value + "yz")}));
  EXPECT_EQ(keyspace_.used_memory(), keyspace_.recount());
}

TEST_F(RespSession, AnIdleSessionHoldsLittleAfterALongReply) {
  Stepper client(keyspace_, server_, 1024 * 1024);
  client.step(multibulk({"ECHO", std::string(60000, 'e')}));
  client.finish();
  EXPECT_EQ(client.sent.size(), 60000u + 10);
  EXPECT_LE(client.queue.held() + client.session.held(), 4096u);
}

}  // namespace
}  // namespace iomux::resp
