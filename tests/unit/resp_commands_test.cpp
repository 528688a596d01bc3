#include <gtest/gtest.h>

#include <atomic>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "protocols/resp/commands.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/server_info.hpp"
#include "resp_test_text.hpp"

namespace iomux::resp {
namespace {

using test_text::cat;
using test_text::multibulk;

// Replies as Redis writes them.
const std::string kOk = "+OK\r\n";
const std::string kNil = "$-1\r\n";
const std::string kNilArray = "*-1\r\n";
const std::string kEmptyArray = "*0\r\n";
std::string bulk(std::string_view value) {
  return cat({"$", std::to_string(value.size()), "\r\n", value, "\r\n"});
}
std::string integer(long long value) {
  return cat({":", std::to_string(value), "\r\n"});
}
std::string error(std::string_view text) {
  return cat({"-", text, "\r\n"});
}
std::string array(std::initializer_list<std::string> elements) {
  std::string out = cat({"*", std::to_string(elements.size()), "\r\n"});
  for (const std::string& element : elements) out += element;
  return out;
}

const std::string kWrongType = error("WRONGTYPE Operation against a key holding the wrong kind of value");
const std::string kNotInteger = error("ERR value is not an integer or out of range");
const std::string kSyntax = error("ERR syntax error");

class RespCommands : public ::testing::Test {
 protected:
  RespCommands() : RespCommands(0) {}
  explicit RespCommands(std::size_t max_memory)
      : keyspace_(options(max_memory)), server_([this] { return std::chrono::milliseconds(now_->load()); }) {
    client_.id = server_.connect();
  }

  KeyspaceOptions options(std::size_t max_memory) {
    KeyspaceOptions options;
    options.max_memory = max_memory;
    options.active_expiry = false;
    options.clock = [now = now_] { return std::chrono::milliseconds(now->load()); };
    return options;
  }

  // Runs one command and returns its reply.
  std::string run(std::initializer_list<std::string_view> args) {
    const std::vector<std::string_view> argv(args);
    return run(argv);
  }
  std::string run(const std::vector<std::string_view>& argv) {
    ReplyQueue queue;
    CommandContext context{keyspace_, server_, client_, limits_, ReplyWriter(queue, SIZE_MAX)};
    execute_command(context, argv);
    return test_text::take_all(queue);
  }

  void advance(std::int64_t ms) { *now_ += ms; }

  std::shared_ptr<std::atomic<std::int64_t>> now_ = std::make_shared<std::atomic<std::int64_t>>(1'000'000);
  Keyspace keyspace_;
  ServerInfo server_;
  ClientState client_;
  Limits limits_;
};

// --- dispatch -----------------------------------------------------------------------------

TEST_F(RespCommands, NamesAreCaseInsensitive) {
  EXPECT_EQ(run({"PiNg"}), "+PONG\r\n");
  EXPECT_EQ(find_command("GET"), find_command("get"));
  EXPECT_NE(find_command("LRANGE"), nullptr);
  EXPECT_EQ(find_command("GETT"), nullptr);
  EXPECT_EQ(find_command(""), nullptr);
}

TEST_F(RespCommands, EveryRowIsFoundByItsName) {
  for (const CommandSpec& spec : command_table()) EXPECT_EQ(find_command(spec.name), &spec) << spec.name;
}

TEST_F(RespCommands, UnknownCommandIsWordedAsRedis) {
  EXPECT_EQ(run({"foo", "a", "b"}), error("ERR unknown command 'foo', with args beginning with: 'a' 'b' "));
  EXPECT_EQ(run({"FOO"}), error("ERR unknown command 'FOO', with args beginning with: "));
  EXPECT_EQ(run({"foo", ""}), error("ERR unknown command 'foo', with args beginning with: '' "));
}

TEST_F(RespCommands, UnknownCommandErrorStaysOneLineAndBounded) {
  EXPECT_EQ(run({"foo", "a\rb", "c\nd"}), error("ERR unknown command 'foo', with args beginning with: 'a b' 'c d' "));
  const std::string name(200, 'n');
  const std::string arg(200, 'x');
  EXPECT_EQ(run({name, arg, "next"}), error(cat({"ERR unknown command '", std::string(128, 'n'),
                                                 "', with args beginning with: '", std::string(128, 'x'), "' "})));
  // As C strings in Redis: a NUL byte ends what is shown.
  EXPECT_EQ(run({std::string_view("fo\0o", 4), std::string_view("a\0b", 3)}),
            error("ERR unknown command 'fo', with args beginning with: 'a' "));
}

TEST_F(RespCommands, WrongArgumentCountIsWordedAsRedis) {
  EXPECT_EQ(run({"get"}), error("ERR wrong number of arguments for 'get' command"));
  EXPECT_EQ(run({"GET", "a", "b"}), error("ERR wrong number of arguments for 'get' command"));
  EXPECT_EQ(run({"set", "a"}), error("ERR wrong number of arguments for 'set' command"));
  EXPECT_EQ(run({"mset", "a", "1", "b"}), error("ERR wrong number of arguments for 'mset' command"));
  EXPECT_EQ(run({"ping", "a", "b"}), error("ERR wrong number of arguments for 'ping' command"));
  EXPECT_EQ(run({"lpop", "l", "1", "2"}), error("ERR wrong number of arguments for 'lpop' command"));
  EXPECT_EQ(run({"config"}), error("ERR wrong number of arguments for 'config' command"));
  EXPECT_EQ(run({"config", "get"}), error("ERR wrong number of arguments for 'config|get' command"));
}

// --- strings ------------------------------------------------------------------------------

TEST_F(RespCommands, SetThenGet) {
  EXPECT_EQ(run({"get", "k"}), kNil);
  EXPECT_EQ(run({"set", "k", "v"}), kOk);
  EXPECT_EQ(run({"get", "k"}), bulk("v"));
  EXPECT_EQ(run({"set", "k", ""}), kOk);
  EXPECT_EQ(run({"get", "k"}), bulk(""));
}

TEST_F(RespCommands, SetNxAndXxAreConditions) {
  EXPECT_EQ(run({"set", "k", "1", "xx"}), kNil);
  EXPECT_EQ(run({"get", "k"}), kNil);
  EXPECT_EQ(run({"set", "k", "1", "NX"}), kOk);
  EXPECT_EQ(run({"set", "k", "2", "nx"}), kNil);
  EXPECT_EQ(run({"set", "k", "3", "xx"}), kOk);
  EXPECT_EQ(run({"get", "k"}), bulk("3"));
}

TEST_F(RespCommands, SetGetAnswersTheOldValue) {
  EXPECT_EQ(run({"set", "k", "1", "get"}), kNil);
  EXPECT_EQ(run({"set", "k", "2", "GET"}), bulk("1"));
  EXPECT_EQ(run({"set", "k", "3", "nx", "get"}), bulk("2"));  // not set, old value shown
  EXPECT_EQ(run({"get", "k"}), bulk("2"));
  run({"rpush", "l", "a"});
  EXPECT_EQ(run({"set", "l", "x", "get"}), kWrongType);
  EXPECT_EQ(run({"llen", "l"}), integer(1));  // untouched
}

TEST_F(RespCommands, SetExAndPxSetATtl) {
  EXPECT_EQ(run({"set", "k", "v", "ex", "10"}), kOk);
  EXPECT_EQ(run({"ttl", "k"}), integer(10));
  EXPECT_EQ(run({"set", "k", "v", "PX", "1500"}), kOk);
  EXPECT_EQ(run({"pttl", "k"}), integer(1500));
  advance(1500);
  EXPECT_EQ(run({"get", "k"}), bulk("v"));
  advance(1);
  EXPECT_EQ(run({"get", "k"}), kNil);
}

TEST_F(RespCommands, SetDropsTheTtlUnlessKeepTtl) {
  run({"set", "k", "v", "ex", "10"});
  EXPECT_EQ(run({"set", "k", "w", "keepttl"}), kOk);
  EXPECT_EQ(run({"ttl", "k"}), integer(10));
  EXPECT_EQ(run({"set", "k", "x"}), kOk);
  EXPECT_EQ(run({"ttl", "k"}), integer(-1));
}

TEST_F(RespCommands, SetRefusesBadOptions) {
  EXPECT_EQ(run({"set", "k", "v", "nx", "xx"}), kSyntax);
  EXPECT_EQ(run({"set", "k", "v", "foo"}), kSyntax);
  EXPECT_EQ(run({"set", "k", "v", "ex"}), kSyntax);
  EXPECT_EQ(run({"set", "k", "v", "ex", "10", "px", "10"}), kSyntax);
  EXPECT_EQ(run({"set", "k", "v", "keepttl", "ex", "10"}), kSyntax);
  EXPECT_EQ(run({"set", "k", "v", "exat", "10"}), kSyntax);  // not supported here
  const std::string invalid = error("ERR invalid expire time in 'set' command");
  EXPECT_EQ(run({"set", "k", "v", "ex", "0"}), invalid);
  EXPECT_EQ(run({"set", "k", "v", "ex", "-1"}), invalid);
  EXPECT_EQ(run({"set", "k", "v", "ex", "9223372036854775"}), invalid);  // overflows as ms
  EXPECT_EQ(run({"set", "k", "v", "px", "9223372036854775807"}), invalid);
  EXPECT_EQ(run({"set", "k", "v", "ex", "abc"}), kNotInteger);
  EXPECT_EQ(run({"set", "k", "v", "ex", ""}), kNotInteger);
  EXPECT_EQ(run({"get", "k"}), kNil);  // none of them set anything
}

TEST_F(RespCommands, GetOfAListIsWrongType) {
  run({"lpush", "l", "a"});
  EXPECT_EQ(run({"get", "l"}), kWrongType);
}

TEST_F(RespCommands, MsetAndMget) {
  EXPECT_EQ(run({"mset", "a", "1", "b", "2"}), kOk);
  run({"rpush", "l", "x"});
  // Missing keys and non-strings are both nil in MGET, as in Redis.
  EXPECT_EQ(run({"mget", "a", "b", "l", "nosuch"}), array({bulk("1"), bulk("2"), kNil, kNil}));
  EXPECT_EQ(run({"mset", "a", "3", "a", "4"}), kOk);  // the last one wins
  EXPECT_EQ(run({"get", "a"}), bulk("4"));
}

TEST_F(RespCommands, IncrementsCountFromZero) {
  EXPECT_EQ(run({"incr", "n"}), integer(1));
  EXPECT_EQ(run({"incrby", "n", "10"}), integer(11));
  EXPECT_EQ(run({"decr", "n"}), integer(10));
  EXPECT_EQ(run({"decrby", "n", "-5"}), integer(15));
  EXPECT_EQ(run({"get", "n"}), bulk("15"));
  EXPECT_EQ(run({"decrby", "m", "3"}), integer(-3));
}

TEST_F(RespCommands, IncrementRefusesNonIntegers) {
  for (std::string_view value : {"abc", "1.5", " 1", "01", "+1", "", "99999999999999999999"}) {
    run({"set", "s", value});
    EXPECT_EQ(run({"incr", "s"}), kNotInteger) << value;
  }
  EXPECT_EQ(run({"incrby", "n", "x"}), kNotInteger);
  EXPECT_EQ(run({"incrby", "n", "1x"}), kNotInteger);
  run({"lpush", "l", "a"});
  EXPECT_EQ(run({"incr", "l"}), kWrongType);
}

TEST_F(RespCommands, IncrementOverflowIsRefused) {
  const std::string overflow = error("ERR increment or decrement would overflow");
  run({"set", "big", "9223372036854775807"});
  EXPECT_EQ(run({"incr", "big"}), overflow);
  EXPECT_EQ(run({"get", "big"}), bulk("9223372036854775807"));
  run({"set", "small", "-9223372036854775808"});
  EXPECT_EQ(run({"decr", "small"}), overflow);
  EXPECT_EQ(run({"incrby", "small", "-1"}), overflow);
  EXPECT_EQ(run({"decrby", "n", "-9223372036854775808"}), error("ERR decrement would overflow"));
  EXPECT_EQ(run({"incrby", "n", "-9223372036854775808"}), integer(INT64_MIN));
}

TEST_F(RespCommands, IncrementKeepsTheTtl) {
  run({"set", "n", "1", "ex", "100"});
  run({"incr", "n"});
  EXPECT_EQ(run({"ttl", "n"}), integer(100));
}

TEST_F(RespCommands, AppendAndStrlen) {
  EXPECT_EQ(run({"strlen", "s"}), integer(0));
  EXPECT_EQ(run({"append", "s", "abc"}), integer(3));
  EXPECT_EQ(run({"append", "s", "def"}), integer(6));
  EXPECT_EQ(run({"strlen", "s"}), integer(6));
  EXPECT_EQ(run({"get", "s"}), bulk("abcdef"));
  run({"lpush", "l", "a"});
  EXPECT_EQ(run({"append", "l", "x"}), kWrongType);
  EXPECT_EQ(run({"strlen", "l"}), kWrongType);
}

TEST_F(RespCommands, AppendPastTheBulkLimitIsRefused) {
  limits_.max_bulk = 5;
  EXPECT_EQ(run({"append", "s", "abc"}), integer(3));
  EXPECT_EQ(run({"append", "s", "def"}), error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"));
  EXPECT_EQ(run({"get", "s"}), bulk("abc"));
}

// --- keys ---------------------------------------------------------------------------------

TEST_F(RespCommands, DelAndExistsCountKeys) {
  run({"mset", "a", "1", "b", "2"});
  EXPECT_EQ(run({"exists", "a", "a", "b", "c"}), integer(3));  // a repeated key counts twice
  EXPECT_EQ(run({"del", "a", "a", "c"}), integer(1));          // but is deleted once
  EXPECT_EQ(run({"exists", "a"}), integer(0));
  EXPECT_EQ(run({"dbsize"}), integer(1));
}

TEST_F(RespCommands, ExpireAndTtl) {
  EXPECT_EQ(run({"ttl", "k"}), integer(-2));
  EXPECT_EQ(run({"pttl", "k"}), integer(-2));
  EXPECT_EQ(run({"expire", "k", "10"}), integer(0));
  run({"set", "k", "v"});
  EXPECT_EQ(run({"ttl", "k"}), integer(-1));
  EXPECT_EQ(run({"expire", "k", "10"}), integer(1));
  EXPECT_EQ(run({"ttl", "k"}), integer(10));
  advance(4400);
  EXPECT_EQ(run({"ttl", "k"}), integer(6));  // 5600 ms rounds to 6 s
  EXPECT_EQ(run({"pttl", "k"}), integer(5600));
  EXPECT_EQ(run({"pexpire", "k", "100"}), integer(1));
  advance(101);
  EXPECT_EQ(run({"exists", "k"}), integer(0));
}

TEST_F(RespCommands, ExpireInThePastDeletes) {
  run({"set", "k", "v"});
  EXPECT_EQ(run({"expire", "k", "0"}), integer(1));
  EXPECT_EQ(run({"exists", "k"}), integer(0));
  run({"set", "k", "v"});
  EXPECT_EQ(run({"pexpire", "k", "-5"}), integer(1));
  EXPECT_EQ(run({"exists", "k"}), integer(0));
}

TEST_F(RespCommands, ExpireConditions) {
  run({"set", "k", "v"});
  EXPECT_EQ(run({"expire", "k", "100", "xx"}), integer(0));  // no TTL yet
  EXPECT_EQ(run({"expire", "k", "100", "gt"}), integer(0));  // none counts as infinite
  EXPECT_EQ(run({"expire", "k", "100", "nx"}), integer(1));
  EXPECT_EQ(run({"expire", "k", "200", "nx"}), integer(0));
  EXPECT_EQ(run({"expire", "k", "50", "gt"}), integer(0));
  EXPECT_EQ(run({"expire", "k", "200", "GT"}), integer(1));
  EXPECT_EQ(run({"expire", "k", "300", "lt"}), integer(0));
  EXPECT_EQ(run({"expire", "k", "150", "lt", "xx"}), integer(1));
  EXPECT_EQ(run({"ttl", "k"}), integer(150));
}

TEST_F(RespCommands, ExpireRefusesBadArguments) {
  run({"set", "k", "v"});
  EXPECT_EQ(run({"expire", "k", "abc"}), kNotInteger);
  EXPECT_EQ(run({"expire", "k", "9223372036854775807"}), error("ERR invalid expire time in 'expire' command"));
  EXPECT_EQ(run({"pexpire", "k", "9223372036854775807"}), error("ERR invalid expire time in 'pexpire' command"));
  EXPECT_EQ(run({"expire", "k", "1", "nx", "xx"}),
            error("ERR NX and XX, GT or LT options at the same time are not compatible"));
  EXPECT_EQ(run({"expire", "k", "1", "gt", "lt"}), error("ERR GT and LT options at the same time are not compatible"));
  EXPECT_EQ(run({"expire", "k", "1", "foo"}), error("ERR Unsupported option foo"));
  // Redis trims line ends off the end of the error and shows the others as spaces.
  EXPECT_EQ(run({"expire", "k", "1", "\r"}), error("ERR Unsupported option "));
  EXPECT_EQ(run({"expire", "k", "1", "a\r\nb\n"}), error("ERR Unsupported option a  b"));
  EXPECT_EQ(run({"ttl", "k"}), integer(-1));
}

TEST_F(RespCommands, PersistRemovesTheTtl) {
  EXPECT_EQ(run({"persist", "k"}), integer(0));
  run({"set", "k", "v", "ex", "10"});
  EXPECT_EQ(run({"persist", "k"}), integer(1));
  EXPECT_EQ(run({"persist", "k"}), integer(0));
  EXPECT_EQ(run({"ttl", "k"}), integer(-1));
}

TEST_F(RespCommands, FlushEmptiesTheKeyspace) {
  run({"mset", "a", "1", "b", "2"});
  EXPECT_EQ(run({"flushall"}), kOk);
  EXPECT_EQ(run({"dbsize"}), integer(0));
  run({"set", "a", "1"});
  EXPECT_EQ(run({"flushdb", "async"}), kOk);
  EXPECT_EQ(run({"dbsize"}), integer(0));
  EXPECT_EQ(run({"flushall", "foo"}), kSyntax);
}

// --- lists --------------------------------------------------------------------------------

TEST_F(RespCommands, PushAndRange) {
  EXPECT_EQ(run({"rpush", "l", "a", "b"}), integer(2));
  EXPECT_EQ(run({"lpush", "l", "y", "z"}), integer(4));  // each to the head in turn
  EXPECT_EQ(run({"llen", "l"}), integer(4));
  EXPECT_EQ(run({"lrange", "l", "0", "-1"}), array({bulk("z"), bulk("y"), bulk("a"), bulk("b")}));
  EXPECT_EQ(run({"lrange", "l", "-2", "-1"}), array({bulk("a"), bulk("b")}));
  EXPECT_EQ(run({"lrange", "l", "-100", "1"}), array({bulk("z"), bulk("y")}));
  EXPECT_EQ(run({"lrange", "l", "2", "100"}), array({bulk("a"), bulk("b")}));
  EXPECT_EQ(run({"lrange", "l", "3", "1"}), kEmptyArray);
  EXPECT_EQ(run({"lrange", "l", "4", "10"}), kEmptyArray);
  EXPECT_EQ(run({"lrange", "nosuch", "0", "-1"}), kEmptyArray);
  EXPECT_EQ(run({"lrange", "l", "a", "1"}), kNotInteger);
}

TEST_F(RespCommands, PopOneOrMany) {
  run({"rpush", "l", "a", "b", "c", "d", "e"});
  EXPECT_EQ(run({"lpop", "l"}), bulk("a"));
  EXPECT_EQ(run({"rpop", "l"}), bulk("e"));
  EXPECT_EQ(run({"rpop", "l", "2"}), array({bulk("d"), bulk("c")}));
  EXPECT_EQ(run({"lpop", "l", "0"}), kEmptyArray);
  EXPECT_EQ(run({"lpop", "l", "10"}), array({bulk("b")}));
  EXPECT_EQ(run({"exists", "l"}), integer(0));  // gone with its last element
  EXPECT_EQ(run({"lpop", "l"}), kNil);
  EXPECT_EQ(run({"lpop", "l", "2"}), kNilArray);
  EXPECT_EQ(run({"rpop", "l", "0"}), kNilArray);
}

TEST_F(RespCommands, PopCountMustBePositive) {
  const std::string want = error("ERR value is out of range, must be positive");
  run({"rpush", "l", "a"});
  EXPECT_EQ(run({"lpop", "l", "-1"}), want);
  EXPECT_EQ(run({"lpop", "l", "abc"}), want);
}

TEST_F(RespCommands, ListCommandsOnAStringAreWrongType) {
  run({"set", "s", "v"});
  EXPECT_EQ(run({"lpush", "s", "a"}), kWrongType);
  EXPECT_EQ(run({"rpush", "s", "a"}), kWrongType);
  EXPECT_EQ(run({"lpop", "s"}), kWrongType);
  EXPECT_EQ(run({"rpop", "s", "1"}), kWrongType);
  EXPECT_EQ(run({"llen", "s"}), kWrongType);
  EXPECT_EQ(run({"lrange", "s", "0", "-1"}), kWrongType);
  EXPECT_EQ(run({"get", "s"}), bulk("v"));
}

// --- memory bound -------------------------------------------------------------------------

class RespCommandsWithSmallMemory : public RespCommands {
 protected:
  RespCommandsWithSmallMemory() : RespCommands(4096) {}
};

TEST_F(RespCommandsWithSmallMemory, CommandsThatAddDataAreRefusedPastMaxMemory) {
  const std::string oom = error("OOM command not allowed when used memory > 'maxmemory'.");
  EXPECT_EQ(run({"set", "big", std::string(3000, 'x')}), kOk);
  EXPECT_EQ(run({"set", "more", std::string(1000, 'x')}), kOk);  // it was not over before this
  EXPECT_EQ(run({"set", "k", "v"}), oom);
  EXPECT_EQ(run({"mset", "k", "v"}), oom);
  EXPECT_EQ(run({"incr", "n"}), oom);
  EXPECT_EQ(run({"append", "big", "x"}), oom);
  EXPECT_EQ(run({"lpush", "l", "a"}), oom);
  EXPECT_EQ(run({"rpush", "l", "a"}), oom);
  // Reading, expiring and freeing still work, and freeing lifts the refusal.
  EXPECT_EQ(run({"get", "more"}), bulk(std::string(1000, 'x')));
  EXPECT_EQ(run({"expire", "nosuch", "10"}), integer(0));
  EXPECT_EQ(run({"del", "big"}), integer(1));
  EXPECT_EQ(run({"set", "k", "v"}), kOk);
}

// --- connection ---------------------------------------------------------------------------

TEST_F(RespCommands, PingAndEcho) {
  EXPECT_EQ(run({"ping"}), "+PONG\r\n");
  EXPECT_EQ(run({"ping", "hi"}), bulk("hi"));
  EXPECT_EQ(run({"echo", "x y"}), bulk("x y"));
  EXPECT_EQ(run({"echo"}), error("ERR wrong number of arguments for 'echo' command"));
}

TEST_F(RespCommands, OnlyDatabaseZeroExists) {
  EXPECT_EQ(run({"select", "0"}), kOk);
  EXPECT_EQ(run({"select", "1"}), error("ERR DB index is out of range"));
  EXPECT_EQ(run({"select", "-1"}), error("ERR DB index is out of range"));
  EXPECT_EQ(run({"select", "abc"}), kNotInteger);
  // An integer out of int's range has words of its own in Redis 7.0.15 (found by the
  // differential test against redis-server).
  EXPECT_EQ(run({"select", "99999999999"}),
            error("ERR value is out of range, value must between -2147483648 and 2147483647"));
  EXPECT_EQ(run({"select", "-2147483649"}),
            error("ERR value is out of range, value must between -2147483648 and 2147483647"));
}

TEST_F(RespCommands, QuitAnswersOkAndAsksToClose) {
  EXPECT_FALSE(client_.close_after_reply);
  EXPECT_EQ(run({"quit"}), kOk);
  EXPECT_TRUE(client_.close_after_reply);
}

TEST_F(RespCommands, HelloAnswersTheResp2Map) {
  const std::string want = array({bulk("server"), bulk("redis"), bulk("version"), bulk("7.0.15"), bulk("proto"),
                                  integer(2), bulk("id"), integer(client_.id), bulk("mode"), bulk("standalone"),
                                  bulk("role"), bulk("master"), bulk("modules"), kEmptyArray});
  EXPECT_EQ(run({"hello"}), want);
  EXPECT_EQ(run({"hello", "2"}), want);
  EXPECT_EQ(run({"hello", "3"}), error("NOPROTO unsupported protocol version"));
  EXPECT_EQ(run({"hello", "4"}), error("NOPROTO unsupported protocol version"));
  EXPECT_EQ(run({"hello", "x"}), error("ERR Protocol version is not an integer or out of range"));
  EXPECT_EQ(run({"hello", "2", "foo"}), error("ERR Syntax error in HELLO option 'foo'"));
  EXPECT_EQ(run({"hello", "2", "auth", "default", "pass", "setname", "me"}), want);
  EXPECT_EQ(client_.name, "me");
}

TEST_F(RespCommands, ClientNameAndInfo) {
  EXPECT_EQ(run({"client", "getname"}), kNil);
  EXPECT_EQ(run({"client", "setname", "conn-1"}), kOk);
  EXPECT_EQ(run({"client", "getname"}), bulk("conn-1"));
  EXPECT_EQ(run({"client", "setname", "a b"}),
            error("ERR Client names cannot contain spaces, newlines or special characters."));
  EXPECT_EQ(run({"client", "setname", "a", "b"}), error("ERR wrong number of arguments for 'client|setname' command"));
  EXPECT_EQ(run({"client", "setinfo", "lib-name", "redis-py"}), kOk);
  EXPECT_EQ(run({"client", "setinfo", "LIB-VER", "1.0"}), kOk);
  EXPECT_EQ(run({"client", "setinfo", "other", "1"}), error("ERR Unrecognized option 'other'"));
  EXPECT_EQ(run({"client", "id"}), integer(client_.id));
  EXPECT_EQ(run({"client", "foo"}), error("ERR unknown subcommand 'foo'. Try CLIENT HELP."));
  EXPECT_EQ(run({"reset"}), "+RESET\r\n");
  EXPECT_EQ(run({"client", "getname"}), kNil);
}

// --- server -------------------------------------------------------------------------------

TEST_F(RespCommands, ConfigGetAnswersWhatRedisBenchmarkAsks) {
  EXPECT_EQ(run({"config", "get", "save"}), array({bulk("save"), bulk("")}));
  EXPECT_EQ(run({"config", "get", "appendonly"}), array({bulk("appendonly"), bulk("no")}));
  EXPECT_EQ(run({"config", "get", "nosuch"}), kEmptyArray);
  EXPECT_EQ(run({"CONFIG", "GET", "SAVE", "appendonly", "sav*"}),
            array({bulk("appendonly"), bulk("no"), bulk("save"), bulk("")}));
  EXPECT_EQ(run({"config", "get", "maxmemory"}), array({bulk("maxmemory"), bulk("0")}));
  EXPECT_EQ(run({"config", "get", "max?emory-*"}), array({bulk("maxmemory-policy"), bulk("noeviction")}));
  EXPECT_EQ(run({"config", "set", "save", ""}), error("ERR unknown subcommand 'set'. Try CONFIG HELP."));
}

TEST_F(RespCommands, CommandDescribesTheTable) {
  EXPECT_EQ(run({"command", "count"}), integer(static_cast<long long>(command_table().size())));
  EXPECT_EQ(run({"command", "docs"}), kEmptyArray);
  EXPECT_EQ(run({"command", "info", "get", "nosuch"}),
            array({array({bulk("get"), integer(2), array({"+readonly\r\n", "+fast\r\n"}), integer(1), integer(1),
                          integer(1), kEmptyArray, kEmptyArray, kEmptyArray, kEmptyArray}),
                   kNil}));
  EXPECT_EQ(run({"command"}).rfind(cat({"*", std::to_string(command_table().size()), "\r\n"}), 0), 0u);
  EXPECT_EQ(run({"command", "foo"}), error("ERR unknown subcommand 'foo'. Try COMMAND HELP."));
}

TEST_F(RespCommands, InfoReportsServerClientsMemoryAndKeyspace) {
  run({"set", "a", "1"});
  run({"set", "b", "2", "ex", "100"});
  const std::string info = run({"info"});
  for (std::string_view line :
       {"# Server\r\n", "redis_version:7.0.15\r\n", "# Clients\r\n", "connected_clients:1\r\n", "# Memory\r\n",
        "used_memory:", "maxmemory_policy:noeviction\r\n", "# Keyspace\r\n", "db0:keys=2,expires=1,avg_ttl=0\r\n"})
    EXPECT_NE(info.find(line), std::string::npos) << line;
  EXPECT_NE(info.find(cat({"used_memory:", std::to_string(keyspace_.used_memory()), "\r\n"})), std::string::npos);
}

TEST_F(RespCommands, InfoSectionsAreSelectable) {
  const std::string keyspace_only = run({"info", "KEYSPACE"});
  EXPECT_EQ(keyspace_only, bulk("# Keyspace\r\n"));  // no keys: no db0 line, as Redis
  const std::string two = run({"info", "clients", "memory"});
  EXPECT_NE(two.find("# Clients\r\nconnected_clients:1\r\n\r\n# Memory\r\n"), std::string::npos);
  EXPECT_EQ(two.find("# Server"), std::string::npos);
  EXPECT_EQ(run({"info", "nosuch"}), bulk(""));
}

// --- concurrency --------------------------------------------------------------------------

TEST_F(RespCommands, MsetIsAtomicForConcurrentMget) {
  // Eight keys, so that they span several shards; a writer flips all of them between two
  // values with one MSET, a reader must never see a mix.
  std::vector<std::string> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(cat({"key:", std::to_string(i)}));
  auto mset = [&](std::string_view value) {
    std::vector<std::string_view> argv = {"mset"};
    for (const std::string& key : keys) {
      argv.push_back(key);
      argv.push_back(value);
    }
    return run(argv);
  };
  mset("a");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) mset(i % 2 ? "a" : "b");
  });
  std::vector<std::string_view> mget = {"mget"};
  for (const std::string& key : keys) mget.push_back(key);
  const std::string all_a = "*8\r\n" + [] {
    std::string s;
    for (int i = 0; i < 8; ++i) s += "$1\r\na\r\n";
    return s;
  }();
  const std::string all_b = "*8\r\n" + [] {
    std::string s;
    for (int i = 0; i < 8; ++i) s += "$1\r\nb\r\n";
    return s;
  }();
  int mixed = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string reply = run(mget);
    if (reply != all_a && reply != all_b) ++mixed;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(mixed, 0);
}

TEST_F(RespCommands, ConcurrentIncrementsAreNeverLost) {
  constexpr int kThreads = 4;
  constexpr int kEach = 25000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) run({"incr", "counter"});
    });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(run({"get", "counter"}), bulk(std::to_string(kThreads * kEach)));
}

}  // namespace
}  // namespace iomux::resp
