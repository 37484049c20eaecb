#!/usr/bin/env bash
# Builds the standard replay sets from ../shared/datasets (generated at setup time, never committed):
#   coco128_640x480.aitwrec     the 128 coco128 images, scaled and centre-cropped to 640x480, 12 fps
#   camera_pan_640x480.aitwrec  30 s at 12 fps of a 640x480 window gliding across bus.jpg, then zidane.jpg
# Usage: datasets/make_replay_sets.sh [OUT_DIR]   (default build/datasets; needs ./build/tools/aitw)
# A set newer than the aitw binary is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
aitw=${AITW:-./build/tools/aitw}
shared=${AITW_SHARED_DIR:-../shared}
out=${1:-build/datasets}
[ -x "$aitw" ] || { echo "make_replay_sets: $aitw not found; build first (bash scripts/build.sh)" >&2; exit 1; }
[ -d "$shared/datasets" ] || { echo "make_replay_sets: $shared/datasets not found (set AITW_SHARED_DIR)" >&2; exit 1; }
mkdir -p "$out"

make_set() {
  local file=$1
  shift
  if [ -s "$out/$file" ] && [ "$out/$file" -nt "$aitw" ]; then
    echo "make_replay_sets: $out/$file is up to date"
    return
  fi
  "$aitw" record "$@" --out "$out/$file.tmp"
  mv "$out/$file.tmp" "$out/$file"
}

make_set coco128_640x480.aitwrec --from "$shared/datasets/coco128/images/train2017" --size 640x480 --fps 12
make_set camera_pan_640x480.aitwrec --pan --from "$shared/datasets/images/bus.jpg,$shared/datasets/images/zidane.jpg" \
  --size 640x480 --fps 12 --duration 30
