#!/usr/bin/env bash
# Builds Peerstack and runs every test (unit and integration) with CTest; then builds the
# same tests with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs them
# again, so the bad-input suites also prove the absence of memory errors and UB.
# PEERSTACK_SKIP_SANITIZERS=1 skips the second pass (quicker local runs).
# The NAT lab tests (label netns: network namespaces, so root) run in the first pass only; as
# root this script installs their packages too, otherwise they report themselves skipped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${PEERSTACK_JOBS:-2}

lab=()
if [[ $(id -u) -eq 0 ]]; then lab=(--lab); fi
"$root/scripts/build.sh" "${lab[@]}"
echo "== tests (build/)"
(cd "${PEERSTACK_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$jobs" --timeout 300)

if [[ "${PEERSTACK_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== tests under ASan + UBSan (build-asan/)"
  PEERSTACK_BUILD_DIR=$root/build-asan CMAKE_BUILD_TYPE=Debug \
    PEERSTACK_CMAKE_ARGS=-DPEERSTACK_SANITIZE=ON "$root/scripts/build.sh"
  (cd "$root/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs" --timeout 300 --label-exclude netns)
fi
