#!/usr/bin/env bash
# Release rollout on loopback: N nodes (default 10, `peerstack run --tunnel direct`, fresh
# ports, a temp dir), each release changing the hello plugin (build/plugins/libhello.so plus
# a fresh 1 MiB random tail: a valid plugin with a new sha256) and the frontend (app.js and a
# marker file). n1 founds the network and publishes (its key is the network's publisher).
#
#   1. Time to serve: R single-stage releases in a row (default 3). Per release: the ms from
#      the start of `peerstack release publish --no-wait` until a poll of every node's public
#      /marker.txt returns the new release's content (one curl for all pending nodes, every
#      20 ms), and from the nodes' logs when the last one logged "now serving release V".
#      Target: median of the polled figure < 2 s.
#   2. Failed requests during a switch under load: wrk (-t1 -cC each) on n2 and n3, on
#      /api/hello/ (the plugin) and /app.js (the frontend), for S s; the release is published
#      1 s in. Reports the requests, non-2xx/3xx and socket errors. Target: 0 failures.
#   3. Blob fetch throughput: after each release, on the idle network, the fetcher itself
#      (bench/rollout/fetch_bench: core/release's BlobFetcher over the transport, into an
#      empty store, as a node fetches) GETs the plugin blob from n1 four times in one process
#      (the first warms it up, as a running node's transport is; shown apart), then curl
#      GETs the same blob from the same node three times; the fetcher's exchange time (request sent to
#      last byte read) against curl's time_total. ratio = fetcher throughput / curl
#      throughput = median curl time / median fetcher time. Target >= 0.8. For context, not
#      judged: the nodes' own fetches during the rollout (from their logs: "fetched blob
#      <sha12> (...) in T ms, stored in S ms"), when all ten processes handle the release at
#      once on two cores, against N-1 curls at once; the whole fetch (hash + fsync + rename)
#      against curl + sha256sum + sync.
#   4. A 3-stage rollout (--stages 3 --soak 2s): when each node switched (its log's "now
#      serving release V"), by stage, and when the ledger started each stage.
# Ends with a summary table, PASS/FAIL per target (exits 0 either way; non-zero only when the
# benchmark itself cannot run). Kills every node and wrk it started by PID on exit, failure or
# Ctrl-C, and removes its temp dir. About 25 s on 2 cores.
#
#   bench/rollout/run.sh [--nodes N] [--releases R] [--load-seconds S] [--connections C]
#   (build first: scripts/build.sh; PEERSTACK_BUILD_DIR picks another build tree)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
bin=${PEERSTACK_BIN:-$build/core/peerstack}
hello=$build/plugins/libhello.so
fetch_bench=$build/bench/rollout/fetch_bench
nodes=10 releases=3 load_s=5 conns=4
while (($#)); do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --releases) releases=$2; shift 2 ;;
    --load-seconds) load_s=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    *) echo "usage: $0 [--nodes N] [--releases R] [--load-seconds S] [--connections C]" >&2; exit 2 ;;
  esac
done
((nodes >= 3)) || { echo "--nodes: at least 3 (wrk drives n2 and n3)" >&2; exit 2; }
[[ -x $bin && -f $hello && -x $fetch_bench ]] || { echo "no $bin, $hello or $fetch_bench: run scripts/build.sh first" >&2; exit 1; }
command -v wrk >/dev/null || "$root/scripts/install-deps.sh" --bench
for c in jq curl wrk sha256sum; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done
script_start=$EPOCHREALTIME
bin_id="$bin ($(stat -c %y "$bin" | cut -c1-19), sha256 $(sha256sum "$bin" | cut -c1-12))"
reproduce="bench/rollout/run.sh --nodes $nodes --releases $releases --load-seconds $load_s --connections $conns"

source "$root/bench/lib.sh"  # $work, pids and their cleanup

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
die() { echo "rollout bench: $*" >&2; exit 1; }
names=()
for ((i = 1; i <= nodes; i++)); do names+=("n$i"); done
declare -A pub adm tok
api() { curl -s -m 2 -H "Authorization: Bearer ${tok[$1]}" "http://127.0.0.1:${adm[$1]}$2"; }

# The first log line of node $1 containing $2 (fixed string): its timestamp in epoch ms, or "".
log_ms() {
  local line
  line=$(grep -m1 -F -- "$2" "$work/$1.log") || return 0
  date -d "${line%% *}" +%s%3N
}

# Release 0: the files every node starts with.
mkdir -p "$work/rel0/plugins" "$work/rel0/front"
cp "$hello" "$work/rel0/plugins/libhello.so"
cp -r "$root/front/." "$work/rel0/front/"
declare -A marker plugin_sha t0
marker[0]="release 0"
printf '%s' "${marker[0]}" >"$work/rel0/front/marker.txt"

# start NAME [flags]: a node on fresh ports; waits (10 s at most) for its ports.json.
start() {
  local name=$1 deadline=$((SECONDS + 10))
  shift
  "$bin" run --data-dir "$work/$name" --port 0 --admin-port 0 --bind 127.0.0.1 --tunnel direct --admission open \
    --plugins "$work/rel0/plugins" --front "$work/rel0/front" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  until [[ -s $work/$name/ports.json ]]; do
    ((SECONDS < deadline)) || die "$name did not start (log: $(tail -3 "$work/$name.log"))"
    sleep 0.01
  done
  pub[$name]=$(jq -r .public "$work/$name/ports.json")
  adm[$name]=$(jq -r .admin "$work/$name/ports.json")
  tok[$name]=$(tr -d '\r\n' <"$work/$name/admin.token")
}
is_member() { [[ $(api "$1" /status | jq -r .network.member 2>/dev/null) == true ]]; }
settled() {  # every node a member seeing all N, serving, the same release in force
  local n s
  for n in "${names[@]}"; do
    s=$(api "$n" /status | jq -r '"\(.network.member) \(.network.members) \(.release.phase) \(.network.release // 0)"' 2>/dev/null) || return 1
    [[ $s == "true $nodes serving $1" ]] || return 1
  done
}
all_healthy() {  # n1's rollout: version $1 with every member healthy
  [[ $(api n1 /releases | jq -r '"\(.rollout.version) \(.rollout.healthy)"' 2>/dev/null) == "$1 $nodes" ]]
}

echo "starting $nodes nodes in $work ..." >&2
start n1
for n in "${names[@]:1}"; do
  start "$n" --join "http://127.0.0.1:${pub[n1]}"
  bench_until 30 "$n to join" is_member "$n"
done
bench_until 30 "the network to settle" settled 0

# make_release V [create flags]: a new plugin (fresh 1 MiB tail) and frontend, created with
# n1's network id, signed with n1's key (the publisher). Not timed.
make_release() {
  local v=$1 d=$work/rel$1 got
  shift
  mkdir -p "$d/plugins" "$d/front"
  cp -r "$root/front/." "$d/front/"
  printf '\n// release %s\n' "$v" >>"$d/front/app.js"
  marker[$v]="release $v $(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s' "${marker[$v]}" >"$d/front/marker.txt"
  { cat "$hello"; head -c 1048576 /dev/urandom; } >"$d/plugins/libhello.so"
  plugin_sha[$v]=$(sha256sum "$d/plugins/libhello.so" | cut -c1-64)
  "$bin" release create --plugins "$d/plugins" --front "$d/front" --data-dir "$work/n1" "$@" -o "$d/r.json" >>"$work/cli.log"
  "$bin" release sign "$d/r.json" --key "$work/n1/node.key" >>"$work/cli.log"
  got=$(jq -r .manifest.version "$d/r.json")
  [[ $got == "$v" ]] || die "release create made version $got, expected $v"
}
publish() {  # V: sets t0[V] to the ms just before `release publish` starts
  t0[$1]=$(now_ms)
  "$bin" release publish "$work/rel$1/r.json" --data-dir "$work/n1" --no-wait >>"$work/cli.log" ||
    die "release publish $1 failed: $(tail -3 "$work/cli.log")"
}
# wait_serving V DEADLINE_S POLL_S: polls every node's /marker.txt until all return release
# V's; seen[node] = ms after t0[V] when first seen. False when the deadline passed first.
declare -A seen
wait_serving() {
  local v=$1 deadline=$((SECONDS + $2)) interval=$3 n t args next pending=("${names[@]}")
  seen=()
  while ((${#pending[@]})); do
    ((SECONDS < deadline)) || return 1
    args=()
    for n in "${pending[@]}"; do
      rm -f "$work/poll.$n"
      args+=(-o "$work/poll.$n" "http://127.0.0.1:${pub[$n]}/marker.txt")
    done
    curl -s -m 2 "${args[@]}" || true
    t=$(($(now_ms) - t0[$v]))
    next=()
    for n in "${pending[@]}"; do
      if [[ -f $work/poll.$n && $(<"$work/poll.$n") == "${marker[$v]}" ]]; then seen[$n]=$t; else next+=("$n"); fi
    done
    pending=("${next[@]}")
    ((${#pending[@]} == 0)) || sleep "$interval"
  done
}
max_of() { tr ' ' '\n' <<<"$1" | grep . | sort -g | tail -1; }
# switched_ms V NODE: ms after t0[V] when NODE logged "now serving release V", or "".
switched_ms() {
  local t
  t=$(log_ms "$2" "now serving release $1,")
  [[ -n $t ]] && echo $((t - t0[$1]))
  return 0
}
refusals() { cat "$work"/n*.log | grep -c -F "release: blob from" || true; }

# ---- 1 and 3: single-stage releases, timed; blob fetch times; curl after each ----
echo
echo "== 1. publish -> every node serving ($nodes nodes, single stage, 1 MiB plugin + frontend)"
echo "| release | publish -> all serving (poll) ms | publish -> last 'now serving' (logs) ms | first node (logs) ms | blob fetches refused |"
echo "|---|---|---|---|---|"
poll_all="" node_fetch_ms="" first_ms="" marginal_ms="" curl_ms="" par_ms="" dur_ms="" xfer_ms="" store_ms="" blob_bytes=0 sources=""
fb_xfer="" fb_whole="" fb_cold="" curl_alt=""
for ((v = 1; v <= releases; v++)); do
  make_release "$v"
  r0=$(refusals)
  publish "$v"
  wait_serving "$v" 30 0.02 || die "release $v: not every node served it within 30 s"
  poll=0 sws=""
  for n in "${names[@]}"; do ((seen[$n] > poll)) && poll=${seen[$n]}; sws+="$(switched_ms "$v" "$n") "; done
  last=$(max_of "$sws") first=$(tr ' ' '\n' <<<"$sws" | grep . | sort -g | head -1)
  poll_all+="$poll "
  # Per-node fetch times, from the logs: the first "fetching: release V" line (s), the first
  # "fetched blob" after it (f: any blob, the floor a request costs), the last small blob
  # stored before the plugin's (p0) and the plugin's (p). Requests for all three missing
  # blobs leave in the pass that logs s (at most 4 in flight, 3 missing).
  sha12=${plugin_sha[$v]:0:12}
  for n in "${names[@]:1}"; do
    read -r s f p0 p < <(awk -v start="fetching: release $v:" -v sha="fetched blob $sha12" '
      !on && index($0, start) {on = 1; s = $1; next}
      on && index($0, "fetched blob ") {
        if (!f) f = $1
        if (index($0, sha)) {p = $1; exit}
        p0 = $1 }
      END {print (s ? s : "-"), (f ? f : "-"), (p0 ? p0 : "-"), (p ? p : "-")}' "$work/$n.log" |
      tr ' ' '\n' | sed 's/^-$/@0/' | date -f - +%s%3N | paste -sd ' ')
    ((s > 0 && p > 0)) || continue
    node_fetch_ms+="$((p - s)) " first_ms+="$((f - s)) "
    ((p0 > 0)) && marginal_ms+="$((p - p0)) "
    line=$(grep -m1 -F "fetched blob $sha12" "$work/$n.log")
    sources+="$(sed -E 's/.* from ([^ ]+).*/\1/' <<<"$line") "
    # The fetcher's own figures: the exchange (request sent -> last byte, on the transport's
    # loop) and hashing + storing (temp file, fsync, rename).
    xfer_ms+="$(sed -E 's/.* in ([0-9.e+-]+) ms, stored in.*/\1/' <<<"$line") "
    store_ms+="$(sed -E 's/.* stored in ([0-9.e+-]+) ms.*/\1/' <<<"$line") "
  done
  blob_bytes=$(stat -c %s "$work/rel$v/plugins/libhello.so")
  echo "| $v | $poll | $last | $first | $(($(refusals) - r0)) |"
  bench_until 30 "release $v to be reported healthy by all" all_healthy "$v"
  # curl, on the idle network: the same blob from the publisher (the node every node asks first).
  url="http://127.0.0.1:${pub[n1]}/p2p/blob/${plugin_sha[$v]}"
  for _ in 1 2 3 4 5; do
    curl_ms+="$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$url" |
      awk -v b="$blob_bytes" '$1 != 200 || $2 != b {print "bad" > "/dev/stderr"; exit 1} {print $3 * 1000}') "
  done
  args=()
  for ((i = 1; i < nodes; i++)); do args+=(-o /dev/null "$url"); done
  par_ms+="$(curl -s --no-progress-meter -Z --parallel-immediate --parallel-max $((nodes - 1)) -w '%{time_total}\n' "${args[@]}" |
    awk '{printf "%s ", $1 * 1000}') "
  # The fetcher's own code (core/release/fetcher.h over the transport, as a node runs it)
  # against the same node, idle network, alternating with curl: exchange and whole fetch.
  # A node's transport is warm (it has been talking to its peers): each fetch_bench process
  # makes a first fetch (its cold start, shown apart), then three.
  i=0
  while read -r x w; do
    if ((i++ == 0)); then fb_cold+="$x "; else fb_xfer+="$x " fb_whole+="$w "; fi
  done < <("$fetch_bench" "http://127.0.0.1:${pub[n1]}" "${plugin_sha[$v]}" "$blob_bytes" 4 2>/dev/null)
  for _ in 1 2 3; do
    curl_alt+="$(curl -s -o /dev/null -w '%{time_total}' "$url" | awk '{print $1 * 1000}') "
  done
  for _ in 1 2 3; do
    s=$EPOCHREALTIME
    curl -s -o "$work/blob.copy" "$url"
    sha256sum "$work/blob.copy" >/dev/null
    sync "$work/blob.copy"
    e=$EPOCHREALTIME
    dur_ms+="$(awk -v s="${s/,/.}" -v e="${e/,/.}" 'BEGIN {print (e - s) * 1000}') "
    rm -f "$work/blob.copy"
  done
done
poll_med=$(median "$poll_all")
echo "median publish -> all serving (poll): $poll_med ms (releases: $poll_all)"
echo "(poll: one curl over every pending node's /marker.txt every 20 ms, so up to ~20 ms + one sweep late)"

# ---- 2: failed requests during a switch under load ----
v=$((releases + 1))
make_release "$v"
echo
echo "== 2. release $v under load: wrk -t1 -c$conns --timeout 2s for ${load_s}s on each of n2, n3 x /api/hello/, /app.js; published 1 s in"
wrk_pids=() wrk_out=()
load_start=$(now_ms)
for n in n2 n3; do
  for path in /api/hello/ /app.js; do
    out="$work/wrk.$n${path//\//_}"
    wrk -t1 -c"$conns" -d"${load_s}s" --timeout 2s "http://127.0.0.1:${pub[$n]}$path" >"$out" 2>&1 &
    pids+=($!) wrk_pids+=($!) wrk_out+=("$n $path $out")
  done
done
sleep 1  # the load's lead-in before the release (a measurement window, not a wait for an event)
publish "$v"
wait_serving "$v" 30 0.05 || die "release $v: not every node served it within 30 s (under load)"
loaded_poll=$(max_of "$(for n in "${names[@]}"; do echo "${seen[$n]}"; done)")
deadline=$((SECONDS + load_s + 10))
for p in "${wrk_pids[@]}"; do
  while kill -0 "$p" 2>/dev/null; do ((SECONDS < deadline)) || die "wrk did not finish"; sleep 0.05; done
  wait "$p" || die "wrk failed: $(cat "$work"/wrk.*)"
done
load_end=$(now_ms)
# Reaped: no longer ours to kill (the PID may be reused).
left=()
for p in "${pids[@]}"; do [[ " ${wrk_pids[*]} " == *" $p "* ]] || left+=("$p"); done
pids=("${left[@]}")
echo "| node | path | requests | non-2xx/3xx | socket errors (connect/read/write/timeout) | switched at (s after load start) |"
echo "|---|---|---|---|---|---|"
total_req=0 total_bad=0
for entry in "${wrk_out[@]}"; do
  read -r n path out <<<"$entry"
  req=$(awk '/requests in/ {print $1}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$out")
  sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 "/" $6 "/" $8 "/" $10}' "$out")
  non2xx=${non2xx:-0} sock=${sock:-0/0/0/0}
  sw=$(log_ms "$n" "now serving release $v,")
  sum_sock=$(awk -F/ '{print $1 + $2 + $3 + $4}' <<<"$sock")
  total_req=$((total_req + req)) total_bad=$((total_bad + non2xx + sum_sock))
  echo "| $n | $path | $req | $non2xx | $sock | $(awk -v a="$sw" -v b="$load_start" 'BEGIN {printf "%.2f", (a - b) / 1000}') |"
done
echo "load ran $(awk -v a="$load_end" -v b="$load_start" 'BEGIN {printf "%.1f", (a - b) / 1000}') s; under load, publish -> all $nodes serving (poll, 50 ms): $loaded_poll ms"
bench_until 30 "release $v to be reported healthy by all" all_healthy "$v"

# ---- 3: report of the blob fetch figures gathered in section 1 ----
echo
echo "== 3. plugin blob ($blob_bytes bytes) fetch time: nodes (logs) vs curl from the same node"
src_main=$(tr ' ' '\n' <<<"$sources" | grep . | sort | uniq -c | sort -rn | head -1)
node_med=$(median "$node_fetch_ms") curl_med=$(median "$curl_ms") par_med=$(median "$par_ms") dur_med=$(median "$dur_ms")
n_samples=$(wc -w <<<"$node_fetch_ms")
echo "| fetch of the plugin blob | samples | median ms | min ms | max ms | MB/s (median) |"
echo "|---|---|---|---|---|---|"
row() {
  awk -v l="$1" -v c="$(wc -w <<<"$2")" -v med="$3" -v mn="$(tr ' ' '\n' <<<"$2" | grep . | sort -g | head -1)" \
    -v mx="$(max_of "$2")" -v b="$blob_bytes" 'BEGIN {
      printf "| %s | %d | %.1f | %.1f | %.1f | %.0f |\n", l, c, med, mn, mx, (med > 0 ? b / 1e6 / (med / 1000) : 0) }'
}
xfer_med=$(median "$xfer_ms") fb_med=$(median "$fb_xfer") alt_med=$(median "$curl_alt")
row "fetcher (fetch_bench, idle): the exchange, request sent -> last byte (judged)" "$fb_xfer" "$fb_med"
row "curl, right after it (judged baseline)" "$curl_alt" "$alt_med"
row "fetcher: the first fetch of its process (cold start)" "$fb_cold" "$(median "$fb_cold")"
row "fetcher (fetch_bench, idle): whole fetch, then hash + fsync + rename" "$fb_whole" "$(median "$fb_whole")"
row "node during the rollout: the exchange, request sent -> last byte" "$xfer_ms" "$xfer_med"
row "node: then hash + store (temp file, fsync, rename)" "$store_ms" "$(median "$store_ms")"
row "node: 'fetching' -> plugin blob stored (logs, worker wake-ups included)" "$node_fetch_ms" "$node_med"
row "  of which: 'fetching' -> first blob of any size stored" "$first_ms" "$(median "$first_ms")"
row "  of which: last small blob stored -> plugin blob stored" "$marginal_ms" "$(median "$marginal_ms")"
row "curl alone, idle network (the baseline)" "$curl_ms" "$curl_med"
row "curl, $((nodes - 1)) at once (same fan-out), per transfer" "$par_ms" "$par_med"
row "curl + sha256sum + sync of the file" "$dur_ms" "$dur_med"
echo "fetched from: $(awk '{print $1 " of '"$n_samples"' fetches from " $2}' <<<"$src_main") (publisher n1: http://127.0.0.1:${pub[n1]}); node times from log timestamps (1 ms resolution)"
# Judged: the fetcher's exchange against curl, the same blob from the same node, alternating,
# on the idle network. For context: the nodes' exchanges during the rollout (all ten
# processes busy with the same release on two cores) against the same fan-out of curls.
ratio=$(awk -v c="$alt_med" -v n="$fb_med" 'BEGIN {printf "%.3f", (n > 0 ? c / n : 0)}')
ratio_roll=$(awk -v c="$par_med" -v n="$xfer_med" 'BEGIN {printf "%.3f", (n > 0 ? c / n : 0)}')
ratio_dur=$(awk -v c="$dur_med" -v n="$(median "$fb_whole")" 'BEGIN {printf "%.3f", (n > 0 ? c / n : 0)}')
echo "fetcher/curl throughput ratio = median curl time / median fetcher exchange time = $ratio (idle, warm); during the rollout, nodes vs $((nodes - 1)) curls at once: $ratio_roll; whole fetch vs curl + sha256sum + sync: $ratio_dur"

# ---- 4: a 3-stage rollout's timeline ----
v=$((releases + 2))
make_release "$v" --stages 3 --soak 2s
echo
echo "== 4. release $v, 3 stages, soak 2 s: timeline (s after the start of publish)"
publish "$v"
wait_serving "$v" 90 0.1 || die "release $v: not every node served it within 90 s"
ro=$(api n1 /releases)
echo "| s after publish | event |"
echo "|---|---|"
{
  jq -r --argjson t0 "${t0[$v]}" '.rollout.stages[] | "\((.starts - $t0) / 1000) stage \(.stage) starts (ledger; \(.members) member(s))"' <<<"$ro"
  for n in "${names[@]}"; do
    st=$(api "$n" /status | jq -r .release.stage)
    echo "$(awk -v m="$(switched_ms "$v" "$n")" 'BEGIN {print m / 1000}') $n (stage $st) now serving release $v"
  done
} | sort -g | awk '{t = $1; $1 = ""; printf "| %.2f |%s |\n", t, $0}'
echo "stage gaps (ledger): $(jq -r '[.rollout.stages[].starts] | [range(1; length) as $i | "\((.[$i] - .[$i - 1]) / 1000) s"] | join(", ")' <<<"$ro")" \
  "(a node reports healthy a second after its switch; the next stage starts once enough reports are soak old)"
staged_last=$(max_of "$(for n in "${names[@]}"; do switched_ms "$v" "$n"; done)")

# ---- summary ----
wall=$(awk -v s="${script_start/,/.}" -v e="${EPOCHREALTIME/,/.}" 'BEGIN {printf "%.0f", e - s}')
verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == "<" ? x < t : op == ">=" ? x >= t : x == t); print (ok ? "PASS" : "FAIL")}'; }
echo
echo "== summary ($nodes nodes on loopback, $(nproc) cores; wall time of the script ${wall} s)"
echo "| target | measured | goal | result |"
echo "|---|---|---|---|"
echo "| publish -> all $nodes nodes serving the new release (median of $releases, poll) | $(awk -v m="$poll_med" 'BEGIN {printf "%.2f s", m / 1000}') | < 2 s | $(verdict "$poll_med" "<" 2000) |"
echo "| failed requests during the switch under load (non-2xx + socket errors) | $total_bad of $total_req | 0 | $(verdict "$total_bad" "==" 0) |"
echo "| blob fetch throughput, fetcher / curl, same blob from the same node (median $fb_med ms vs $alt_med ms) | $ratio | >= 0.8 | $(verdict "$ratio" ">=" 0.8) |"
echo "| (context) during the rollout, nodes / $((nodes - 1)) curls at once (median $xfer_med ms vs $par_med ms) | $ratio_roll | - | - |"
echo "| 3-stage rollout, soak 2 s: last node switched | $(awk -v m="$staged_last" 'BEGIN {printf "%.2f s", m / 1000}') | (timeline) | - |"
echo "Reproduce: $reproduce"
echo "Binary: $bin_id; $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
now_id="$bin ($(stat -c %y "$bin" | cut -c1-19), sha256 $(sha256sum "$bin" | cut -c1-12))"
[[ $now_id == "$bin_id" ]] || echo "WARNING: $bin changed during the run (now $now_id): nodes may run different builds; run again."
