#!/usr/bin/env bash
# The network's figures: simulated convergence and messages per change (sim_bench), and
# join-to-converged latency with real processes on loopback (join_bench).
#   bench/network/run.sh [--reps R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/sim/sim_bench && -x $build/bench/network/join_bench ]] || "$root/scripts/build.sh"
echo "Simulator (seed 42, sequential joins 400 ms apart, delays 1-40 ms):"
"$build/bench/sim/sim_bench" 10 30 100
echo
echo "Real processes on loopback, join-to-converged:"
"$build/bench/network/join_bench" "$@" 3 5 10
