#!/usr/bin/env bash
# Checks the C and C++ files' format (scripts/check-format.sh: clang-format 14, .clang-format),
# builds Peerstack and runs every test (unit and integration) with CTest; then builds the
# same tests with AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/) and runs them
# again, so the bad-input suites also prove the absence of memory errors and UB.
# PEERSTACK_SKIP_SANITIZERS=1 skips the second pass (quicker local runs). Last, the libFuzzer
# harnesses (tests/fuzz/) are built with clang-14 in build-fuzz/ and each runs briefly on its
# seed corpus (CTest label fuzz; PEERSTACK_FUZZ_SECONDS each, 10 by default); a crash fails
# the script. PEERSTACK_SKIP_FUZZ=1 skips that step.
# The NAT lab tests (label netns: network namespaces, so root) run in the first pass only; as
# root this script installs their packages too, otherwise they report themselves skipped. The
# browser tests (label e2e) need Chromium and puppeteer-core, which it installs first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${PEERSTACK_JOBS:-2}

echo "== format (scripts/check-format.sh)"
"$root/scripts/install-deps.sh" --format
"$root/scripts/check-format.sh"

# The browser tests' Chromium and puppeteer-core (tests/e2e/): when they cannot be installed,
# those tests report themselves skipped, with the reason.
if "$root/scripts/install-deps.sh" --browser; then
  want=$(node -p "require('$root/tests/e2e/package.json').dependencies['puppeteer-core']")
  have=$(node -p "require('$root/tests/e2e/node_modules/puppeteer-core/package.json').version" \
    2>/dev/null || true)
  if [[ "$have" != "$want" ]]; then
    (cd "$root/tests/e2e" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) ||
      echo "test: npm ci in tests/e2e failed: the browser tests will report themselves skipped"
  fi
else
  echo "test: Chromium could not be installed: the browser tests will report themselves skipped"
fi

lab=()
if [[ $(id -u) -eq 0 ]]; then lab=(--lab); fi
"$root/scripts/build.sh" "${lab[@]}"
echo "== tests (build/)"
(cd "${PEERSTACK_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "$jobs" --timeout 300)

if [[ "${PEERSTACK_SKIP_SANITIZERS:-0}" != 1 ]]; then
  echo "== tests under ASan + UBSan (build-asan/)"
  PEERSTACK_BUILD_DIR=$root/build-asan CMAKE_BUILD_TYPE=Debug \
    PEERSTACK_CMAKE_ARGS=-DPEERSTACK_SANITIZE=ON "$root/scripts/build.sh"
  (cd "$root/build-asan" &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs" --timeout 300 --label-exclude netns)
fi

if [[ "${PEERSTACK_SKIP_FUZZ:-0}" != 1 ]]; then
  echo "== short fuzz runs (build-fuzz/, clang-14, libFuzzer + ASan + UBSan)"
  "$root/scripts/install-deps.sh" --fuzz
  fuzz_dir=${PEERSTACK_FUZZ_BUILD_DIR:-$root/build-fuzz}
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$fuzz_dir" -DPEERSTACK_FUZZ=ON \
    -DBUILD_TESTING=ON -DPEERSTACK_BUILD_BENCH=OFF \
    -DPEERSTACK_FUZZ_SECONDS="${PEERSTACK_FUZZ_SECONDS:-10}" >/dev/null
  cmake --build "$fuzz_dir" -j "$jobs" --target fuzz_harnesses
  (cd "$fuzz_dir" && ctest --output-on-failure -j "$jobs" --label-regex '^fuzz$')
fi
