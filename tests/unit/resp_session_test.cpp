#include <gtest/gtest.h>

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
      const Session::Result result = session.process(pending, out);
      EXPECT_LE(result.consumed, pending.size());
      pending.erase(0, result.consumed);
      commands += result.commands;
      closed = closed || result.close;
      if (!result.output_full) break;
      ++pauses;
      sent += out.size();  // "sent": the caller drains its output, then calls again
      out.clear();
    }
    sent += out.size();
    return out;
  }

  Session session;
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

}  // namespace
}  // namespace iomux::resp
