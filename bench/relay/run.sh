#!/usr/bin/env bash
# Through a member relay versus direct, same process, same run: req/s and p99 for a small JSON
# answer and a 1 MiB download (bench/relay/relay_server.cpp), wrk alternating, medians.
#   bench/relay/run.sh [--rounds N] [--duration SECONDS] [--connections N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/bench/lib.sh"
bench_connections=20
bench_parse_args "$@"
"$root/scripts/install-deps.sh" --bench
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/relay/relay_bench_server ]] || "$root/scripts/build.sh"
bench_start_server "$work/ports" "$build/bench/relay/relay_bench_server"
read -r direct relayed < "$work/ports"

declare -A rps p99
for path in /nodes /file; do
  for ((r = 1; r <= bench_rounds; r++)); do
    order="direct relay"; ((r % 2 == 0)) && order="relay direct"
    for way in $order; do
      port=$direct; [[ $way == relay ]] && port=$relayed
      read -r q l < <(bench_measure "http://127.0.0.1:$port$path")
      rps[$way$path]+="$q "; p99[$way$path]+="$l "
      echo "round $r $way $path: $q req/s, p99 $l ms" >&2
    done
  done
done
echo "| response | direct req/s | relay req/s | ratio | direct p99 ms | relay p99 ms |"
echo "|---|---|---|---|---|---|"
for path in /nodes /file; do
  dr=$(bench_median "${rps[direct$path]}"); rr=$(bench_median "${rps[relay$path]}")
  dl=$(bench_median "${p99[direct$path]}"); rl=$(bench_median "${p99[relay$path]}")
  label="$path (JSON, 88 B)"; [[ $path == /file ]] && label="$path (1 MiB)"
  awk -v l="$label" -v dr="$dr" -v rr="$rr" -v dl="$dl" -v rl="$rl" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.2f | %.2f | %.2f |\n", l, dr, rr, rr/dr, dl, rl }'
done
echo "Settings: $bench_rounds rounds x ${bench_duration}s, wrk -t1 -c$bench_connections, one server thread, $(nproc) cores."
