#!/usr/bin/env bash
# Peerstack vs nginx on loopback, same machine, same run: a small JSON response (/nodes) and
# a 4 KiB static file, driven by wrk. Rounds alternate which server goes first (the machine
# is noisy); the report gives medians and Peerstack/nginx ratios, plus Peerstack's idle RSS.
#
#   bench/http/run.sh [--rounds N] [--duration SECONDS] [--connections N] [--server-threads N]
#
# Both servers get the same number of worker threads: by default one fewer than the cores,
# because wrk needs one. (Measured: with 2 workers + wrk on 2 cores, both servers show ~4 ms
# p99 from scheduler time slices, and Peerstack's req/s drops from ~125k to ~90k.)
#
# Needs a built tree (scripts/build.sh) and nginx + wrk (installed here if missing). Sends
# traffic to 127.0.0.1 only; stops both servers on exit, also on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/bench/lib.sh"
bench_parse_args "$@"
rounds=$bench_rounds connections=$bench_connections threads=$bench_threads

"$root/scripts/install-deps.sh" --bench
bin=${PEERSTACK_BINARY:-$root/build/core/peerstack}
[[ -x $bin ]] || "$root/scripts/build.sh"

wait_http() { # url, deadline 10 s
  for _ in $(seq 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "server at $1 did not come up" >&2; exit 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# Content both servers serve.
mkdir -p "$work/front"
echo '<!doctype html><title>bench</title>' > "$work/front/index.html"
head -c 3072 /dev/urandom | base64 -w 64 | head -c 4096 > "$work/front/file4k.txt"

# Peerstack, on any free port (it writes the ports it bound to ports.json).
"$bin" run --data-dir "$work/data" --port 0 --admin-port 0 --bind 127.0.0.1 \
  --front "$work/front" --threads "$threads" --log-level warn &
ps_pid=$!
pids+=("$ps_pid")
for _ in $(seq 200); do [[ -s $work/data/ports.json ]] && break; sleep 0.05; done
ps_port=$(sed -n 's/.*"public":\([0-9]*\).*/\1/p' "$work/data/ports.json")
wait_http "http://127.0.0.1:$ps_port/nodes"
sleep 1  # let start-up allocations settle before the idle reading
idle_rss=$(rss_kb "$ps_pid")
nodes_json=$(curl -fs "http://127.0.0.1:$ps_port/nodes")

# nginx with the same worker count, the same bytes for /nodes, the same file.
printf '%s' "$nodes_json" > "$work/front/nodes.json"
bench_nginx "$threads" "$work/front" /nodes \
  "location = /nodes { default_type application/json; alias $work/front/nodes.json; }"

declare -A rps p99
for path in /nodes /file4k.txt; do
  bench_alternate "peerstack$path=http://127.0.0.1:$ps_port$path" "nginx$path=http://127.0.0.1:$ng_port$path"
done
busy_rss=$(rss_kb "$ps_pid")

echo
echo "| response | Peerstack req/s | nginx req/s | req/s ratio | Peerstack p99 ms | nginx p99 ms | p99 ratio |"
echo "|---|---|---|---|---|---|---|"
for path in /nodes /file4k.txt; do
  pr=$(bench_median "${rps[peerstack$path]}")
  nr=$(bench_median "${rps[nginx$path]}")
  pl=$(bench_median "${p99[peerstack$path]}")
  nl=$(bench_median "${p99[nginx$path]}")
  label="$path (JSON, $(printf '%s' "$nodes_json" | wc -c) B)"
  [[ $path == /file4k.txt ]] && label="$path (static, 4096 B)"
  awk -v l="$label" -v pr="$pr" -v nr="$nr" -v pl="$pl" -v nl="$nl" 'BEGIN {
    printf "| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f |\n", l, pr, nr, pr/nr, pl, nl, pl/nl }'
done
echo
echo "Peerstack RSS: idle ${idle_rss} kB, after the runs ${busy_rss} kB (target idle < 15 MB)."
echo "Settings: $rounds rounds x ${bench_duration}s per server and response, wrk -t1 -c$connections," \
  "$threads server threads/workers each, $(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*\///')."
