#!/usr/bin/env bash
# Fails (exit 1) when a C or C++ file in core/, plugin-sdk/, plugins/ or tests/ is not as
# clang-format 14 writes it with the repository's .clang-format, and names the files and the
# command that fixes them. tests/fixtures/sdk-1.0/ is the ABI 1.0 headers, kept as they were.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
format=$(command -v clang-format-14 || command -v clang-format || true)
[[ -n $format ]] || { echo "check-format: clang-format-14 is not installed (scripts/install-deps.sh --format)" >&2; exit 2; }
mapfile -t files < <(git ls-files 'core/*.cpp' 'core/*.h' 'plugin-sdk/*.h' 'plugin-sdk/*.hpp' 'plugin-sdk/*.c' \
  'plugin-sdk/*.cpp' 'plugins/*.c' 'plugins/*.cpp' 'plugins/*.h' 'tests/*.c' 'tests/*.cpp' 'tests/*.h' |
  grep -v '^tests/fixtures/sdk-1.0/')
bad=()
for f in "${files[@]}"; do
  "$format" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-format: ${#bad[@]} file(s) not formatted: ${bad[*]}" >&2
  echo "check-format: fix with: $format -i ${bad[*]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
