/*
 * peer_common.h - what the C peers share: their command line (the same for every peer, so a
 * shootout can start any of them alike), the fd limit, and the "listening on" line that
 * `iomux bench --spawn` reads to find the port.
 */
#ifndef IOMUX_PEER_COMMON_H
#define IOMUX_PEER_COMMON_H

#include <netdb.h>

struct options {
  const char* host;
  int port;
  int echo; /* 0 = ack, 1 = echo */
  const char* reply;
};

/* --port P [--host H] [--protocol ack|echo] [--reply TEXT]; "--flag=value" works too. Any
 * problem: usage on stderr, exit 2. --help: usage on stdout, exit 0. */
void parse_options(int argc, char** argv, struct options* o);
/* Raises the soft RLIMIT_NOFILE to the hard limit (15,000 connections need it). */
void raise_nofile_limit(void);
/* Prints "listening on HOST:PORT" for the bound socket fd, and flushes stdout. */
void print_listening(int fd);
/* The addresses to try binding, for a passive TCP socket on host:port (getaddrinfo). NULL
 * after printing why to stderr; otherwise the caller frees the list with freeaddrinfo(). */
struct addrinfo* resolve_listen_address(const char* host, int port);

#endif
