#!/usr/bin/env bash
# Quick start, command 1: install, build, and run the main job on embedded defaults:
# `aitw detect` with the stock YOLO11n export on the sample images, annotated copies in out/annotated/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
shared="${AITW_SHARED_DIR:-../shared}"
mkdir -p out
./build/tools/aitw detect --annotate out/annotated "$shared"/datasets/images/*.jpg
echo "demo: annotated images written to $(pwd)/out/annotated/" >&2
