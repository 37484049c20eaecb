#!/usr/bin/env bash
# Installs Debian's nodejs and npm when missing (test and benchmark tooling: s3rver, ONNX Runtime's npm
# package; never part of the product). Idempotent.
set -euo pipefail
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then exit 0; fi
echo "install-node: installing nodejs and npm (Debian)"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
