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
rounds=5 duration=5 connections=50
threads=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --server-threads) threads=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--duration S] [--connections N] [--server-threads N]" >&2
       exit 2 ;;
  esac
done
"$root/scripts/install-deps.sh" --bench
build=${PEERSTACK_BUILD_DIR:-$root/build}
[[ -x $build/bench/plugin/plugin_bench_server ]] || "$root/scripts/build.sh"

work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/plugins"
cp "$build/plugins/libhello.so" "$build/bench/plugins/libhellopool.so" "$work/plugins/"
"$build/bench/plugin/plugin_bench_server" "$work/plugins" "$work" "$threads" > "$work/port" &
server_pid=$!
for _ in $(seq 200); do [[ -s $work/port ]] && break; sleep 0.05; done
port=$(cat "$work/port")
a=$(curl -fs "http://127.0.0.1:$port/api/hello/")
b=$(curl -fs "http://127.0.0.1:$port/builtin/hello")
[[ $a == "$b" ]] || { echo "responses differ: $a vs $b" >&2; exit 1; }

measure() {
  wrk -t1 -c"$connections" -d"${duration}s" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
              if (u=="us") v/=1000; else if (u=="s") v*=1000; p99=v}
    END {printf "%.0f %.3f\n", rps, p99}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

declare -A rps p99
for ((r = 1; r <= rounds; r++)); do
  order="plugin builtin pooled"; ((r % 2 == 0)) && order="pooled builtin plugin"
  for which in $order; do
    case $which in
      plugin) path=/api/hello/ ;;
      builtin) path=/builtin/hello ;;
      pooled) path=/api/hellopool/ ;;
    esac
    read -r q l < <(measure "http://127.0.0.1:$port$path")
    rps[$which]+="$q "; p99[$which]+="$l "
    echo "round $r $which: $q req/s, p99 $l ms" >&2
  done
done
pr=$(tr ' ' '\n' <<<"${rps[plugin]}" | grep . | median)
br=$(tr ' ' '\n' <<<"${rps[builtin]}" | grep . | median)
pl=$(tr ' ' '\n' <<<"${p99[plugin]}" | grep . | median)
bl=$(tr ' ' '\n' <<<"${p99[builtin]}" | grep . | median)
qr=$(tr ' ' '\n' <<<"${rps[pooled]}" | grep . | median)
ql=$(tr ' ' '\n' <<<"${p99[pooled]}" | grep . | median)
echo
echo "| route | req/s | p99 ms |"
echo "|---|---|---|"
echo "| /builtin/hello (C++ route) | $br | $bl |"
echo "| /api/hello/ (hello plugin, non-blocking: network thread) | $pr | $pl |"
echo "| /api/hellopool/ (same code, worker pool) | $qr | $ql |"
awk -v p="$pr" -v b="$br" -v q="$qr" 'BEGIN {
  printf "\nplugin/built-in req/s ratio: %.2f (target >= 0.90); pooled/built-in: %.2f\n", p/b, q/b}'
echo "Settings: $rounds rounds x ${duration}s, wrk -t1 -c$connections, $threads server threads, $(nproc) cores."
echo
"$build/bench/plugin/plugin_dispatch_bench" --benchmark_min_time=0.5 2>/dev/null | grep -E '^(BM_|Benchmark|-)'
