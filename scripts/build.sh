#!/usr/bin/env bash
# Configures and builds Peerstack into build/ (Release with debug info, -j2 by default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" "$@"
build_dir=${PEERSTACK_BUILD_DIR:-$root/build}
jobs=${PEERSTACK_JOBS:-2}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE:-RelWithDebInfo} \
  ${PEERSTACK_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$jobs"
