#!/usr/bin/env bash
# Replicated app data on loopback: 10 nodes (one founding the network, nine joining it) run
# the notes test plugin (tests/fixtures/plugins/notes.cpp); node 1 writes W values of S bytes
# (10,000 of 1 KiB by default), one after another inside one plugin call, as a plugin would.
#   1. Spread: ms from the start of the writes until every node holds all W (each node's
#      change counter for the collection, polled every 50 ms), and then the same data hash
#      everywhere (/status). Target: under 5 s.
#   2. Bytes: what every node sent for app data while the W writes spread (the appdata
#      service's own count: bodies and the headers it sets; the request line and Beast's
#      headers add about 100 bytes per message, counted apart), per op and per receiving
#      node (W x 9), against the value size. Target: under 3x for 1 KiB values.
#   3. Local write rate: with the other nodes frozen (SIGSTOP: on 2 cores their merging
#      would otherwise take the writer's CPU, which separate machines would not), W writes
#      into the plugin's plain key/value store (KvPut), then W replicated writes, on the same
#      node in the same run; ratio = replicated rate / KV rate. Target: at least 0.5. The
#      replicated rate during step 1, with all ten nodes on the same two cores, is shown too.
# Prints a table with PASS/FAIL per target (exit 0 either way; non-zero only when the bench
# cannot run). Kills every process it started by PID on exit, failure or Ctrl-C, removes its
# temp dir. About 30 s on 2 cores.
#
#   bench/appdata/run.sh [--writes W] [--size S] [--nodes N]   (build first: scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
bin=${PEERSTACK_BIN:-$build/core/peerstack}
notes=$build/tests/fixtures/plugins/libnotes.so
writes=10000 size=1024 nodes=10
while (($#)); do
  case "$1" in
    --writes) writes=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    *) echo "usage: $0 [--writes W] [--size S] [--nodes N]" >&2; exit 2 ;;
  esac
done
[[ -x $bin && -f $notes ]] || { echo "no $bin or $notes: run scripts/build.sh first" >&2; exit 1; }
for c in jq curl; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done
source "$root/bench/lib.sh"  # $work, pids and their cleanup
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
port_of() { jq -r ".$2" "$work/$1/ports.json" 2>/dev/null; }
admin() {  # NAME PATH [curl args]: a request to a node's admin listener
  local name=$1 path=$2
  shift 2
  curl -s -m 30 -H "Authorization: Bearer $(tr -d '\n' <"$work/$name/admin.token")" \
    "http://127.0.0.1:$(port_of "$name" admin)$path" "$@"
}

mkdir -p "$work/app/plugins" "$work/app/front"
cp "$notes" "$work/app/plugins/libnotes.so"
echo '<!doctype html><title>bench</title>' >"$work/app/front/index.html"
start() { bench_start_node "$@"; }
members() { admin "$1" /status | jq -r .network.members 2>/dev/null; }
start n1
url="http://127.0.0.1:$(port_of n1 public)"
for ((i = 2; i <= nodes; i++)); do start "n$i" --join "$url"; done
all_members() {
  local i
  for ((i = 1; i <= nodes; i++)); do [[ $(members "n$i") == "$nodes" ]] || return 1; done
}
bench_until 60 "$nodes members" all_members
echo "$nodes nodes in one network" >&2

body() { jq -cn --argjson n "$writes" --argjson s "$size" --arg p "$1" '{n: $n, size: $s, prefix: $p}'; }
sent() {  # the app data bytes and messages all nodes sent so far
  local i b=0 m=0 st
  for ((i = 1; i <= nodes; i++)); do
    st=$(admin "n$i" /status)
    b=$((b + $(jq -r .appdata.bytes_sent <<<"$st"))) m=$((m + $(jq -r .appdata.messages_sent <<<"$st")))
  done
  echo "$b $m"
}

# 1 and 2: W replicated writes on n1 while every node runs.
read -r bytes0 msgs0 < <(sent)
t0=$(now_ms)
busy_ms=$(admin n1 /api/notes/bulk/notes -X POST -d "$(body w)" | jq -r .ms)
echo "replicated, all nodes running: $writes writes in $busy_ms ms" >&2
# Polled every 50 ms with one curl and one jq for all nodes (the poll costs the nodes' CPU
# as little as it can: ten processes share two cores).
urls=()
for ((i = 1; i <= nodes; i++)); do urls+=("http://127.0.0.1:$(port_of "n$i" public)/api/notes/changes/notes"); done
declare -a done_at=()
held=0
while ((held < nodes)); do
  mapfile -t counts < <(curl -s -m 5 "${urls[@]}" | jq -r .changes)
  for ((i = 0; i < nodes; i++)); do
    [[ -n ${done_at[$i]:-} ]] && continue
    c=${counts[$i]:-0}
    if [[ $c =~ ^[0-9]+$ ]] && ((c >= writes)); then done_at[$i]=$(( $(now_ms) - t0 )); held=$((held + 1)); fi
  done
  (($(now_ms) - t0 < 120000)) || { echo "not every node got all $writes writes in 120 s" >&2; exit 1; }
  sleep 0.05
done
spread=0
for v in "${done_at[@]}"; do ((v > spread)) && spread=$v; done
hashes() {
  local i
  for ((i = 1; i <= nodes; i++)); do admin "n$i" /status | jq -r .appdata.plugins.notes.hash; done | sort -u | wc -l
}
one_hash() { [[ $(hashes) == 1 ]]; }
bench_until 30 "one data hash on every node" one_hash
read -r bytes1 msgs1 < <(sent)
bytes=$((bytes1 - bytes0)) msgs=$((msgs1 - msgs0))

# 3: the writer alone (the others frozen), plain KV then replicated, W each.
for ((i = 1; i < ${#pids[@]}; i++)); do kill -STOP "${pids[$i]}"; done
kv_ms=$(admin n1 /api/notes/kvbulk -X POST -d "$(body k)" | jq -r .ms)
rep_ms=$(admin n1 /api/notes/bulk/open -X POST -d "$(body r)" | jq -r .ms)
for ((i = 1; i < ${#pids[@]}; i++)); do kill -CONT "${pids[$i]}"; done
echo "writer alone: KV $kv_ms ms, replicated $rep_ms ms for $writes writes" >&2

ratio_bytes=$(awk -v b="$bytes" -v w="$writes" -v n="$nodes" -v s="$size" 'BEGIN {printf "%.2f", b / (w * (n - 1)) / s}')
with_lines=$(awk -v b="$bytes" -v m="$msgs" -v w="$writes" -v n="$nodes" -v s="$size" 'BEGIN {printf "%.2f", (b + 100 * m) / (w * (n - 1)) / s}')
ratio_rate=$(awk -v k="$kv_ms" -v r="$rep_ms" 'BEGIN {printf "%.2f", k / r}')
pass() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == "<") ? v < t : v >= t; print ok ? "PASS" : "FAIL"}'; }
printf '\n%-52s %12s %10s %6s\n' "appdata ($nodes nodes, $writes x $size B)" value target result
printf '%-52s %12s %10s %6s\n' "all nodes hold every write (ms)" "$spread" "< 5000" "$(pass "$spread" "<" 5000)"
printf '%-52s %12s %10s %6s\n' "bytes sent per op per receiver / value size" "$ratio_bytes" "< 3" "$(pass "$ratio_bytes" "<" 3)"
printf '%-52s %12s %10s %6s\n' "  the same with 100 B per message for request lines" "$with_lines" "" ""
printf '%-52s %12s %10s %6s\n' "messages sent (all nodes)" "$msgs" "" ""
printf '%-52s %12s %10s %6s\n' "replicated writes/s, all nodes on 2 cores" "$(awk -v w="$writes" -v r="$busy_ms" 'BEGIN {printf "%.0f", w * 1000 / r}')" "" ""
printf '%-52s %12s %10s %6s\n' "replicated writes/s, the writer alone" "$(awk -v w="$writes" -v r="$rep_ms" 'BEGIN {printf "%.0f", w * 1000 / r}')" "" ""
printf '%-52s %12s %10s %6s\n' "plain KV writes/s, the writer alone" "$(awk -v w="$writes" -v k="$kv_ms" 'BEGIN {printf "%.0f", w * 1000 / k}')" "" ""
printf '%-52s %12s %10s %6s\n' "replicated / KV write rate" "$ratio_rate" ">= 0.5" "$(pass "$ratio_rate" ">=" 0.5)"
