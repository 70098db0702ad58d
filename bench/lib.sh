# Shared by the bench/*/run.sh scripts (sourced): options, wrk measurement, medians.
# Every run sends traffic to 127.0.0.1 only.

bench_rounds=5 bench_duration=5 bench_connections=50
bench_threads=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))

# Parses --rounds N --duration S --connections N --server-threads N; exits 2 on anything else.
bench_parse_args() {
  while (($#)); do
    case "$1" in
      --rounds) bench_rounds=$2; shift 2 ;;
      --duration) bench_duration=$2; shift 2 ;;
      --connections) bench_connections=$2; shift 2 ;;
      --server-threads) bench_threads=$2; shift 2 ;;
      *) echo "usage: $0 [--rounds N] [--duration S] [--connections N] [--server-threads N]" >&2
         exit 2 ;;
    esac
  done
}

# One wrk run against URL: prints "<req/s> <p99 ms>".
bench_measure() {
  wrk -t1 -c"$bench_connections" -d"${bench_duration}s" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v);
              if (u=="us") v/=1000; else if (u=="s") v*=1000; p99=v}
    END {printf "%.0f %.3f\n", rps, p99}'
}

# bench_alternate NAME=URL...: bench_rounds rounds of bench_measure on each URL, in the given
# order on odd rounds and the reverse on even ones (the machine is noisy: neither side always
# goes first); appends each result to the caller's associative arrays rps[NAME] and p99[NAME].
bench_alternate() {
  local order r i entry name url q l
  for ((r = 1; r <= bench_rounds; r++)); do
    order=("$@")
    if ((r % 2 == 0)); then
      order=()
      for ((i = $#; i >= 1; i--)); do order+=("${!i}"); done
    fi
    for entry in "${order[@]}"; do
      name=${entry%%=*} url=${entry#*=}
      read -r q l < <(bench_measure "$url")
      rps[$name]+="$q " p99[$name]+="$l "
      echo "round $r $name: $q req/s, p99 $l ms" >&2
    done
  done
}

# The median of the space-separated numbers in $1.
bench_median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -g |
    awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}

# A scratch dir removed on exit, with the benchmark server started by bench_start_server and
# every PID a script appends to pids killed (and reaped), also on failure or Ctrl-C.
work=$(mktemp -d "${TMPDIR:-/tmp}/peerstack-bench.XXXXXX")
server_pid=
nginx_pid=
pids=()
bench_cleanup() {
  local p
  for p in "$server_pid" "$nginx_pid"; do  # TERM: nginx's workers go with it
    if [[ -n $p ]]; then kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; fi
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bench_start_server OUT CMD...: runs CMD in the background with its output in OUT and waits
# (10 s at most) for its first line: the ports it serves on.
bench_start_server() {
  local out=$1
  shift
  "$@" > "$out" &
  server_pid=$!
  for _ in $(seq 200); do [[ -s $out ]] && return 0; sleep 0.05; done
  echo "the benchmark server did not start: $*" >&2
  exit 1
}


# bench_until SECONDS WHAT CMD...: runs CMD every 10 ms until it succeeds; after SECONDS the
# script exits 1 saying what it waited for. (Arguments are expanded once: poll a function.)
bench_until() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || { echo "$(basename "$(dirname "$0")") bench: timed out waiting for $what" >&2; exit 1; }
    sleep 0.01
  done
}

# bench_start_node NAME [flags]: `$bin run` with the app in $work/app (plugins/, front/), data in
# $work/NAME, log in $work/NAME.log, ports it picks, open admission, direct reachability; its
# PID joins pids; waits (20 s at most) for its ports.json. The caller sets $bin.
bench_start_node() {
  local name=$1
  shift
  "$bin" run --data-dir "$work/$name" --port 0 --admin-port 0 --bind 127.0.0.1 --tunnel direct --admission open \
    --plugins "$work/app/plugins" --front "$work/app/front" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  bench_until 20 "$name to start" test -s "$work/$name/ports.json"
}

# A loopback port nothing answers on.
bench_free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2
  exit 1
}

# bench_nginx WORKERS ROOT PROBE [SERVER_LINES]: nginx (access log off, sendfile) serving ROOT
# on a free loopback port, set in ng_port, with SERVER_LINES added to its server block; waits
# (10 s at most) until PROBE (a path) answers. Stopped on exit.
bench_nginx() {
  ng_port=$(bench_free_port)
  mkdir -p "$work/nginx"
  cat >"$work/nginx/nginx.conf" <<CONF
worker_processes $1;
user root;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=100;
  server {
    listen 127.0.0.1:$ng_port;
    root $2;
    ${4:-}
  }
}
CONF
  nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' >/dev/null 2>&1 &
  nginx_pid=$!
  bench_until 10 "nginx on port $ng_port" curl -fs -o /dev/null "http://127.0.0.1:$ng_port$3"
}
