#!/usr/bin/env bash
# check-exports.sh - libzmesh.so must export exactly its public API: every
# defined dynamic symbol starts with "zmesh_" and none with "zmesh__" (the
# library's cross-module internals), and every function zmesh.h declares
# with ZMESH_EXPORT is there. Everything else is hidden by
# -fvisibility=hidden; a symbol that leaks is one an application could come
# to depend on, and a missing one is a link error in the application.
#
# usage: scripts/check-exports.sh [path/to/libzmesh.so]
#   (default: build/lib/libzmesh.so). Also run by CTest (label "exports").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lib=${1:-$root/build/lib/libzmesh.so}

[ -f "$lib" ] || {
    echo "check-exports: $lib not found (build first)" >&2
    exit 1
}
command -v nm >/dev/null 2>&1 || {
    echo "check-exports: nm not found (Debian package binutils)" >&2
    exit 1
}

# The linker and the sanitizer/coverage instrumentation add a few symbols
# of their own; they are not ours to hide.
toolchain='^(_init|_fini|_edata|_end|__bss_start|__(start|stop)___sancov_.*|__odr_asan.*|___asan_.*|__asan_.*|__ubsan_.*)$'

symbols=$(nm -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }')
[ -n "$symbols" ] || {
    echo "check-exports: $lib exports no symbols at all" >&2
    exit 1
}
bad=$(grep -vE '^zmesh_' <<<"$symbols" | grep -vE "$toolchain" || true)
internal=$(grep -E '^zmesh__' <<<"$symbols" || true)
bad=$(printf '%s\n%s\n' "$bad" "$internal" | sed '/^$/d' | sort -u)

status=0
count=$(grep -cE '^zmesh_' <<<"$symbols")
if [ -n "$bad" ]; then
    echo "check-exports: $lib exports symbols outside the public API:" >&2
    # shellcheck disable=SC2001 # indent every line
    sed 's/^/  /' <<<"$bad" >&2
    echo "Mark them static, or give them hidden visibility (only ZMESH_EXPORT" \
        "declarations in zmesh.h are public)." >&2
    status=1
fi

# The functions zmesh.h declares: preprocess it (ZMESH_EXPORT becomes the
# visibility attribute), one declaration per line, the name before "(".
header="$root/lib/include/zmesh.h"
declared=$("${CC:-cc}" -E -P "$header" | tr '\n' ' ' | sed 's/;/;\n/g' |
    grep 'visibility("default")' |
    sed -E 's/.*visibility\("default"\)\)\)//' |
    sed -E 's/^[^(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*) *\(.*/\1/' |
    sort -u)
[ -n "$declared" ] || {
    echo "check-exports: found no ZMESH_EXPORT declarations in $header" >&2
    exit 1
}
missing=$(comm -23 <(echo "$declared") <(sort -u <<<"$symbols"))
if [ -n "$missing" ]; then
    echo "check-exports: declared in zmesh.h but not exported by $lib:" >&2
    # shellcheck disable=SC2001 # indent every line
    sed 's/^/  /' <<<"$missing" >&2
    status=1
fi
[ "$status" -eq 0 ] || exit 1
echo "check-exports: OK, $count zmesh_ symbols, exactly the" \
    "$(wc -l <<<"$declared") functions zmesh.h declares"
