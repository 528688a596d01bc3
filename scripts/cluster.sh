#!/usr/bin/env bash
# Starts a cluster of `iomux serve` backends on loopback with a balancer in front, and stops it.
#
#   scripts/cluster.sh http N [options] [-- SERVE_ARGS...]   N `--protocol http` backends, HAProxy
#   scripts/cluster.sh resp N [options] [-- SERVE_ARGS...]   N `--protocol resp` backends, twemproxy
#   scripts/cluster.sh restart I                              stop backend I (SIGTERM, a graceful
#                                                             stop), start it again on its port
#   scripts/cluster.sh upgrade I                              upgrade backend I in place (SIGUSR2:
#                                                             a new process takes its socket)
#   scripts/cluster.sh stop                                   stop everything it started
#
# Options: --base-port P (backend I listens on P+I-1; default: a free port each, chosen by the
# kernel), --front-port P (the balancer's; default: a free one), --model M (default epoll),
# --template FILE (the balancer's configuration to start from; default the docs/deploy one),
# --backend nginx (http only: N nginx processes instead of `iomux serve`, one worker each,
# answering /plaintext and /health as iomux does, to compare the two behind the same HAProxy).
# SERVE_ARGS go to every `iomux serve`.
#
# The balancer's configuration is generated from docs/deploy/haproxy.cfg or
# docs/deploy/nutcracker.yml: the same settings, with this cluster's ports. Everything the
# script starts is recorded in the state directory, $CLUSTER_DIR (default /tmp/iomux-cluster):
# backend-I.pid, backend-I.port, backend-I.log, balancer.pid, balancer.log, the generated
# configuration, and `front`, the balancer's address (HOST:PORT), which is also the last line
# printed. `stop` and `restart` signal only the pids recorded there, after checking that each is
# still the program that was started.
#
# Environment: IOMUX (default build/iomux), HAPROXY (haproxy), NUTCRACKER (nutcracker), NGINX
# (nginx).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${CLUSTER_DIR:-/tmp/iomux-cluster}
iomux=${IOMUX:-$root/build/iomux}
haproxy=${HAPROXY:-haproxy}
nutcracker=${NUTCRACKER:-nutcracker}
nginx=${NGINX:-nginx}
host=127.0.0.1
start_timeout_s=10
stop_timeout_s=15

die() {
  echo "cluster: $*" >&2
  exit 1
}
say() { echo "cluster: $*" >&2; }

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# A free TCP port on the loopback: the kernel's choice for a socket bound to port 0, released at
# once. Another program may take it before the balancer binds it; the balancer then fails to
# start and says so (and --front-port names one).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The file a program name or path runs, symlinks resolved, as /proc/PID/exe names it.
program_file() {
  readlink -f "$(command -v "$1" || echo "$1")"
}

# Whether pid $1 is alive and runs the program file $2 (the pid may have been reused since it
# was recorded: then it is not ours to signal; a zombie has no exe and is not alive).
is_ours() {
  local pid=$1 file=$2 exe
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "${exe% (deleted)}" == "$file" ]]
}

# Sends SIGTERM to the recorded pid in file $1 if it still runs program file $2, waits for it to
# exit (SIGKILL after $stop_timeout_s), and removes the file.
stop_pidfile() {
  local file=$1 name=$2 pid waited=0
  [[ -f "$file" ]] || return 0
  pid=$(<"$file")
  if is_ours "$pid" "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    while is_ours "$pid" "$name" && ((waited < stop_timeout_s * 10)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    if is_ours "$pid" "$name"; then
      say "$(basename "$name") (pid $pid) still running ${stop_timeout_s}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  elif [[ -d "/proc/$pid" ]] && [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" ]]; then
    say "pid $pid ($file) runs $(readlink "/proc/$pid/exe"), not $name: left alone"
  fi
  rm -f "$file"
}

# The inodes of the sockets listening on TCP port $1 (IPv4), from /proc/net/tcp.
listener_inodes() {
  awk -v port="$(printf ':%04X' "$1")" '$2 ~ port "$" && $4 == "0A" { print $10 }' /proc/net/tcp
}

# Whether process $1 holds a socket listening on port $2 (and not only another program that has
# the port).
holds_listener() {
  local pid=$1 inode fd
  while read -r inode; do
    for fd in /proc/"$pid"/fd/*; do
      [[ "$(readlink "$fd" 2>/dev/null)" == "socket:[$inode]" ]] && return 0
    done
  done < <(listener_inodes "$2")
  return 1
}

# Waits until the balancer (its pid file written by itself once daemonized) listens on port $1;
# false if it exits first (nutcracker binds after it has daemonized, so it says only in its log
# that the port was taken) or after $start_timeout_s.
wait_balancer_listening() {
  local port=$1 tries=0 pid
  while ((tries++ < start_timeout_s * 10)); do
    if [[ -s "$state/balancer.pid" ]]; then
      pid=$(<"$state/balancer.pid")
      is_ours "$pid" "$(program_file "$balancer")" || return 1
      holds_listener "$pid" "$port" && return 0
    fi
    # nutcracker's last words when it gives up (before or after writing its pid file).
    grep -q 'done, rabbit done' "$state/balancer.log" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

# The program the backends run: the one recorded for this cluster (`iomux serve` or nginx).
backend_program() {
  if [[ "$(cat "$state/backend" 2>/dev/null)" == nginx ]]; then
    program_file "$nginx"
  else
    program_file "$iomux"
  fi
}

# nginx as a backend in iomux's place: one process (no master, so the recorded pid is the one
# that serves and is signalled), no access log, and the two routes HAProxy uses with iomux's
# bodies: /plaintext and the health check's /health. `server_tokens off` makes its Server
# header as long as iomux's; nginx adds `Connection: keep-alive` (24 bytes) to every answer,
# which HAProxy drops before its client sees it.
nginx_backend_config() {
  local dir=$1 port=$2
  cat <<EOF
worker_processes 1;
master_process off;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events {
  worker_connections 4096;
}
http {
  access_log off;
  server_tokens off;
  keepalive_requests 1000000000;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen $host:$port backlog=4096;
    location = /plaintext {
      default_type text/plain;
      return 200 "Hello, World!";
    }
    location = /health {
      default_type text/plain;
      return 200 "ok";
    }
  }
}
EOF
}

# Starts nginx as backend $1 on port $2 (0: a free one, chosen here) and records it; it has
# started once it holds the listening socket itself.
start_nginx_backend() {
  local i=$1 port=$2 log="$state/backend-$1.log" dir="$state/backend-$1" pid tries=0
  [[ "$port" != 0 ]] || port=$(free_port)
  mkdir -p "$dir"
  nginx_backend_config "$dir" "$port" >"$dir/nginx.conf"
  : >"$log"
  "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/backend-$i.pid"
  until holds_listener "$pid" "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$state/backend-$i.pid"
      die "backend $i (nginx) did not start: $(tail -n 3 "$log" "$dir/error.log" 2>/dev/null)"
    fi
    ((tries++ < start_timeout_s * 10)) || die "backend $i (nginx, pid $pid) not listening after ${start_timeout_s}s: see $dir/error.log"
    sleep 0.1
  done
  echo "$port" >"$state/backend-$i.port"
  say "backend $i: $host:$port (nginx, pid $pid)"
}

# Starts backend $1 on port $2 (0: the kernel chooses) and records it; the port it listens on is
# read back from its log.
start_backend() {
  if [[ "$(cat "$state/backend" 2>/dev/null)" == nginx ]]; then
    start_nginx_backend "$@"
    return
  fi
  local i=$1 port=$2 log="$state/backend-$1.log" pid tries=0 listening
  local -a args
  # One line without a newline at its end: read says EOF, and has read it.
  read -r -a args <"$state/serve-args" || true
  : >"$log"
  # iomux keeps the pid file itself: after an upgrade (SIGUSR2) it names the new process.
  "$iomux" serve "${args[@]}" --host "$host" --port "$port" --pid-file "$state/backend-$i.pid" </dev/null >>"$log" 2>&1 &
  pid=$!
  echo "$pid" >"$state/backend-$i.pid"
  until listening=$(grep -m1 -oE "listening on $host:[0-9]+" "$log"); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      rm -f "$state/backend-$i.pid"
      die "backend $i did not start: $(tail -n 3 "$log")"
    fi
    ((tries++ < start_timeout_s * 10)) || die "backend $i (pid $pid) not listening after ${start_timeout_s}s: see $log"
    sleep 0.1
  done
  echo "${listening##*:}" >"$state/backend-$i.port"
  say "backend $i: $host:${listening##*:} (pid $pid)"
}

# Writes the balancer's configuration: the template's lines, with the front port on its
# `bind`/`listen` line, and its first server line (the one naming iomux1 and an address)
# repeated once per backend with that backend's name and port; the template's other server
# lines dropped.
generate_config() {
  local template=$1 out=$2 front_port=$3 n=$4 ports="" i
  for ((i = 1; i <= n; i++)); do ports+="$(<"$state/backend-$i.port") "; done
  awk -v front="$host:$front_port" -v ports="$ports" '
    BEGIN { n = split(ports, port, " ") }
    /^[[:space:]]*(bind|listen:)[[:space:]]+127\.0\.0\.1:[0-9]+/ {
      sub(/127\.0\.0\.1:[0-9]+/, front); print; next
    }
    /iomux[0-9]+/ && /127\.0\.0\.1:[0-9]+/ {
      if (done++) next
      for (i = 1; i <= n; i++) {
        line = $0
        sub(/127\.0\.0\.1:[0-9]+/, "127.0.0.1:" port[i], line)
        sub(/iomux[0-9]+/, "iomux" i, line)
        print line
      }
      next
    }
    { print }' "$template" >"$out"
  [[ $(grep -cE 'iomux[0-9]+' "$out") -ge "$n" ]] || die "could not generate $out from $template"
}

# Starts the balancer of cluster kind $1 on the generated configuration $state/$2; false when it
# says it cannot.
start_balancer() {
  if [[ "$1" == http ]]; then
    # -D: it forks once its configuration is loaded and the port bound, so an error is seen here.
    "$haproxy" -q -D -p "$state/balancer.pid" -f "$state/$2" </dev/null >"$state/balancer.log" 2>&1
  else
    : >"$state/balancer.log"
    "$nutcracker" -d -c "$state/$2" -p "$state/balancer.pid" -o "$state/balancer.log" </dev/null
  fi
}

cmd_start() {
  local kind=$1 n=$2
  shift 2
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "the number of backends must be a positive integer (got '$n')"
  local base_port="" front_port="" model=epoll backend=iomux template=""
  local -a serve_args=()
  while (($#)); do
    case "$1" in
      --base-port) base_port=${2:?--base-port needs a port}; shift 2 ;;
      --front-port) front_port=${2:?--front-port needs a port}; shift 2 ;;
      --model) model=${2:?--model needs a model}; shift 2 ;;
      --template) template=${2:?--template needs a file}; shift 2 ;;
      --backend) backend=${2:?--backend needs iomux or nginx}; shift 2 ;;
      --) shift; serve_args=("$@"); break ;;
      *) die "unknown option '$1'" ;;
    esac
  done
  case "$backend" in
    iomux) [[ -x "$iomux" ]] || die "$iomux is not an executable (build it, or set IOMUX)" ;;
    nginx)
      [[ "$kind" == http ]] || die "--backend nginx is for an http cluster"
      command -v "$nginx" >/dev/null || die "$nginx is not on PATH (Debian package nginx)"
      ;;
    *) die "--backend must be iomux or nginx (got '$backend')" ;;
  esac
  local balancer config
  if [[ "$kind" == http ]]; then
    balancer=$haproxy config=haproxy.cfg
    template=${template:-$root/docs/deploy/haproxy.cfg}
  else
    balancer=$nutcracker config=nutcracker.yml
    template=${template:-$root/docs/deploy/nutcracker.yml}
  fi
  [[ -r "$template" ]] || die "cannot read the template $template"
  command -v "$balancer" >/dev/null || die "$balancer is not on PATH (Debian package $(basename "$balancer"))"

  mkdir -p "$state"
  local f
  for f in "$state"/backend-*.pid "$state"/balancer.pid; do
    [[ -f "$f" ]] || continue
    if is_ours "$(<"$f")" "$(program_file "$iomux")" || is_ours "$(<"$f")" "$(program_file "$nginx")" ||
      is_ours "$(<"$f")" "$(program_file "$balancer")"; then
      die "a cluster is running in $state: scripts/cluster.sh stop first"
    fi
  done
  rm -rf "$state"/backend-* "$state"/backend "$state"/balancer.* "$state"/front "$state"/kind "$state"/count
  echo "$kind" >"$state/kind"
  echo "$backend" >"$state/backend"
  echo "$n" >"$state/count"
  printf '%s ' --protocol "$kind" --model "$model" "${serve_args[@]}" >"$state/serve-args"
  # Whatever fails from here leaves nothing running.
  trap 'cmd_stop >/dev/null 2>&1' EXIT

  local i
  for ((i = 1; i <= n; i++)); do
    start_backend "$i" "$([[ -n "$base_port" ]] && echo $((base_port + i - 1)) || echo 0)"
  done
  # A free port chosen here may be taken by another program before the balancer binds it: then
  # another one, three times.
  local attempt attempts=3
  [[ -z "$front_port" ]] || attempts=1
  for ((attempt = 1; ; attempt++)); do
    local port=${front_port:-$(free_port)}
    # HAProxy binds with SO_REUSEPORT: on a port another program listens on, it would share it.
    if [[ -n "$(listener_inodes "$port")" ]]; then
      ((attempt < attempts)) || die "$host:$port is in use"
      continue
    fi
    generate_config "$template" "$state/$config" "$port" "$n"
    if start_balancer "$kind" "$config" && wait_balancer_listening "$port"; then
      front_port=$port
      break
    fi
    stop_pidfile "$state/balancer.pid" "$(program_file "$balancer")"
    ((attempt < attempts)) || die "$(basename "$balancer") did not start on $host:$port: $(tail -n 5 "$state/balancer.log")"
  done
  echo "$host:$front_port" >"$state/front"
  trap - EXIT
  say "$(basename "$balancer") (pid $(<"$state/balancer.pid")) in front; state in $state"
  echo "$host:$front_port"
}

cmd_restart() {
  local i=$1 port
  [[ -f "$state/backend-$i.port" ]] || die "no backend $i in $state"
  port=$(<"$state/backend-$i.port")
  stop_pidfile "$state/backend-$i.pid" "$(backend_program)"
  start_backend "$i" "$port"
}

# Upgrades backend $1 without closing its listening socket: SIGUSR2 makes `iomux serve` start its
# binary again with the same arguments and hand it the socket; once the new process serves, the
# old one drains and exits. Done when the pid file (kept by iomux) names a new process of ours
# and the old one has gone.
cmd_upgrade() {
  local i=$1 file="$state/backend-$1.pid" exe old new tries=0
  exe=$(program_file "$iomux")
  [[ -f "$file" ]] || die "no backend $i in $state"
  [[ "$(cat "$state/backend" 2>/dev/null)" != nginx ]] || die "backend $i is nginx: upgrade is for iomux backends"
  old=$(<"$file")
  is_ours "$old" "$exe" || die "backend $i (pid $old) is not running"
  kill -USR2 "$old"
  while ((tries++ < (start_timeout_s + stop_timeout_s) * 10)); do
    new=$(<"$file")
    if [[ "$new" != "$old" ]] && is_ours "$new" "$exe" && ! is_ours "$old" "$exe"; then
      say "backend $i upgraded: pid $old -> $new"
      return 0
    fi
    sleep 0.1
  done
  die "backend $i (pid $old): not upgraded after $((start_timeout_s + stop_timeout_s))s: see $state/backend-$i.log"
}

cmd_stop() {
  local kind="" f
  [[ -f "$state/kind" ]] && kind=$(<"$state/kind")
  # The balancer first, so no client is sent to a backend that is stopping.
  if [[ "$kind" == resp ]]; then
    stop_pidfile "$state/balancer.pid" "$(program_file "$nutcracker")"
  else
    stop_pidfile "$state/balancer.pid" "$(program_file "$haproxy")"
  fi
  for f in "$state"/backend-*.pid; do
    [[ -e "$f" ]] && stop_pidfile "$f" "$(backend_program)"
  done
  rm -f "$state/front"
  say "stopped (logs kept in $state)"
}

case "${1:-}" in
  http | resp) (($# >= 2)) || usage; cmd_start "$@" ;;
  restart) (($# == 2)) || usage; cmd_restart "$2" ;;
  upgrade) (($# == 2)) || usage; cmd_upgrade "$2" ;;
  stop) cmd_stop ;;
  *) usage ;;
esac
