// A Redis-compatible server (RESP2) as a Handler, on any of the ten models: redis-cli and
// redis-benchmark talk to it. Strings (SET with EX/PX/NX/XX, GET, INCR, APPEND, MGET, MSET...),
// lists (LPUSH, RPUSH, LPOP, RPOP, LLEN, LRANGE), expiry (EXPIRE, TTL, PERSIST... checked on
// access and sampled every 100 ms), and what redis-cli and redis-benchmark ask when they start
// (CONFIG GET, COMMAND, INFO, HELLO). One keyspace, shared by every connection on every thread
// and linearizable per key (64 locked shards). docs/protocols.md has the details and where it
// differs from Redis.
//
//   auto server = iomux::make_server(opts, iomux::resp_protocol());
#pragma once

#include <cstddef>

#include "iomux/handler.hpp"

namespace iomux {

struct RespOptions {
  std::size_t max_inline = 64 * 1024;             // longest inline request (Redis: the same)
  std::size_t max_args = 1024 * 1024;             // most arguments in one request
  std::size_t max_bulk = 32 * 1024 * 1024;        // longest argument (Redis: 512 MiB)
  std::size_t max_request = 64 * 1024 * 1024;     // largest request: what a connection may keep
  std::size_t max_memory = std::size_t{1} << 30;  // the keyspace; past it writes answer -OOM; 0: none
  bool active_expiry = true;                      // sample expiring keys every 100 ms
};

// A factory whose handlers share one keyspace, made now and kept as long as the factory (the
// server holds it). The expiry thread runs as long as the keyspace exists.
HandlerFactory resp_protocol(RespOptions options = {});

}  // namespace iomux
