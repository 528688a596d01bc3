#!/usr/bin/env bash
# The installed package, used as a user would, in both kinds: a static libiomux and a shared one.
#
#   check_install.sh BUILD_DIR SOURCE_DIR
#
# BUILD_DIR's own library (static unless it was configured with BUILD_SHARED_LIBS=ON) is
# installed into a scratch prefix; the other kind is built here from SOURCE_DIR in the
# library-only configuration (-DIOMUX_BUILD_APPS=OFF -DIOMUX_BUILD_TESTS=OFF
# -DIOMUX_BUILD_BENCH=OFF, which also proves that configuration builds) and installed into
# another. Against each, examples/ is configured with find_package(iomux) while every private
# dependency of libiomux is hidden from CMake (CMAKE_DISABLE_FIND_PACKAGE_*: nlohmann-json,
# CLI11, GoogleTest, pkg-config, and for the shared library liburing), so the configure fails
# if the package asks for more than the public headers need (fmt, threads). A static archive
# still needs liburing at link time: with liburing hidden, its config file must fail naming
# the package to install; with liburing found, it must build. Then:
#   - BUILD_DIR's package: the three handler examples run on every IO model
#     (check_examples.py), and embedded_server gets the tutorial's reply;
#   - the other package: embedded_server gets the reply;
#   - the shared library exports the iomux namespace only (no llhttp symbol), and a program
#     linked against it does not itself need liburing;
#   - pkg-config: embedded_server compiled with the .pc file's flags, for both, gets the reply.
set -euo pipefail
build_dir=$(realpath "$1")
source_dir=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
  echo "install check: $*" >&2
  exit 1
}

if grep -q '^BUILD_SHARED_LIBS:BOOL=ON$' "$build_dir/CMakeCache.txt"; then
  tree_kind=shared other_kind=static other_shared=OFF
else
  tree_kind=static other_kind=shared other_shared=ON
fi

cmake --install "$build_dir" --prefix "$work/$tree_kind" >/dev/null
# The other kind: the library alone, a unity build (the file-by-file compile is checked by
# `make check`'s includes step).
cmake -S "$source_dir" -B "$work/build-$other_kind" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_UNITY_BUILD=ON -DBUILD_SHARED_LIBS=$other_shared \
  -DIOMUX_BUILD_APPS=OFF -DIOMUX_BUILD_TESTS=OFF -DIOMUX_BUILD_BENCH=OFF >"$work/configure-$other_kind.log" ||
  { cat "$work/configure-$other_kind.log"; fail "the library-only configuration does not configure"; }
cmake --build "$work/build-$other_kind" >"$work/build-$other_kind.log" 2>&1 ||
  { tail -n 40 "$work/build-$other_kind.log"; fail "the library-only configuration does not build"; }
cmake --install "$work/build-$other_kind" --prefix "$work/$other_kind" >/dev/null

hidden_private=(-DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON
  -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)

# configure_examples KIND [CMAKE ARGS...]: examples/ against the package installed in $work/KIND.
configure_examples() {
  local kind=$1
  shift
  rm -rf "$work/examples-$kind"
  cmake -S "$source_dir/examples" -B "$work/examples-$kind" -G Ninja -DCMAKE_PREFIX_PATH="$work/$kind" \
    "${hidden_private[@]}" "$@" >"$work/examples-$kind.log" 2>&1
}

# The static archive without liburing: the config file must refuse, naming the package.
if configure_examples static -DCMAKE_DISABLE_FIND_PACKAGE_Liburing=ON; then
  fail "find_package(iomux) of a static libiomux succeeded without liburing"
fi
grep -q 'liburing-dev' "$work/examples-static.log" ||
  { cat "$work/examples-static.log"; fail "the static package's config file does not name liburing-dev"; }
echo "install check: static package without liburing refused, naming liburing-dev"

configure_examples static || { cat "$work/examples-static.log"; fail "examples do not configure against the static package"; }
configure_examples shared -DCMAKE_DISABLE_FIND_PACKAGE_Liburing=ON ||
  { cat "$work/examples-shared.log"; fail "examples do not configure against the shared package with only its public dependencies"; }

# Everything against the tree's own package; embedded_server against the other.
cmake --build "$work/examples-$tree_kind" >/dev/null
cmake --build "$work/examples-$other_kind" --target embedded_server >/dev/null
for kind in static shared; do
  "$work/examples-$kind/embedded_server" epoll >"$work/out-$kind.txt"
  grep -q "replied: ----ok----Request accepted" "$work/out-$kind.txt" ||
    { cat "$work/out-$kind.txt"; fail "embedded_server against the $kind package did not get the reply"; }
done
python3 "$source_dir/tests/install/check_examples.py" "$work/examples-$tree_kind" \
  blocking threaded nonblocking timeout select poll epoll epoll-et sigio uring

# The shared library: a soname, the iomux namespace exported and nothing of llhttp, and
# liburing its own dependency, not the program's.
shared_lib=$(find "$work/shared" -name 'libiomux.so.*' -type f -print -quit)
[[ -n "$shared_lib" ]] || fail "no libiomux.so.* in the shared package"
# (Listings are saved before they are searched: with pipefail, `grep -q` leaving a pipe early
# would fail the writer with SIGPIPE.)
readelf -d "$shared_lib" >"$work/lib-dynamic.txt"
grep -q 'SONAME.*libiomux\.so\.' "$work/lib-dynamic.txt" || fail "$shared_lib has no soname"
nm -D --defined-only "$shared_lib" >"$work/lib-symbols.txt"
if grep -q ' llhttp' "$work/lib-symbols.txt"; then fail "$shared_lib exports llhttp's symbols"; fi
grep -q ' _ZN5iomux' "$work/lib-symbols.txt" || fail "$shared_lib exports nothing of iomux"
readelf -d "$work/examples-shared/embedded_server" >"$work/program-dynamic.txt"
grep -q 'NEEDED.*libiomux\.so' "$work/program-dynamic.txt" || fail "embedded_server is not linked against the shared libiomux"
if grep -q 'NEEDED.*liburing' "$work/program-dynamic.txt"; then
  fail "a program linked against the shared libiomux needs liburing itself"
fi

# pkg-config: the same program, compiled with the flags each .pc file gives.
for kind in static shared; do
  pc_dirs="$work/$kind/lib/pkgconfig:$work/$kind/lib/x86_64-linux-gnu/pkgconfig"
  # shellcheck disable=SC2046  # the flags are words
  c++ -o "$work/pc-$kind" "$source_dir/examples/embedded_server.cpp" \
    $(PKG_CONFIG_PATH=$pc_dirs pkg-config --cflags --libs iomux)
  LD_LIBRARY_PATH="$work/$kind/lib:$work/$kind/lib/x86_64-linux-gnu" "$work/pc-$kind" poll >"$work/pc-out-$kind.txt"
  grep -q "replied: ----ok----Request accepted" "$work/pc-out-$kind.txt" ||
    { cat "$work/pc-out-$kind.txt"; fail "the pkg-config build against the $kind package did not get the reply"; }
done
echo "install check: static and shared packages work with find_package and pkg-config," \
  "with only the public dependencies (fmt, threads; liburing for the static archive)"
