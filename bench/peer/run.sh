#!/usr/bin/env bash
# aitw's forward against ONNX Runtime's on the same network, the same machine and the same thread count,
# interleaved so that both see the same load: the figure issue 15 is about.
#
# Usage: bash bench/peer/run.sh [--model yolo11n] [--imgsz 480x640] [--threads 2] [--rounds 5] [--runs 30]
#                               [--precision fp32|bf16|auto] [--json build/bench-peer.json] [--gate RATIO]
#
# ONNX Runtime (npm onnxruntime-node, pinned in bench/peer/package.json; benchmark tooling only, never part of
# the product) is installed into build/peer. It runs the graph `aitw model export` writes: the stock export
# cut at the raw head outputs and re-targeted to the input size, with standard ONNX ops only (no aitw custom
# layers), all of ORT's graph optimisations on. aitw runs its own rewritten graph of the same model
# (`aitw bench layers`, wall time per forward). Each round times --runs forwards of each after a warm-up;
# the figures are the medians of the round medians, and ratio = aitw / ORT (below 1: aitw is faster).
# --precision: aitw's convolutions (`aitw bench layers --precision`; default: aitw's default, auto = bf16
# where the CPU has AVX512_BF16); ORT always runs fp32. --gate R exits 1 when the ratio is above R.
set -euo pipefail
cd "$(dirname "$0")/../.."
model=yolo11n imgsz=480x640 threads=2 rounds=5 runs=30 json=build/bench-peer.json gate="" precision=auto
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
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "peer: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$imgsz" =~ ^[0-9]+x[0-9]+$ ]] || { echo "peer: --imgsz must be HxW, got '$imgsz'" >&2; exit 2; }
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
cp bench/peer/ort_forward.js bench/peer/ort_profile.js "$peer/"

graph="$peer/${model##*/}-$imgsz.onnx"
"$aitw" model export --model "$model" --imgsz "$imgsz" "$graph"

ort_ms=() aitw_ms=()
for r in $(seq 1 "$rounds"); do
  o=$(node "$peer/ort_forward.js" "$graph" "$imgsz" "$threads" "$runs")
  ort_ms+=("$(node -e 'console.log(JSON.parse(process.argv[1]).median_ms)' "$o")")
  "$aitw" --log-level warn bench layers --model "$model" --imgsz "$imgsz" --threads "$threads" --precision "$precision" \
    --repetitions "$runs" --json "$peer/aitw-round.json" >/dev/null
  aitw_ms+=("$(node -e 'console.log(require(process.argv[1]).forward_ms_median)' "$(pwd)/$peer/aitw-round.json")")
  printf 'peer: round %d/%d  ORT %8.2f ms  aitw %8.2f ms\n' "$r" "$rounds" "${ort_ms[-1]}" "${aitw_ms[-1]}"
done

node - "$json" "$model" "$imgsz" "$threads" "$rounds" "$runs" "${ort_ms[*]}" "${aitw_ms[*]}" "$gate" \
  "$(pwd)/$peer/aitw-round.json" <<'JS'
const [json, model, imgsz, threads, rounds, runs, ortList, aitwList, gate, round] = process.argv.slice(2);
const median = (xs) => {
  const s = xs.map(Number).sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ort = median(ortList.split(' ')), aitw = median(aitwList.split(' '));
const report = {ort_ms: ort, aitw_ms: aitw, ratio: aitw / ort, model, imgsz, threads: Number(threads),
                rounds: Number(rounds), runs: Number(runs), precision: require(round).precision,
                ort_version: require(require('path').resolve('build/peer/node_modules/onnxruntime-node/package.json')).version};
require('fs').writeFileSync(json, JSON.stringify(report, null, 2) + '\n');
console.log(`peer: ${model} ${imgsz}, ${threads} threads, aitw ${report.precision}: ORT ${ort.toFixed(2)} ms, aitw ${aitw.toFixed(2)} ms, ` +
            `ratio aitw/ORT ${report.ratio.toFixed(3)} (median of ${rounds} rounds x ${runs}) -> ${json}`);
if (gate !== '') {
  if (report.ratio > Number(gate)) {
    console.log(`peer: GATE FAILED: ratio ${report.ratio.toFixed(3)} > ${gate}`);
    process.exit(1);
  }
  console.log(`peer: gate ok: ratio ${report.ratio.toFixed(3)} <= ${gate}`);
}
JS
