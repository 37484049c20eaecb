#!/usr/bin/env bash
# Quick start, command 2: install, build (warnings are errors), and run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DAITW_WERROR=ON -DAITW_BUILD_TESTS=ON
cd build
ctest --output-on-failure --timeout 1200 -j "$(nproc)" "$@"
