#!/usr/bin/env bash
# Configures and builds aitw in ./build with the `ci` preset (Release, warnings are errors, tests and
# benchmarks): the one configuration both Quick start commands use, so running the second after the first
# compiles nothing again. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset ci "$@" >/dev/null
cmake --build --preset ci --parallel "$(nproc)"
