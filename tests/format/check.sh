#!/usr/bin/env bash
# The C layout is clang-format's (.clang-format at the root): every C source
# and header of the repository, checked without changing anything. Exits
# non-zero and names the lines when one differs. With --fix, formats them.
#   bash tests/format/check.sh [--fix]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# InsertBraces needs clang-format 15 or newer; Debian 12 packages 16.
cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
  for c in clang-format-16 clang-format-19 clang-format; do
    if command -v "$c" >/dev/null; then cf=$c; break; fi
  done
fi
[ -n "$cf" ] || { echo "format: clang-format-16 is not installed (bash deploy/stack.sh apt clang-format-16)" >&2; exit 2; }
major=$("$cf" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
[ "${major:-0}" -ge 15 ] || { echo "format: $cf is version $major; 15 or newer is needed" >&2; exit 2; }

# The tracked files, or every file outside generated folders in a copy
# without git.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h')
else
  mapfile -t files < <(find libcommon services tests -name '*.[ch]' -not -path '*/build*' | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  "$cf" -i "${files[@]}"
  exit 0
fi
"$cf" --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} C files as .clang-format lays them out ($cf)"
