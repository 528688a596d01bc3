#!/usr/bin/env bash
# Installs the Debian packages iomux needs to build, test and benchmark. Idempotent: installs
# only what is missing, and needs no network when nothing is.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the peer libraries and tools for `make bench`: the peers'
#                                    libraries, gnuplot, and the real servers and their tools
#                                    (redis-server + redis-benchmark, nginx, h2o, wrk, and the
#                                    TCP proxies HAProxy and nginx stream)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libfmt-dev libcli11-dev nlohmann-json3-dev liburing-dev node-llhttp
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev clang-format
  python3
  # Clients for tests/interop: redis-cli and redis-benchmark, curl, ab, wrk. Clients only:
  # none of these packages installs or starts a service (redis-tools is not redis-server).
  redis-tools curl apache2-utils wrk
  # systemd-socket-activate, for tests/integration/socket_activation_test.cpp. In a container
  # (CI's fresh Debian 12) nothing runs systemd, so installing it starts nothing; a machine
  # booted with systemd has it already.
  systemd
  # The servers of the differential tests, which start their own: redis-server for `make
  # check`'s (tests/differential/), nginx for `make test`'s HTTP one
  # (tests/interop/nginx_differential_test.cpp). The services the packages start are stopped
  # below.
  redis-server nginx
  # The balancers of tests/interop/cluster_test.cpp (scripts/cluster.sh), which starts its own
  # in front of `iomux serve` children; the services the packages start are stopped below.
  haproxy nutcracker
)
bench=0
if [[ "${1:-}" == "--bench" ]]; then
  bench=1
  packages+=(libevent-dev libuv1-dev libasio-dev gnuplot-nox redis-server redis-tools nginx h2o wrk
    haproxy libnginx-mod-stream)
fi
# The Debian packages of the real servers start them as services when installed; `iomux
# shootout` and the tests start their own (on 127.0.0.1, free ports, private configs), and a
# test or bench machine should be quiet. So after installing, they are stopped (nothing
# happens if one is not running) and disabled, so a reboot does not start them either.
services=(redis-server nginx h2o haproxy nutcracker)
stop_services() {
  for s in "${services[@]}"; do
    if command -v service >/dev/null 2>&1 && [[ -e /etc/init.d/$s ]]; then
      $SUDO service "$s" stop >/dev/null 2>&1 || true
    fi
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
    elif command -v update-rc.d >/dev/null 2>&1 && [[ -e /etc/init.d/$s ]]; then
      $SUDO update-rc.d "$s" disable >/dev/null 2>&1 || true
    fi
  done
}
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
stop_services
