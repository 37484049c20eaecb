#!/usr/bin/env bash
# Quick start, command 1: install, build, and run the main job on embedded defaults: `aitw replay` starts
# the worker (`aitw serve`'s server) in-process on loopback and streams the standard camera-pan recording
# (640x480, 12 fps) to it over TCP with the stock YOLO11n export, printing the latency table; then
# `aitw detect` on the sample images (annotated copies in out/annotated/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
shared="${AITW_SHARED_DIR:-../shared}"
# aitw looks model names up in the model folders only (never ../shared): point it at the shared models.
export AITW_MODEL_DIR="${AITW_MODEL_DIR:-$(realpath "$shared/models")}"
bash datasets/make_replay_sets.sh build/datasets
./build/tools/aitw replay build/datasets/camera_pan_640x480.aitwrec --fps 12 --duration 15
mkdir -p out
./build/tools/aitw detect --annotate out/annotated "$shared"/datasets/images/*.jpg
echo "demo: annotated images written to $(pwd)/out/annotated/" >&2
