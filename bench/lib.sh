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
pids=()
bench_cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null; fi
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

