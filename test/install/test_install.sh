#!/usr/bin/env bash
# test_install.sh - proves that an installed zmesh is usable as a user would
# use it: installs the build tree into a temporary prefix, checks what got
# there, builds examples/ against it (find_package and pkg-config), and runs
# the hello publisher/subscriber pair once on this host with a mesh name of
# its own, expecting the subscriber to get every event.
#
# usage: test_install.sh BUILD_DIR SOURCE_DIR [C_COMPILER [SANITIZERS]]
# Run by CTest (label "install"); removes its temporary directory and stops
# the processes it started, by PID, however it ends.
set -euo pipefail

build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR [CC [SANITIZE]]}
source=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR [CC [SANITIZE]]}
cc=${3:-cc}
sanitize=${4:-}
events=5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zmesh-install.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "-- $*"
}

# Runs a command quietly, showing its output only when it fails.
quiet() {
    local log="$tmp/step.log"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "$*"
    fi
}

prefix="$tmp/prefix"
step "cmake --install into a temporary prefix"
quiet cmake --install "$build" --prefix "$prefix"

step "checking the installed files"
[ -f "$prefix/include/zmesh.h" ] || fail "include/zmesh.h not installed"
extra=$(find "$prefix/include" -type f ! -name zmesh.h)
[ -z "$extra" ] || fail "private headers installed: $extra"
lib=$(find "$prefix" -name 'libzmesh.so' | head -n 1)
[ -n "$lib" ] || fail "libzmesh.so not installed"
libdir=$(dirname "$lib")
[ -f "$libdir/libzmesh.a" ] || fail "libzmesh.a not installed"
[ -f "$libdir/cmake/zmesh/zmeshConfig.cmake" ] ||
    fail "zmeshConfig.cmake not installed"
[ -f "$libdir/cmake/zmesh/zmeshConfigVersion.cmake" ] ||
    fail "zmeshConfigVersion.cmake not installed"
[ -f "$libdir/pkgconfig/libzmesh.pc" ] || fail "libzmesh.pc not installed"
for tool in mesh-tap mesh-bench; do
    [ -x "$prefix/bin/$tool" ] || fail "bin/$tool not installed"
    # The tools must find the library they were installed with, without
    # LD_LIBRARY_PATH (an RPATH relative to bin/).
    if env -u LD_LIBRARY_PATH ldd "$prefix/bin/$tool" | grep -q 'not found'; then
        env -u LD_LIBRARY_PATH ldd "$prefix/bin/$tool" >&2
        fail "installed bin/$tool cannot find its libraries"
    fi
done

step "checking libzmesh.pc points into the prefix it was installed to"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$(pkg-config --cflags libzmesh)
libs=$(pkg-config --libs libzmesh)
case " $cflags $libs " in
*"$prefix"*) ;;
*) fail "pkg-config libzmesh gives '$cflags $libs', not paths under $prefix" ;;
esac

step "building examples/ against the installed package"
flags=()
if [ -n "$sanitize" ]; then
    # A sanitized libzmesh.so needs the sanitizer runtime in the program.
    flags=("-DCMAKE_C_FLAGS=-fsanitize=$sanitize -fno-omit-frame-pointer"
        "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitize")
fi
quiet cmake -S "$source/examples" -B "$tmp/examples" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" "${flags[@]}"
quiet cmake --build "$tmp/examples" -j2
bin="$tmp/examples/bin"
for program in publisher subscriber order-service payment-service \
    shipping-service; do
    [ -x "$bin/$program" ] || fail "examples did not build $program"
done

mesh="zmesh-install-$$-$RANDOM"
step "running the hello pair on mesh $mesh ($events events)"
"$bin/subscriber" --mesh "$mesh" --count "$events" --timeout-ms 30000 \
    >"$tmp/subscriber.out" 2>&1 &
pids+=($!)
sub_pid=$!
publisher_status=0
timeout 40 "$bin/publisher" --mesh "$mesh" --count "$events" \
    --interval-ms 20 --wait-ms 20000 >"$tmp/publisher.out" 2>&1 ||
    publisher_status=$?
subscriber_status=0
# The subscriber ends by itself after the events or its 30 s timeout.
wait "$sub_pid" || subscriber_status=$?
pids=()

echo "publisher (exit status $publisher_status):"
sed 's/^/  | /' "$tmp/publisher.out"
echo "subscriber (exit status $subscriber_status):"
sed 's/^/  | /' "$tmp/subscriber.out"

[ "$publisher_status" -eq 0 ] || fail "publisher exited with $publisher_status"
[ "$subscriber_status" -eq 0 ] ||
    fail "subscriber exited with $subscriber_status"
grep -q "^subscriber: received $events of $events events$" \
    "$tmp/subscriber.out" || fail "subscriber did not receive $events events"
for n in $(seq 1 "$events"); do
    grep -q "^hello.counter #$n from hello-publisher: {\"n\":$n,\"text\":\"hello\"}$" \
        "$tmp/subscriber.out" || fail "event $n missing or garbled"
done
echo "PASS: installed zmesh builds and runs the examples"
