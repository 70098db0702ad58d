#!/usr/bin/env bash
# Installs the Debian packages Peerstack needs, only those missing: safe to run every time. As
# root it installs them; otherwise with sudo when there is one; otherwise it prints the command
# to run as root and exits 2.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libpistache-dev libsimdjson-dev libcrypto++-dev
  libboost-dev libboost-system-dev libboost-filesystem-dev
  libsqlite3-dev libminiupnpc-dev libnatpmp-dev libssl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev help2man
  curl socat openssl
)
# Benchmarks need nginx and wrk (--bench, bench/*/run.sh asks); the NAT lab (tests/netns/,
# --lab, scripts/test.sh asks when run as root) needs nftables, miniupnpd, jq, and Node.js with
# npm for localtunnel (an installed `node`/`npm` is used as is); the fuzz harnesses
# (tests/fuzz/, --fuzz, scripts/test.sh and bench/fuzz/run.sh ask) need clang-14 and its
# libFuzzer and sanitizer runtimes; the format check (--format, scripts/test.sh asks) needs
# clang-format-14; the browser tests (tests/e2e/, --browser, scripts/test.sh asks) need
# Debian's chromium and Node.js with npm (for puppeteer-core).
for flag in "$@"; do
  case $flag in
    --bench) packages+=(nginx-light wrk) ;;
    --fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    --format) packages+=(clang-format-14) ;;
    --browser)
      packages+=(chromium)
      command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
      ;;
    --lab)
      packages+=(iproute2 nftables miniupnpd-nftables jq procps)
      command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
      ;;
    *) echo "install-deps: unknown option $flag (known: --bench, --lab, --fuzz, --format, --browser)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

# As root: install. Otherwise through sudo when there is one; else say what to run as root.
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root (there is no sudo here):" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 2
  fi
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
