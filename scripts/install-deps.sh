#!/usr/bin/env bash
# Installs the Debian packages Peerstack needs, only those missing: safe to run every time.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libpistache-dev libsimdjson-dev libcrypto++-dev
  libboost-dev libboost-system-dev libboost-filesystem-dev
  libsqlite3-dev libminiupnpc-dev libnatpmp-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  curl
)
# Benchmarks need nginx and wrk; install them only when asked (bench/http/run.sh does).
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx-light wrk)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
