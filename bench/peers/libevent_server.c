/*
 * libevent_server.c - libevent 2.1 peer.
 *
 * Written the way the libevent book suggests: one event_base, an
 * evconnlistener for accepting, and one socket bufferevent per connection.
 * The read callback answers straight from the input evbuffer: ack drains it
 * and queues the reply with bufferevent_write(); echo moves the input chain
 * into the output evbuffer (no copy).  libevent then flushes the output when
 * the socket is writable.  If a peer stops reading and the output grows past
 * a high-water mark, reading is paused until the output has drained.
 *
 * Usage: peer_libevent --port P [--host H] [--protocol ack|echo]
 *                      [--reply TEXT]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define LISTEN_BACKLOG 4096
#define OUTPUT_HIGH_WATER (1024 * 1024)

#include "peer_common.h"

/* ------------------------------------------------------------ the server */

static struct event_base* base;
static const char* reply;
static size_t reply_len;
static int echo;

static void read_cb(struct bufferevent* bev, void* ctx);
static void event_cb(struct bufferevent* bev, short events, void* ctx);

/* Output drained below the low-water mark (0): start reading again. */
static void resume_cb(struct bufferevent* bev, void* ctx) {
  bufferevent_setcb(bev, read_cb, NULL, event_cb, ctx);
  bufferevent_enable(bev, EV_READ);
}

static void read_cb(struct bufferevent* bev, void* ctx) {
  struct evbuffer* in = bufferevent_get_input(bev);
  struct evbuffer* out = bufferevent_get_output(bev);
  if (echo) {
    evbuffer_add_buffer(out, in);
  } else {
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_write(bev, reply, reply_len);
  }
  if (evbuffer_get_length(out) > OUTPUT_HIGH_WATER) {
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, read_cb, resume_cb, event_cb, ctx);
  }
}

/* Output fully flushed after the peer's EOF: now close. */
static void close_when_flushed_cb(struct bufferevent* bev, void* ctx) {
  (void)ctx;
  bufferevent_free(bev);
}

static void event_cb(struct bufferevent* bev, short events, void* ctx) {
  if ((events & BEV_EVENT_EOF) && !(events & BEV_EVENT_ERROR) && evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
    /* The peer half-closed with replies still queued: deliver them,
     * then close. */
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, close_when_flushed_cb, event_cb, ctx);
    return;
  }
  if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev); /* BEV_OPT_CLOSE_ON_FREE closes the socket */
}

static void accept_cb(struct evconnlistener* listener, evutil_socket_t fd, struct sockaddr* addr, int socklen,
                      void* ctx) {
  (void)listener;
  (void)addr;
  (void)socklen;
  (void)ctx;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) {
    evutil_closesocket(fd);
    return;
  }
  bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
  bufferevent_enable(bev, EV_READ);
}

static struct event* accept_retry;

static void accept_retry_cb(evutil_socket_t fd, short what, void* ctx) {
  (void)fd;
  (void)what;
  evconnlistener_enable((struct evconnlistener*)ctx);
}

/* accept() failed (typically EMFILE): back off for a moment instead of
 * spinning on a listener that stays readable. */
static void accept_error_cb(struct evconnlistener* listener, void* ctx) {
  (void)ctx;
  int err = EVUTIL_SOCKET_ERROR();
  if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
    struct timeval tv = {0, 100 * 1000};
    evconnlistener_disable(listener);
    evtimer_add(accept_retry, &tv);
  }
}

static void signal_cb(evutil_socket_t sig, short what, void* ctx) {
  (void)sig;
  (void)what;
  event_base_loopbreak((struct event_base*)ctx);
}

static struct evconnlistener* open_listener(const char* host, int port) {
  struct addrinfo* res = resolve_listen_address(host, port);
  if (!res) return NULL;
  struct evconnlistener* l = NULL;
  for (struct addrinfo* ai = res; ai && !l; ai = ai->ai_next) {
    /* LEV_OPT_REUSEABLE sets SO_REUSEADDR; accepted sockets are made
     * non-blocking by libevent. */
    l = evconnlistener_new_bind(base, accept_cb, NULL,
                                LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG,
                                ai->ai_addr, (int)ai->ai_addrlen);
    if (!l) perror("bind/listen");
  }
  freeaddrinfo(res);
  return l;
}

int main(int argc, char** argv) {
  struct options opt;
  parse_options(argc, argv, &opt);

  raise_nofile_limit();
  signal(SIGPIPE, SIG_IGN);

  reply = opt.reply;
  reply_len = strlen(reply);
  echo = opt.echo;

  base = event_base_new();
  if (!base) {
    fprintf(stderr, "event_base_new failed\n");
    return 1;
  }
  struct evconnlistener* listener = open_listener(opt.host, opt.port);
  if (!listener) {
    fprintf(stderr, "cannot listen on %s:%d\n", opt.host, opt.port);
    return 1;
  }
  evconnlistener_set_error_cb(listener, accept_error_cb);
  accept_retry = evtimer_new(base, accept_retry_cb, listener);

  struct event* sigint = evsignal_new(base, SIGINT, signal_cb, base);
  struct event* sigterm = evsignal_new(base, SIGTERM, signal_cb, base);
  if (!accept_retry || !sigint || !sigterm || event_add(sigint, NULL) != 0 || event_add(sigterm, NULL) != 0) {
    fprintf(stderr, "cannot set up events\n");
    return 1;
  }

  print_listening(evconnlistener_get_fd(listener));

  if (event_base_dispatch(base) < 0) {
    fprintf(stderr, "event_base_dispatch failed\n");
    return 1;
  }

  /* Open connections are simply left to process exit. */
  event_free(sigint);
  event_free(sigterm);
  event_free(accept_retry);
  evconnlistener_free(listener);
  return 0;
}
