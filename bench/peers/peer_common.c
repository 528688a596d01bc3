/* peer_common.c - see peer_common.h. */
#define _GNU_SOURCE
#include "peer_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- options */

static void usage(FILE* out, const char* prog) {
  fprintf(out,
          "usage: %s --port P [--host H] [--protocol ack|echo] [--reply TEXT]\n"
          "  --port P          TCP port to listen on (0 = pick a free one)\n"
          "  --host H          address to bind (default 127.0.0.1)\n"
          "  --protocol ack    answer every chunk read with the reply text (default)\n"
          "  --protocol echo   send received bytes back unchanged\n"
          "  --reply TEXT      reply text for ack (default ----ok----Request accepted)\n",
          prog);
}

_Noreturn static void bad_usage(const char* prog, const char* what, const char* arg) {
  fprintf(stderr, "%s: %s '%s'\n", prog, what, arg);
  usage(stderr, prog);
  exit(2);
}

/* Accepts "--flag value" and "--flag=value".  Any problem: usage, exit 2. */
void parse_options(int argc, char** argv, struct options* o) {
  o->host = "127.0.0.1";
  o->port = -1;
  o->echo = 0;
  o->reply = "----ok----Request accepted";

  for (int i = 1; i < argc; i++) {
    const char* arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout, argv[0]);
      exit(0);
    }
    if (strncmp(arg, "--", 2) != 0) bad_usage(argv[0], "unexpected argument", arg);
    char name[16];
    const char* value = NULL;
    const char* eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    if (name_len >= sizeof name) bad_usage(argv[0], "unknown option", arg);
    memcpy(name, arg, name_len);
    name[name_len] = '\0';
    if (strcmp(name, "--port") != 0 && strcmp(name, "--host") != 0 && strcmp(name, "--protocol") != 0 &&
        strcmp(name, "--reply") != 0)
      bad_usage(argv[0], "unknown option", arg);
    if (eq)
      value = eq + 1;
    else if (i + 1 < argc)
      value = argv[++i];
    else
      bad_usage(argv[0], "missing value for", arg);

    if (strcmp(name, "--port") == 0) {
      char* end = NULL;
      errno = 0;
      long p = strtol(value, &end, 10);
      if (errno || end == value || *end != '\0' || p < 0 || p > 65535) bad_usage(argv[0], "bad port", value);
      o->port = (int)p;
    } else if (strcmp(name, "--host") == 0) {
      if (*value == '\0') bad_usage(argv[0], "bad host", value);
      o->host = value;
    } else if (strcmp(name, "--protocol") == 0) {
      if (strcmp(value, "ack") == 0)
        o->echo = 0;
      else if (strcmp(value, "echo") == 0)
        o->echo = 1;
      else
        bad_usage(argv[0], "bad protocol", value);
    } else {
      if (*value == '\0') bad_usage(argv[0], "reply must not be empty:", value);
      o->reply = value;
    }
  }
  if (o->port < 0) bad_usage(argv[0], "missing required option", "--port");
}

/* ------------------------------------------------------------- utilities */

void raise_nofile_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) perror("setrlimit(RLIMIT_NOFILE)");
  }
}

void print_listening(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char addr[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (getsockname(fd, (struct sockaddr*)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6* s6 = (struct sockaddr_in6*)&ss;
      inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
      port = ntohs(s6->sin6_port);
      printf("listening on [%s]:%d\n", addr, port);
    } else {
      struct sockaddr_in* s4 = (struct sockaddr_in*)&ss;
      inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
      port = ntohs(s4->sin_port);
      printf("listening on %s:%d\n", addr, port);
    }
  }
  fflush(stdout);
}

struct addrinfo* resolve_listen_address(const char* host, int port) {
  struct addrinfo hints, *res = NULL;
  char portstr[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(portstr, sizeof portstr, "%d", port);
  int rc = getaddrinfo(host, portstr, &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "cannot resolve %s: %s\n", host, gai_strerror(rc));
    return NULL;
  }
  return res;
}
