#!/usr/bin/env bash
# quickstart.sh - the two commands a new user (and CI) needs.
#
#   scripts/quickstart.sh demo   build, install into build/_install, build the
#                                examples against that install and run the
#                                order -> payment -> shipping demo
#   scripts/quickstart.sh test   build and run the whole test suite, then a
#                                bounded libFuzzer run (clang)
#
# Each command first installs the Debian packages it needs that are missing
# (apt-get, as root or through sudo). It works from any directory.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build="$root/build"
fuzz_build="$root/build-fuzz"
jobs=$(nproc 2>/dev/null || echo 2)

usage() {
    cat <<EOF
usage: scripts/quickstart.sh demo|test|--help

  demo   install missing Debian packages, build zmesh into build/, install it
         into build/_install, build examples/ against the installed package
         and run examples/demo/run-demo.sh (ends by itself)
  test   install missing Debian packages, build, run every CTest test
         (unit, net, netns, fuzz replay, install, exports, format), then
         build build-fuzz/ with clang and run each libFuzzer target for
         about 20 s; exits non-zero if anything fails
EOF
}

# A failure anywhere (set -e) still ends with one clear line.
finished=0
on_exit() {
    local rc=$?
    if [ "$finished" -eq 0 ] && [ "$rc" -ne 0 ]; then
        echo
        echo "quickstart ${command:-}: FAILED (exit status $rc)" >&2
    fi
}
trap on_exit EXIT

say() {
    printf '\n==> %s\n' "$*"
}

die() {
    printf 'quickstart: error: %s\n' "$*" >&2
    exit 1
}

# --- packages ----------------------------------------------------------------

# Packages both commands need to configure and build the tree (its test
# suite is part of the default build, hence cmocka and python3).
build_packages=(cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
    libcmocka-dev python3)
# What `test` needs on top: clang and its libFuzzer runtime for the fuzz
# run, iproute2 for the netns tests, clang-format for the format check,
# nats-server for the JetStream baseline of `mesh-bench relay`.
test_packages=(clang libclang-rt-14-dev iproute2 clang-format nats-server)

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == *"ok installed" ]]
}

ensure_packages() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "quickstart: no dpkg-query (not Debian?); assuming these are" \
            "installed: build-essential $*" >&2
        return 0
    fi
    if ! pkg_installed build-essential &&
        ! { pkg_installed gcc && pkg_installed make; }; then
        missing+=(build-essential)
    fi
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "quickstart: all needed Debian packages are installed"
        return 0
    fi

    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "missing packages: ${missing[*]}; run as root or install sudo"
        sudo=(sudo)
    fi
    say "installing missing packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
        die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
        --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed"
}

# --- build -------------------------------------------------------------------

# The install prefix is build/_install, where `demo` installs, so nothing
# here ever writes outside the tree (`cmake --install build --prefix DIR`
# puts it elsewhere).
build_tree() {
    say "configuring and building zmesh in build/"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_INSTALL_PREFIX="$build/_install"
    cmake --build "$build" -j"$jobs"
}

# --- ctest with a tally ------------------------------------------------------

total_tests=0
failed_tests=0
skipped_tests=0

# Runs ctest with the given arguments, shows its output and adds its
# results to the tally. Returns ctest's exit status.
run_ctest() {
    local log rc line
    log=$(mktemp)
    set +e
    ctest "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" |
        tail -n 1 || true)
    if [ -n "$line" ]; then
        total_tests=$((total_tests + $(sed -E 's/.* out of ([0-9]+).*/\1/' \
            <<<"$line")))
        failed_tests=$((failed_tests + $(sed -E \
            's/.* ([0-9]+) tests? failed.*/\1/' <<<"$line")))
        skipped_tests=$((skipped_tests + $(grep -c '(Skipped)$' "$log" ||
            true)))
    elif [ "$rc" -ne 0 ]; then
        # ctest itself failed before running anything (no tests, bad dir).
        failed_tests=$((failed_tests + 1))
    fi
    rm -f "$log"
    return "$rc"
}

summary() {
    local verdict=$1 passed
    finished=1
    passed=$((total_tests - failed_tests - skipped_tests))
    echo
    echo "quickstart test: $verdict"
    printf 'quickstart: %d passed, %d failed, %d skipped\n' \
        "$passed" "$failed_tests" "$skipped_tests"
}

# --- commands ----------------------------------------------------------------

cmd_test() {
    local start status=0
    start=$(date +%s)
    ensure_packages "${build_packages[@]}" "${test_packages[@]}"
    build_tree

    say "running the test suite (ctest -j2)"
    run_ctest --test-dir "$build" --output-on-failure --no-tests=error -j2 ||
        status=1

    if command -v clang >/dev/null 2>&1; then
        # Fuzzing needs coverage instrumentation in the library too, not
        # only in the fuzz target itself, or libFuzzer is nearly blind;
        # ASan and UBSan turn silent corruption into findings.
        say "building build-fuzz/ with clang (libFuzzer, ASan, UBSan)"
        CC=clang cmake -S "$root" -B "$fuzz_build" \
            -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZMESH_FUZZ=ON \
            -DZMESH_SANITIZE=address,undefined \
            -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
        # Everything, not only the fuzz targets: it is quick, and it keeps
        # the tree warning-free under clang as well as gcc.
        cmake --build "$fuzz_build" -j"$jobs"
        say "running each fuzz target for about 20 s"
        run_ctest --test-dir "$fuzz_build" -L fuzz --output-on-failure \
            --no-tests=error -j2 || {
            status=1
            echo "quickstart: crashing inputs are in" \
                "$fuzz_build/test/fuzz/crash-* (add them to the corpus)" >&2
        }
    else
        echo "quickstart: clang not found; skipping the libFuzzer run" >&2
    fi

    echo "quickstart: test took $(($(date +%s) - start)) s"
    if [ "$status" -ne 0 ]; then
        summary FAILED
        exit 1
    fi
    summary OK
}

cmd_demo() {
    local prefix="$build/_install" examples="$build/_examples" pcdir
    ensure_packages "${build_packages[@]}"
    build_tree

    say "installing zmesh into build/_install"
    rm -rf "$prefix"
    cmake --install "$build" --prefix "$prefix"
    pcdir=$(dirname "$(find "$prefix" -name libzmesh.pc | head -n 1)")
    [ -f "$pcdir/libzmesh.pc" ] || die "libzmesh.pc was not installed"

    say "building examples/ against the installed zmesh"
    PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
        cmake -S "$root/examples" -B "$examples" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_PREFIX_PATH="$prefix"
    cmake --build "$examples" -j"$jobs"

    say "running the demo"
    # mesh-tap comes from the installed bin/; the library beside it.
    PATH="$prefix/bin:$PATH" \
        LD_LIBRARY_PATH="$(dirname "$pcdir")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        bash "$root/examples/demo/run-demo.sh" --bin "$examples/bin"
    finished=1
    echo "quickstart demo: OK"
}

command=${1:-}
case "$command" in
demo) cmd_demo ;;
test) cmd_test ;;
-h | --help | help) usage ;;
*)
    finished=1
    usage >&2
    exit 2
    ;;
esac
