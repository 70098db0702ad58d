#!/usr/bin/env bash
# The plugin boundary's cost, two ways, same run:
#   1. wrk against one server (bench/plugin/plugin_server.cpp): GET /api/hello/ (the hello
#      plugin through the plugin host) vs GET /builtin/hello (a C++ route, same bytes).
#      Rounds alternate the order; medians and the plugin/built-in ratio are printed.
#   2. Google Benchmark: one dispatch vs a direct C++ call (dispatch_bench.cpp).
#
#   bench/plugin/run.sh [--rounds N] [--duration SECONDS] [--connections N] [--server-threads N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/bench/lib.sh"
bench_parse_args "$@"
rounds=$bench_rounds connections=$bench_connections threads=$bench_threads
"$root/scripts/install-deps.sh" --bench
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/plugin/plugin_bench_server ]] || "$root/scripts/build.sh"

mkdir -p "$work/plugins"
cp "$build/plugins/libhello.so" "$build/bench/plugins/libhellopool.so" "$work/plugins/"
bench_start_server "$work/port" "$build/bench/plugin/plugin_bench_server" "$work/plugins" "$work" "$threads"
port=$(cat "$work/port")
a=$(curl -fs "http://127.0.0.1:$port/api/hello/")
b=$(curl -fs "http://127.0.0.1:$port/builtin/hello")
[[ $a == "$b" ]] || { echo "responses differ: $a vs $b" >&2; exit 1; }

declare -A rps p99
bench_alternate "plugin=http://127.0.0.1:$port/api/hello/" "builtin=http://127.0.0.1:$port/builtin/hello" \
  "pooled=http://127.0.0.1:$port/api/hellopool/"
pr=$(bench_median "${rps[plugin]}")
br=$(bench_median "${rps[builtin]}")
pl=$(bench_median "${p99[plugin]}")
bl=$(bench_median "${p99[builtin]}")
qr=$(bench_median "${rps[pooled]}")
ql=$(bench_median "${p99[pooled]}")
echo
echo "| route | req/s | p99 ms |"
echo "|---|---|---|"
echo "| /builtin/hello (C++ route) | $br | $bl |"
echo "| /api/hello/ (hello plugin, non-blocking: network thread) | $pr | $pl |"
echo "| /api/hellopool/ (same code, worker pool) | $qr | $ql |"
awk -v p="$pr" -v b="$br" -v q="$qr" 'BEGIN {
  printf "\nplugin/built-in req/s ratio: %.2f (target >= 0.90); pooled/built-in: %.2f\n", p/b, q/b}'
echo "Settings: $rounds rounds x ${bench_duration}s, wrk -t1 -c$connections, $threads server threads, $(nproc) cores."
echo
"$build/bench/plugin/plugin_dispatch_bench" --benchmark_min_time=0.5 2>/dev/null | grep -E '^(BM_|Benchmark|-)'
