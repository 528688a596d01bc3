/*
 * floor_epoll.c - the "floor" peer: the least work a server can do per
 * request.
 *
 * One thread, level-triggered epoll, the fd itself in epoll_data.  The fast
 * path for a readable connection is exactly one read() into a shared static
 * 64 KiB buffer followed by one write() of the reply.  Only when that write
 * comes up short is the remainder copied into a small per-connection heap
 * buffer; the connection then stops reading (EPOLLOUT only) until the
 * remainder is flushed, so output is never lost or reordered and memory stays
 * bounded.
 *
 * Usage: peer_floor_epoll --port P [--host H] [--protocol ack|echo]
 *                         [--reply TEXT]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF_SIZE (64 * 1024)
#define MAX_EVENTS 512
#define LISTEN_BACKLOG 4096

#include "peer_common.h"

static int open_listener(const char* host, int port) {
  struct addrinfo* res = resolve_listen_address(host, port);
  if (!res) return -1;
  int fd = -1;
  for (struct addrinfo* ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0) break;
    perror("bind/listen");
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

/* ------------------------------------------------------ connection state */

/* Pending output after a short write.  len == 0 means "nothing pending",
 * which is the state of every connection on the fast path. */
struct conn {
  char* buf;
  uint32_t off;
  uint32_t len;
};

static struct conn* conns;
static size_t conns_cap;

static int ensure_conn_slot(int fd) {
  if ((size_t)fd < conns_cap) return 0;
  size_t ncap = conns_cap ? conns_cap : 1024;
  while (ncap <= (size_t)fd) ncap *= 2;
  struct conn* n = realloc(conns, ncap * sizeof *n);
  if (!n) return -1;
  memset(n + conns_cap, 0, (ncap - conns_cap) * sizeof *n);
  conns = n;
  conns_cap = ncap;
  return 0;
}

static int epfd;
static int spare_fd = -1; /* kept open to shed connections on EMFILE */
static char rbuf[READ_BUF_SIZE];
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void close_conn(int fd) {
  struct conn* c = &conns[fd];
  if (c->buf) {
    free(c->buf);
    c->buf = NULL;
  }
  c->off = c->len = 0;
  close(fd); /* also drops it from the epoll set */
}

/* Write failed to take everything: keep the remainder and wait for EPOLLOUT.
 * Reading is paused until the remainder is gone. */
static void keep_remainder(int fd, const char* data, size_t len) {
  struct conn* c = &conns[fd];
  c->buf = malloc(len);
  if (!c->buf) {
    close_conn(fd);
    return;
  }
  memcpy(c->buf, data, len);
  c->off = 0;
  c->len = (uint32_t)len;
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0) close_conn(fd);
}

static void flush_remainder(int fd) {
  struct conn* c = &conns[fd];
  for (;;) {
    ssize_t w = write(fd, c->buf + c->off, c->len - c->off);
    if (w > 0) {
      c->off += (uint32_t)w;
      if (c->off == c->len) break;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return; /* still blocked, EPOLLOUT stays armed */
    close_conn(fd);
    return;
  }
  free(c->buf);
  c->buf = NULL;
  c->off = c->len = 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0) close_conn(fd);
}

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
        /* Out of descriptors: accept and drop one connection so the
         * level-triggered listener does not spin. */
        close(spare_fd);
        int victim = accept(lfd, NULL, NULL);
        if (victim >= 0) close(victim);
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        continue;
      }
      return; /* EAGAIN or an unrecoverable error */
    }
    if (ensure_conn_slot(fd) != 0) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) close(fd);
  }
}

int main(int argc, char** argv) {
  struct options opt;
  parse_options(argc, argv, &opt);

  raise_nofile_limit();
  signal(SIGPIPE, SIG_IGN);

  /* SIGINT/SIGTERM stay blocked except inside epoll_pwait, so a stop
   * request can never slip in between the flag check and the wait. */
  sigset_t stop_set, wait_mask;
  sigemptyset(&stop_set);
  sigaddset(&stop_set, SIGINT);
  sigaddset(&stop_set, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop_set, &wait_mask);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGTERM);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  const char* reply = opt.reply;
  const size_t reply_len = strlen(reply);
  const int echo = opt.echo;

  int lfd = open_listener(opt.host, opt.port);
  if (lfd < 0) {
    fprintf(stderr, "cannot listen on %s:%d\n", opt.host, opt.port);
    return 1;
  }
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("epoll_create1");
    return 1;
  }
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0) {
    perror("epoll_ctl");
    return 1;
  }
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (ensure_conn_slot(1023) != 0) {
    perror("malloc");
    return 1;
  }

  print_listening(lfd);

  struct epoll_event events[MAX_EVENTS];
  while (!stop_requested) {
    int n = epoll_pwait(epfd, events, MAX_EVENTS, -1, &wait_mask);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_pwait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        accept_all(lfd);
        continue;
      }
      if (conns[fd].len != 0) { /* slow path: output pending */
        flush_remainder(fd);
        continue;
      }
      ssize_t r = read(fd, rbuf, sizeof rbuf);
      if (r > 0) {
        const char* out = echo ? rbuf : reply;
        size_t out_len = echo ? (size_t)r : reply_len;
        ssize_t w = write(fd, out, out_len);
        if (w == (ssize_t)out_len) continue; /* the fast path */
        if (w < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            close_conn(fd);
            continue;
          }
          w = 0;
        }
        keep_remainder(fd, out + w, out_len - (size_t)w);
      } else if (r == 0) {
        close_conn(fd);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        close_conn(fd);
      }
    }
  }

  for (size_t fd = 0; fd < conns_cap; fd++) free(conns[fd].buf);
  free(conns);
  close(epfd);
  close(lfd);
  return 0;
}
