// A TCP proxy as a Handler, on any of the ten models: each client connection gets a connection
// to an upstream, opened on the client's own thread (Loop::connect), and bytes are relayed both
// ways as they come, whatever the protocol (redis-cli through it to redis-server, curl and wrk
// to an HTTP server). HAProxy's `mode tcp` and nginx's `stream` do this job.
//
//   upstreams     round-robin over the list; one that refuses (or does not answer within
//                 connect_timeout) is skipped by new clients for retry_after, and the client
//                 tries the next; when none answers, the client is closed and the reason logged
//   memory        each direction owes at most about max_buffered: past it the side that reads
//                 pauses (TCP then slows its peer), and resumes once the other side has sent
//                 half of it; so a client that reads slowly holds the upstream back, not the
//                 proxy's memory
//   idle          a pair that moves nothing either way for idle_timeout (10 min) is closed
//   half-close    a FIN from either peer is passed on once what came before it has been sent;
//                 the pair ends when both directions have ended, or when either side fails
//                 (the other then sends what it owes, then FIN)
//
// Written on the public API only (src/protocols/proxy_handler.cpp); docs/handlers.md walks
// through it.
//
//   auto server = iomux::make_server(opts, iomux::proxy_protocol({.upstreams = {to}}));
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "iomux/endpoint.hpp"
#include "iomux/handler.hpp"

namespace iomux {

struct ProxyOptions {
  // Numeric addresses or Unix sockets (resolve host names before: never on a loop).
  std::vector<Endpoint> upstreams;
  std::chrono::milliseconds connect_timeout{10'000};
  // How long new clients skip an upstream that refused or timed out (while another is not
  // skipped; when all are, they are tried anyway, in turn).
  std::chrono::milliseconds retry_after{10'000};
  // How much one direction may owe its peer before the side feeding it stops reading. Keep it
  // well below ServerOptions::max_pending: the server's own back-pressure would pause the side
  // that owes, and with it the other direction.
  std::size_t max_buffered = 256 * 1024;
  // A pair that moves no byte either way for this long is closed (nginx stream's
  // proxy_timeout, with its default; HAProxy's `timeout client`/`timeout server`); 0: never.
  // Per pair, not per side: a long download keeps its silent client side open.
  std::chrono::milliseconds idle_timeout{600'000};
};

// Throws ServerError when `upstreams` is empty.
HandlerFactory proxy_protocol(ProxyOptions options);

}  // namespace iomux
