#!/usr/bin/env bash
# check-format.sh - every C file in lib/ bin/ test/ examples/ must be
# formatted as the repo's .clang-format says (clang-format --dry-run
# -Werror). Fix a failure with `clang-format -i FILE`.
#
# usage: scripts/check-format.sh
# Exits 77 (CTest's "skipped", label "format") when clang-format is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

format=""
for candidate in clang-format clang-format-14; do
    if command -v "$candidate" >/dev/null 2>&1; then
        format=$candidate
        break
    fi
done
if [ -z "$format" ]; then
    echo "check-format: clang-format not found (Debian package" \
        "clang-format); skipping"
    exit 77
fi

mapfile -t files < <(find lib bin test examples -type f \
    \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
if [ ${#files[@]} -eq 0 ]; then
    echo "check-format: no C files found under lib bin test examples" >&2
    exit 1
fi
if ! "$format" --dry-run -Werror "${files[@]}"; then
    echo "check-format: files above differ from .clang-format;" \
        "run: $format -i FILE" >&2
    exit 1
fi
echo "check-format: OK, ${#files[@]} files formatted ($($format --version))"
