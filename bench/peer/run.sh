#!/usr/bin/env bash
# aitw's forward against ONNX Runtime's on the same network, the same machine and the same thread count,
# interleaved so that both see the same load: the figure issue 15 is about.
#
# Usage: bash bench/peer/run.sh [--model yolo11n] [--imgsz 480x640] [--threads 2] [--rounds 9] [--runs 30]
#                               [--precision fp32|bf16|auto] [--json build/bench-peer.json] [--gate RATIO]
#                               [--isa native|avx2]
#
# ONNX Runtime (npm onnxruntime-node, pinned in bench/peer/package.json; benchmark tooling only, never part of
# the product) is installed into build/peer. It runs the graph `aitw model export` writes: the stock export
# cut at the raw head outputs and re-targeted to the input size, with standard ONNX ops only (no aitw custom
# layers), all of ORT's graph optimisations on. aitw runs its own rewritten graph of the same model
# (`aitw bench layers`, wall time per forward). Both engines are loaded once and alternate rounds of --runs
# forwards each (bench/peer/peer.js), so both see the same moments of a shared host; the figures are the
# medians of the round medians, and ratio = aitw / ORT (below 1: aitw is faster).
# --precision: aitw's convolutions (`aitw bench layers --precision`; default: aitw's default, auto = bf16
# where the CPU has AVX512_BF16); ORT always runs fp32. --gate R exits 1 when the median of the rounds' ratios
# (each round's aitw / ORT, figures of the same moment) is above R.
# --isa avx2: both engines held to AVX2 / FMA3 on an AVX-512 CPU, what an AVX2-only CPU of the same core would
# run: aitw by AITW_CONV_ISA=avx2 (fp32), ORT by a copy of its library in build/peer-avx2 whose ISA probes see
# no AVX-512 state (bench/peer/ort_avx2.py: ORT has no setting for it), glibc's string functions and OpenCV's
# dispatch by GLIBC_TUNABLES / OPENCV_CPU_DISABLE.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=yolo11n imgsz=480x640 threads=2 rounds=9 runs=30 json=build/bench-peer.json gate="" precision=auto isa=native
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --imgsz) imgsz=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --gate) gate=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --isa) isa=$2; shift 2 ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "peer: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$imgsz" =~ ^[0-9]+x[0-9]+$ ]] || { echo "peer: --imgsz must be HxW, got '$imgsz'" >&2; exit 2; }
case "$isa" in
  native) ;;
  avx2)
    [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo ||
      { echo "peer: --isa avx2 needs an x86-64 CPU with AVX2 and FMA" >&2; exit 2; }
    [ "$precision" = bf16 ] && { echo "peer: --isa avx2 runs fp32 (bf16 runs on the AVX-512 kernels only)" >&2; exit 2; }
    precision=fp32 ;;
  *) echo "peer: --isa must be native or avx2, got '$isa'" >&2; exit 2 ;;
esac
aitw=./build/tools/aitw
# Model names are looked up in $AITW_MODEL_DIR (among others): the shared models, as the demo does.
if [ -z "${AITW_MODEL_DIR:-}" ] && [ -d ../shared/models ]; then export AITW_MODEL_DIR; AITW_MODEL_DIR=$(realpath ../shared/models); fi
[ -x "$aitw" ] || { echo "peer: $aitw not found; build first (bash scripts/build.sh)" >&2; exit 2; }

peer=build/peer
bash scripts/install-node.sh
mkdir -p "$peer"
if [ ! -f "$peer/node_modules/onnxruntime-node/package.json" ] || ! cmp -s bench/peer/package-lock.json "$peer/package-lock.json"; then
  cp bench/peer/package.json bench/peer/package-lock.json "$peer/"
  # Pinned by package-lock.json. The CPU binaries ship inside the npm package; its install script would
  # only fetch GPU ones from outside the npm registry (skipped).
  (cd "$peer" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi
cp bench/peer/ort_profile.js bench/peer/peer.js bench/peer/verdict.js "$peer/"
graph="$peer/${model##*/}-$imgsz.onnx"
run_dir=$peer
if [ "$isa" = avx2 ]; then
  run_dir=build/peer-avx2
  # Made again when the installed ORT or the patcher changes, or the copy is gone.
  stamp=$(cat "$peer/package-lock.json" bench/peer/ort_avx2.py | sha256sum)
  if [ ! -f "$run_dir/node_modules/onnxruntime-node/package.json" ] || [ "$(cat "$run_dir/stamp" 2>/dev/null)" != "$stamp" ]; then
    python3 bench/peer/ort_avx2.py "$peer/node_modules" "$run_dir/node_modules"
    echo "$stamp" > "$run_dir/stamp"
  fi
  cp bench/peer/ort_profile.js bench/peer/peer.js bench/peer/verdict.js "$run_dir/"
  # OpenCV works out its AVX512_* groups before it reads OPENCV_CPU_DISABLE: each is named.
  export AITW_CONV_ISA=avx2 OPENCV_CPU_DISABLE=AVX512F,AVX512-COMMON,AVX512-SKX,AVX512-CLX,AVX512-CNL,AVX512-ICL \
    GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL
fi

"$aitw" model export --model "$model" --imgsz "$imgsz" "$graph"

# Both engines stay loaded and alternate rounds (bench/peer/peer.js; aitw as `aitw bench layers --stdin-rounds`).
gate_args=()
[ -n "$gate" ] && gate_args=(--gate "$gate")
node "$run_dir/peer.js" --graph "$graph" --imgsz "$imgsz" --threads "$threads" --rounds "$rounds" --runs "$runs" \
  --model "$model" --precision "$precision" --aitw "$aitw" --aitw-json "$peer/aitw-rounds.json" --json "$json" \
  --isa "$isa" "${gate_args[@]}"
