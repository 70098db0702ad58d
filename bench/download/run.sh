#!/usr/bin/env bash
# The one-file download (GET /download) on loopback, against nginx in the same run:
#   1. Size: the file against the sum of its parts (the runtime, the app's files, the card and
#      header), and what zstd would make of it (-3 and -19), to judge whether compressing the
#      payload pays.
#   2. Throughput: curl GETs the same file from a member's /download and from nginx serving a
#      copy of it, R rounds each, alternating which goes first; ratio = Peerstack's median
#      speed / nginx's. Target >= 0.8. The first request (which builds the file) is timed apart.
#   3. Start-up: R friends each run the downloaded file in a fresh data dir (as `./blog.run`
#      does, plus --port 0). Per run: ms from exec until it listens (its ports.json: verified,
#      extracted, both listeners up; the join is excluded: it happens after), and until it
#      serves the app's page (the join and the install on loopback included). Target: median
#      time to listening < 1 s. The friends stay members until the end (a dead member would
#      raise the quorum for the next join).
# Prints a table with PASS/FAIL per target (exit 0 either way; non-zero only when the bench
# cannot run). Kills every process it started by PID on exit, failure or Ctrl-C, removes its
# temp dir. About 20 s on 2 cores.
#
#   bench/download/run.sh [--rounds R]   (build first: scripts/build.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${PEERSTACK_BUILD_DIR:-$root/build}
bin=${PEERSTACK_BIN:-$build/core/peerstack}
hello=$build/plugins/libhello.so
rounds=5
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds R]" >&2; exit 2 ;;
  esac
done
[[ -x $bin && -f $hello ]] || { echo "no $bin or $hello: run scripts/build.sh first" >&2; exit 1; }
command -v nginx >/dev/null || "$root/scripts/install-deps.sh" --bench
for c in jq curl nginx zstd; do command -v "$c" >/dev/null || { echo "needs $c" >&2; exit 1; }; done
source "$root/bench/lib.sh"  # $work, pids and their cleanup
die() { echo "download bench: $*" >&2; exit 1; }
now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }
port_of() { jq -r ".$2" "$1/ports.json" 2>/dev/null; }

mkdir -p "$work/app/plugins" "$work/app/front"
cp "$hello" "$work/app/plugins/libhello.so"
cp -r "$root/front/." "$work/app/front/"
start() { bench_start_node "$@"; }
members() { curl -s -m 2 -H "Authorization: Bearer $(tr -d '\n' <"$work/n1/admin.token")" \
  "http://127.0.0.1:$(port_of "$work/n1" admin)/status" | jq -r .network.members 2>/dev/null; }
start n1
url="http://127.0.0.1:$(port_of "$work/n1" public)"
start n2 --join "$url"
two_members() { [[ $(members) == 2 ]]; }
bench_until 30 "n2 to join" two_members

# 1. The first request builds the file; sizes.
t=$(now_ms)
curl -fsS -o "$work/blog.run" "$url/download"
first_ms=$(( $(now_ms) - t ))
chmod +x "$work/blog.run"
total=$(stat -c %s "$work/blog.run")
runtime=$(stat -c %s "$bin")
files=$(find "$work/app" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
rest=$((total - runtime - files))
z3=$(zstd -3 -c -q "$work/blog.run" | wc -c)
z19=$(zstd -19 -c -q "$work/blog.run" | wc -c)
zfiles=$(find "$work/app" -type f -print0 | xargs -0 cat | zstd -19 -c -q | wc -c)

# 2. Throughput against nginx serving the same bytes.
mkdir -p "$work/html"
cp "$work/blog.run" "$work/html/blog.run"
bench_nginx 1 "$work/html" /blog.run
speed() { curl -fsS -o /dev/null -w '%{speed_download}' "$1"; }
ps_speeds="" ng_speeds=""
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then
    ps_speeds+="$(speed "$url/download") "; ng_speeds+="$(speed "http://127.0.0.1:$ng_port/blog.run") "
  else
    ng_speeds+="$(speed "http://127.0.0.1:$ng_port/blog.run") "; ps_speeds+="$(speed "$url/download") "
  fi
done
ps_mbs=$(awk -v s="$(bench_median "$ps_speeds")" 'BEGIN {printf "%.0f", s / 1048576}')
ng_mbs=$(awk -v s="$(bench_median "$ng_speeds")" 'BEGIN {printf "%.0f", s / 1048576}')
ratio=$(awk -v a="$(bench_median "$ps_speeds")" -v b="$(bench_median "$ng_speeds")" 'BEGIN {printf "%.2f", a / b}')

# 3. Start-up of the downloaded file, in fresh data dirs.
listen="" serve=""
for ((r = 1; r <= rounds; r++)); do
  d=$work/friend$r
  t=$(now_ms)
  "$work/blog.run" --data-dir "$d" --port 0 --admin-port 0 --bind 127.0.0.1 --tunnel direct >"$work/friend$r.log" 2>&1 &
  pids+=($!)
  bench_until 20 "friend $r to listen" test -s "$d/ports.json"
  listen+="$(( $(now_ms) - t )) "
  bench_until 30 "friend $r to serve the app" curl -fs -o /dev/null "http://127.0.0.1:$(port_of "$d" public)/app.js"
  serve+="$(( $(now_ms) - t )) "
done
listen_ms=$(bench_median "$listen")
serve_ms=$(bench_median "$serve")

pass() { awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {print ((op == ">=" ? a >= b : a < b) ? "PASS" : "FAIL")}'; }
mib() { awk -v b="$1" 'BEGIN {if (b >= 1048576) printf "%.1f MiB", b / 1048576; else printf "%.1f KiB", b / 1024}'; }
echo
echo "| figure | value | target |"
echo "|---|---|---|"
echo "| file size | $(mib "$total") ($total B) | |"
echo "| of which the runtime | $(mib "$runtime") | |"
echo "| of which the app's files (1 plugin, $(find "$work/app/front" -type f | wc -l) frontend files) | $(mib "$files") | |"
echo "| of which card, header, trailer | $rest B | |"
echo "| the file under zstd -3 / -19 | $(mib "$z3") / $(mib "$z19") | |"
echo "| the app's files under zstd -19 | $(mib "$zfiles") | |"
echo "| first request (builds the file) | $first_ms ms | |"
each_mbs() { local v out=""; for v in $1; do out+="$(awk -v s="$v" 'BEGIN {printf "%.0f", s / 1048576}') "; done; echo "${out% }"; }
echo "| download speed, Peerstack / nginx (median of $rounds; each: $(each_mbs "$ps_speeds") / $(each_mbs "$ng_speeds")) | $ps_mbs / $ng_mbs MiB/s, ratio $ratio | >= 0.8: $(pass "$ratio" ">=" 0.8) |"
echo "| ./blog.run to listening (median of $rounds; each: $listen) | $listen_ms ms | < 1000 ms: $(pass "$listen_ms" "<" 1000) |"
echo "| ./blog.run to serving the app, join on loopback included (each: $serve) | $serve_ms ms | |"
echo
echo "bench/download/run.sh --rounds $rounds; $(nproc) cores, nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(date -u +%F)"
