#!/usr/bin/env bash
# The network's figures: simulated convergence and messages per change (sim_bench: a growing
# network up to N = 100, then one join into established networks up to N = 1000, which takes
# about a minute and 2.6 GB), and join-to-converged latency with real processes on loopback
# (join_bench).
#   bench/network/run.sh [--reps R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/sim/sim_bench && -x $build/bench/network/join_bench ]] || "$root/scripts/build.sh"
echo "Simulator (seed 42, sequential joins 400 ms apart, delays 1-40 ms):"
"$build/bench/sim/sim_bench" 10 30 100
echo
echo "Simulator, one join into an established network of N-1 founding members:"
"$build/bench/sim/sim_bench" --one-join 10 100 1000
echo
echo "Real processes on loopback, join-to-converged:"
"$build/bench/network/join_bench" "$@" 3 5 10
