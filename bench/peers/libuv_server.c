/*
 * libuv_server.c - libuv peer.
 *
 * One default loop, a uv_tcp_t listener, and one uv_tcp_t per connection
 * reading with uv_read_start().  Because every read is answered before the
 * read callback returns, the alloc callback hands out one shared static
 * 64 KiB buffer (no per-read allocation).  The reply goes out with
 * uv_try_write() first; only what the kernel did not take is queued with
 * uv_write() (copied for echo, since the read buffer is reused).  While
 * queued output exceeds a high-water mark, reading is paused.
 *
 * Usage: peer_libuv --port P [--host H] [--protocol ack|echo] [--reply TEXT]
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

#include <uv.h>

#define READ_BUF_SIZE (64 * 1024)
#define LISTEN_BACKLOG 4096
#define OUTPUT_HIGH_WATER (1024 * 1024)

#include "peer_common.h"

/* ------------------------------------------------------------ the server */

/* handle.data is NULL for the listener and the signal handles and points to
 * the conn itself for connections, so a generic close callback can tell
 * which handles to free. */
struct conn {
  uv_tcp_t handle;
  int reading;  /* uv_read_start() is in effect */
  int shutting; /* peer sent EOF, draining queued output */
};

/* A queued remainder; for echo the bytes follow the struct. */
struct write_req {
  uv_write_t req;
  char data[];
};

static uv_loop_t* loop;
static uv_tcp_t server;
static uv_signal_t sigint_handle, sigterm_handle;
static char rbuf[READ_BUF_SIZE];
static char* reply;
static size_t reply_len;
static int echo;

static void on_close(uv_handle_t* h) {
  if (h->data) free(h->data);
}

static void close_conn(struct conn* c) {
  if (!uv_is_closing((uv_handle_t*)&c->handle)) uv_close((uv_handle_t*)&c->handle, on_close);
}

static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);

static void on_shutdown(uv_shutdown_t* req, int status) {
  (void)status;
  close_conn(req->handle->data);
  free(req);
}

static void on_write(uv_write_t* req, int status) {
  struct conn* c = req->handle->data;
  free(req);
  if (status < 0) {
    close_conn(c); /* also covers UV_ECANCELED during close */
    return;
  }
  if (!c->reading && !c->shutting && c->handle.write_queue_size == 0 && !uv_is_closing((uv_handle_t*)&c->handle)) {
    if (uv_read_start((uv_stream_t*)&c->handle, on_alloc, on_read) == 0)
      c->reading = 1;
    else
      close_conn(c);
  }
}

static void send_reply(struct conn* c, char* data, size_t len, int copy) {
  uv_stream_t* s = (uv_stream_t*)&c->handle;
  uv_buf_t b = uv_buf_init(data, (unsigned int)len);
  int w = uv_try_write(s, &b, 1);
  if (w == (int)len) return; /* the usual case: the kernel took it all */
  if (w == UV_EAGAIN) {
    w = 0; /* socket full, or earlier output still queued */
  } else if (w < 0) {
    close_conn(c);
    return;
  }
  size_t rest = len - (size_t)w;
  struct write_req* wr = malloc(sizeof *wr + (copy ? rest : 0));
  if (!wr) {
    close_conn(c);
    return;
  }
  if (copy) {
    memcpy(wr->data, data + w, rest);
    b = uv_buf_init(wr->data, (unsigned int)rest);
  } else {
    b = uv_buf_init(data + w, (unsigned int)rest); /* static reply text */
  }
  if (uv_write(&wr->req, s, &b, 1, on_write) != 0) {
    free(wr);
    close_conn(c);
    return;
  }
  if (c->handle.write_queue_size > OUTPUT_HIGH_WATER && c->reading) {
    uv_read_stop(s);
    c->reading = 0;
  }
}

static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  struct conn* c = s->data;
  if (nread > 0) {
    if (echo)
      send_reply(c, buf->base, (size_t)nread, 1);
    else
      send_reply(c, reply, reply_len, 0);
  } else if (nread == UV_EOF && c->handle.write_queue_size > 0) {
    /* The peer half-closed with replies still queued: uv_shutdown()
     * completes after they are written, then the handle is closed. */
    uv_shutdown_t* req = malloc(sizeof *req);
    c->reading = 0;
    c->shutting = 1;
    if (!req || uv_shutdown(req, s, on_shutdown) != 0) {
      free(req);
      close_conn(c);
    }
  } else if (nread < 0) {
    close_conn(c); /* UV_EOF or an error such as ECONNRESET */
  }
  /* nread == 0 is EAGAIN: nothing to do */
}

static void on_connection(uv_stream_t* srv, int status) {
  if (status < 0) return; /* libuv already sheds connections on EMFILE */
  struct conn* c = malloc(sizeof *c);
  if (!c) return;
  if (uv_tcp_init(loop, &c->handle) != 0) {
    free(c);
    return;
  }
  c->handle.data = c;
  c->reading = 0;
  c->shutting = 0;
  int rc = uv_accept(srv, (uv_stream_t*)&c->handle);
  if (rc != 0) {
    uv_close((uv_handle_t*)&c->handle, on_close);
    return;
  }
  uv_tcp_nodelay(&c->handle, 1);
  if (uv_read_start((uv_stream_t*)&c->handle, on_alloc, on_read) != 0) {
    close_conn(c);
    return;
  }
  c->reading = 1;
}

static void close_walk_cb(uv_handle_t* h, void* arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, on_close);
}

static void on_signal(uv_signal_t* h, int sig) {
  (void)sig;
  uv_stop(h->loop);
}

static int open_listener(const char* host, int port) {
  struct addrinfo* res = resolve_listen_address(host, port);
  if (!res) return -1;
  int rc = -1;
  for (struct addrinfo* ai = res; ai; ai = ai->ai_next) {
    uv_tcp_init(loop, &server);
    server.data = NULL;
    /* uv_tcp_bind() sets SO_REUSEADDR itself on Unix. */
    int err = uv_tcp_bind(&server, ai->ai_addr, 0);
    if (err == 0) err = uv_listen((uv_stream_t*)&server, LISTEN_BACKLOG, on_connection);
    if (err == 0) {
      rc = 0;
      break;
    }
    fprintf(stderr, "bind/listen: %s\n", uv_strerror(err));
    uv_close((uv_handle_t*)&server, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
  }
  freeaddrinfo(res);
  return rc;
}

int main(int argc, char** argv) {
  struct options opt;
  parse_options(argc, argv, &opt);

  raise_nofile_limit();
  signal(SIGPIPE, SIG_IGN);

  reply = (char*)opt.reply;
  reply_len = strlen(reply);
  echo = opt.echo;

  loop = uv_default_loop();
  if (open_listener(opt.host, opt.port) != 0) {
    fprintf(stderr, "cannot listen on %s:%d\n", opt.host, opt.port);
    return 1;
  }
  uv_signal_init(loop, &sigint_handle);
  uv_signal_init(loop, &sigterm_handle);
  sigint_handle.data = sigterm_handle.data = NULL;
  uv_signal_start(&sigint_handle, on_signal, SIGINT);
  uv_signal_start(&sigterm_handle, on_signal, SIGTERM);

  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t*)&server, &fd) == 0) print_listening(fd);

  uv_run(loop, UV_RUN_DEFAULT);

  /* Stopped by a signal: close every handle, let the close callbacks run,
   * and shut the loop down cleanly. */
  uv_walk(loop, close_walk_cb, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
