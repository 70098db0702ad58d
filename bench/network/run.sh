#!/usr/bin/env bash
# The network's figures: simulated convergence and messages per change (sim_bench: a growing
# network up to N = 100, then one join into established networks of N = 10 to 10,000, each N
# in a process of its own so that its peak memory is its own: about 35 s and 3 GB in all),
# the ledger's size after 1,000 joins without and with checkpoints (ledger_bench: about 30 s),
# and join-to-converged latency with real processes on loopback (join_bench, N = 10, 30, 100:
# a few minutes, most of it building the networks).
#   bench/network/run.sh [--reps R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/sim/sim_bench && -x $build/bench/network/join_bench &&
  -x $build/bench/network/ledger_bench ]] || "$root/scripts/build.sh"
echo "Simulator (seed 42, sequential joins 400 ms apart, delays 1-40 ms):"
"$build/bench/sim/sim_bench" 10 30 100
echo
echo "Simulator, one join into an established network of N-1 founding members:"
header=
for n in 10 100 1000 3000 10000; do
  "$build/bench/sim/sim_bench" --one-join $header "$n"
  header=--no-header
done
echo
echo "Ledger after 1,000 sequential joins, without checkpoints and with them:"
"$build/bench/network/ledger_bench" --joins 1000 --every 1000 --every 100
echo
echo "Real processes on loopback, join-to-converged:"
"$build/bench/network/join_bench" "$@" 10 30 100
