#!/usr/bin/env bash
# Builds Peerstack and starts a node serving the demo frontend on http://127.0.0.1:8080
# (admin API on 127.0.0.1:8081) with the example plugins built into build/plugins/ (hello,
# blog). Extra arguments go to `peerstack run`. It builds only what it runs: the daemon and the
# example plugins (scripts/test.sh builds the rest).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PEERSTACK_BUILD_TARGETS="peerstack hello blog" "$root/scripts/build.sh"
build_dir=${PEERSTACK_BUILD_DIR:-$root/build}
exec "$build_dir/core/peerstack" run --data-dir "${PEERSTACK_DATA_DIR:-$root/.peerstack}" \
  --front "$root/front" --plugins "$build_dir/plugins" "$@"
