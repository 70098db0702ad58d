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
  bench_alternate "direct$path=http://127.0.0.1:$direct$path" "relay$path=http://127.0.0.1:$relayed$path"
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

# CPU time per request of the server's thread and of the relay's copying thread (ps-splice),
# from /proc: what the relay costs wherever it runs.
thread_ticks() {  # name prefix -> utime+stime ticks summed over the server's threads
  local t sum=0
  for t in /proc/$server_pid/task/*/stat; do
    read -r -a f <"$t" || continue
    [[ ${f[1]} == "($1"* ]] && sum=$((sum + f[13] + f[14]))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
echo
echo "| response | way | req/s | server thread us/req | relay thread us/req |"
echo "|---|---|---|---|---|"
for path in /nodes /file; do
  for way in direct relay; do
    port=$direct; [[ $way == relay ]] && port=$relayed
    h0=$(thread_ticks ps-http); s0=$(thread_ticks ps-splice)
    read -r q _ < <(bench_measure "http://127.0.0.1:$port$path")
    h1=$(thread_ticks ps-http); s1=$(thread_ticks ps-splice)
    awk -v p="$path" -v w="$way" -v q="$q" -v d="$bench_duration" -v hz="$hz" -v h=$((h1 - h0)) -v s=$((s1 - s0)) 'BEGIN {
      n = q * d; printf "| %s | %s | %.0f | %.2f | %.2f |\n", p, w, q, h / hz * 1e6 / n, s / hz * 1e6 / n }'
  done
done
