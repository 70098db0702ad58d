#!/usr/bin/env bash
# Configures and builds Peerstack into build/ (Release with debug info, -j2 by default): every
# target, or only those PEERSTACK_BUILD_TARGETS names (space-separated).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" "$@"
build_dir=${PEERSTACK_BUILD_DIR:-$root/build}
jobs=${PEERSTACK_JOBS:-2}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} \
  ${PEERSTACK_CMAKE_ARGS:-} >/dev/null
targets=()
for t in ${PEERSTACK_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
