#!/usr/bin/env bash
# Installs the Debian 12 packages aitw builds and tests with, and nothing else. Idempotent: when every
# package is present it changes nothing and needs no root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopencv-dev libeigen3-dev libtbb-dev libprotobuf-dev protobuf-compiler
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libbenchmark-dev libasio-dev libcpp-httplib-dev
  libsqlite3-dev libmongoc-dev libbson-dev
  haproxy prometheus systemd python3 python3-protobuf
)

missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
