#!/usr/bin/env bash
# Runs each libFuzzer harness (tests/fuzz/) at length and prints, per harness, the executions,
# exec/s and libFuzzer's final coverage: cov (edges reached) and ft (features: edges with hit
# counts, comparisons). scripts/test.sh runs the same harnesses for a few seconds only.
#   bench/fuzz/run.sh [--runs N] [HARNESS...]     (default: 10^7 runs each, every harness)
# Builds build-fuzz/ with clang-14 first (PEERSTACK_FUZZ_BUILD_DIR to change it). A harness
# starts from its seeds (tests/fuzz/corpus/<name>/) plus what earlier runs kept in
# <build>/tests/fuzz/corpus/<name>/, and adds its new inputs there, never to the seeds. A crash
# ends that harness's run: the input is saved in <build>/tests/fuzz/artifacts/ (libFuzzer's
# log says which file), the table marks it and the script exits 1 after the table.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=10000000
harnesses=()
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    -*) echo "usage: $0 [--runs N] [HARNESS...]  (harnesses: $(ls "$root/tests/fuzz/corpus" | tr '\n' ' '))" >&2
        exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
if ((${#harnesses[@]} == 0)); then
  mapfile -t harnesses < <(ls "$root/tests/fuzz/corpus")
fi

"$root/scripts/install-deps.sh" --fuzz
build=${PEERSTACK_FUZZ_BUILD_DIR:-$root/build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DPEERSTACK_FUZZ=ON -DBUILD_TESTING=ON \
  -DPEERSTACK_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${PEERSTACK_JOBS:-2}" --target fuzz_harnesses >/dev/null

fuzz=$build/tests/fuzz
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
rows=() failed=0
for h in "${harnesses[@]}"; do
  [[ -x $fuzz/fuzz_$h ]] || { echo "no harness $h (built: $(ls "$fuzz" | grep '^fuzz_' | tr '\n' ' '))" >&2; exit 2; }
  mkdir -p "$fuzz/corpus/$h"
  echo "fuzzing $h: $runs runs" >&2
  start=$(date +%s.%N)
  result=ok
  "$fuzz/fuzz_$h" -runs="$runs" -print_final_stats=1 -timeout=10 \
    -artifact_prefix="$fuzz/artifacts/$h-" "$fuzz/corpus/$h" "$root/tests/fuzz/corpus/$h" \
    >"$logs/$h.log" 2>&1 || result=CRASH
  end=$(date +%s.%N)
  if [[ $result != ok ]]; then
    failed=1
    echo "== $h crashed; the end of its log:" >&2
    tail -n 40 "$logs/$h.log" >&2
  fi
  # The last status line ("#N DONE cov: C ft: F corp: ...", or the last one before a crash)
  # holds the final coverage; stat:: lines the executions.
  rows+=("$(awk -v h="$h" -v r="$result" -v t0="$start" -v t1="$end" '
    /^#[0-9]+/ { for (i = 1; i < NF; i++) { if ($i == "cov:") cov = $(i+1); if ($i == "ft:") ft = $(i+1);
                                             if ($i == "corp:") corp = $(i+1) } }
    /^stat::number_of_executed_units:/ { execs = $2 }
    /^stat::peak_rss_mb:/ { rss = $2 }
    END { s = t1 - t0; printf "| %s | %d | %.0f | %.0f | %s | %s | %s | %s | %s |", h, execs, s,
          (s > 0 ? execs / s : 0), cov, ft, corp, rss, r }' "$logs/$h.log")")
done
echo "| harness | executions | seconds | exec/s | cov | ft | corpus (inputs/size) | peak RSS MB | result |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo "Settings: -runs=$runs per harness, one process each, $(nproc) cores, $(clang-14 --version | head -1)."
exit "$failed"
