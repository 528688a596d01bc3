#!/usr/bin/env bash
# `cmake --install` into a scratch prefix, then build examples/ against it with find_package
# and run them (the three handler examples on every IO model: check_examples.py), and compile a
# program with pkg-config. Proves the installed package is whole, and that a program using only
# the public API runs unchanged on all ten models.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples" -B "$work/examples" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/examples" >/dev/null
"$work/examples/embedded_server" epoll | tee "$work/out.txt"
grep -q "replied: ----ok----Request accepted" "$work/out.txt"
python3 "$source_dir/tests/install/check_examples.py" "$work/examples" \
  blocking threaded nonblocking timeout select poll epoll epoll-et sigio uring

# pkg-config: the same program, compiled with the flags the .pc file gives.
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
c++ -o "$work/pc_example" "$source_dir/examples/embedded_server.cpp" $(pkg-config --cflags --libs iomux)
"$work/pc_example" poll | grep -q "replied: ----ok----Request accepted"
echo "install check: find_package and pkg-config builds both work"
