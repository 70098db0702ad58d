#!/usr/bin/env bash
# Builds Peerstack and runs every test (unit and integration) with CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
build_dir=${PEERSTACK_BUILD_DIR:-$root/build}
cd "$build_dir"
ctest --output-on-failure -j "${PEERSTACK_JOBS:-2}" --timeout 300
