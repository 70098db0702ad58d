#!/usr/bin/env bash
# A join into a network with one frozen member (SIGSTOP: it accepts TCP connections and never
# answers) against the same join with every member answering, in the same run, on loopback.
# Each round builds a fresh network: a, b, c; d joins (healthy: 3 members, quorum 2); then c
# is frozen and e joins (4 members, quorum 3: a, b, d). Prints each round and the medians.
#   bench/silent/run.sh [--rounds N]      (default 5; build first: scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${PEERSTACK_BIN:-$root/build/core/peerstack}
rounds=5
[[ ${1:-} == --rounds ]] && rounds=$2
[[ -x $bin ]] || { echo "no $bin: run scripts/build.sh first" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

source "$root/bench/lib.sh"  # $work, pids and their cleanup
mkdir -p "$work/plugins" "$work/front"

now_ms() { date +%s%3N; }
declare -A pid_of
# start NAME [flags]: a node on free ports; waits (10 s) for its ports.json.
start() {
  local name=$1
  shift
  "$bin" run --data-dir "$work/$name" --port 0 --admin-port 0 --bind 127.0.0.1 --tunnel direct \
    --admission open --plugins "$work/plugins" --front "$work/front" "$@" >"$work/$name.log" 2>&1 &
  pid_of[$name]=$!
  pids+=($!)
  for _ in $(seq 1000); do [[ -s $work/$name/ports.json ]] && return 0; sleep 0.01; done
  echo "$name did not start" >&2
  exit 1
}
port() { jq -r ".$2" "$work/$1/ports.json"; }
status() {
  curl -s -m 2 -H "Authorization: Bearer $(cat "$work/$1/admin.token")" "http://127.0.0.1:$(port "$1" admin)/status"
}
member() { [[ $(status "$1" | jq -r .network.member) == true ]]; }
# timed_join NAME SEED: sets join_ms to the ms from the joiner serving to its being a member
# (60 s at most). Not in a subshell: start records the node's PID for the cleanup.
timed_join() {
  start "$1" --join "http://127.0.0.1:$(port "$2" public)"
  local t0 deadline=$((SECONDS + 60))
  t0=$(now_ms)
  join_ms=60000
  while ((SECONDS < deadline)); do
    if member "$1"; then
      join_ms=$(($(now_ms) - t0))
      return 0
    fi
    sleep 0.01
  done
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

healthy_all="" silent_all=""
for ((r = 1; r <= rounds; r++)); do
  rm -rf "$work"/[a-e] "$work"/*.log
  start a
  for n in b c; do
    start "$n" --join "http://127.0.0.1:$(port a public)"
    for _ in $(seq 2000); do member "$n" && break; sleep 0.01; done
  done
  timed_join d a
  healthy=$join_ms
  for _ in $(seq 500); do [[ $(status c | jq .network.members) == 4 ]] && break; sleep 0.01; done
  kill -STOP "${pid_of[c]}"
  timed_join e a
  silent=$join_ms
  echo "round $r: healthy join $healthy ms, with a frozen member $silent ms" >&2
  healthy_all+="$healthy " silent_all+="$silent "
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
done
h=$(median "$healthy_all") s=$(median "$silent_all")
echo "join into a healthy network: median $h ms (rounds: $healthy_all)"
echo "join with a frozen member:   median $s ms (rounds: $silent_all)"
awk -v h="$h" -v s="$s" 'BEGIN {printf "frozen/healthy: %.2f (target: at most 1.5)\n", s / h}'
