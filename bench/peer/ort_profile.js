// ONNX Runtime's time per operator and per node on an ONNX graph (its own profiler), to set beside
// `aitw bench layers --json` (per_layer) in the same minutes: where ORT is faster, layer by layer.
//   node bench/peer/ort_profile.js MODEL.onnx HxW [THREADS=2] [RUNS=35] [TOP=30]
// bench/peer/run.sh installs onnxruntime-node, writes the graph and copies this script into build/peer:
//   node build/peer/ort_profile.js build/peer/yolo11n-480x640.onnx 480x640
// Prints the median run, then the mean ms per run by operator type and for the TOP slowest nodes (the first
// 5 runs are warm-up and not counted). Benchmark tooling only; never part of aitw.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, imgsz, threadsArg, runsArg, topArg] = process.argv.slice(2);
  if (!model || !/^\d+x\d+$/.test(imgsz || '')) {
    console.error('usage: node ort_profile.js MODEL.onnx HxW [THREADS] [RUNS] [TOP]');
    process.exit(2);
  }
  const [h, w] = imgsz.split('x').map(Number);
  const threads = Number(threadsArg || 2), runs = Number(runsArg || 35), top = Number(topArg || 30);
  const warmup = 5;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-profile-'));
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: path.join(dir, 'ort'),
  });
  const input = new ort.Tensor('float32', new Float32Array(3 * h * w).fill(0.5), [1, 3, h, w]);
  for (let i = 0; i < warmup + runs; ++i) await session.run({[session.inputNames[0]]: input});
  session.endProfiling();
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.json'));
  const events = JSON.parse(fs.readFileSync(path.join(dir, file)));
  fs.rmSync(dir, {recursive: true, force: true});
  const model_runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  if (model_runs.length < warmup + runs) throw new Error(`profile holds ${model_runs.length} runs, expected ${warmup + runs}`);
  const t0 = model_runs[warmup].ts, counted = model_runs.length - warmup;
  const ms = model_runs.slice(warmup).map((e) => e.dur / 1000).sort((a, b) => a - b);
  const byOp = new Map(), byNode = new Map();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < t0) continue;
    const op = e.args.op_name, node = e.name.slice(0, -'_kernel_time'.length);
    byOp.set(op, (byOp.get(op) || 0) + e.dur);
    const n = byNode.get(node) || {op, us: 0};
    n.us += e.dur;
    byNode.set(node, n);
  }
  const perRun = (us) => (us / counted / 1000).toFixed(3);
  console.log(`ORT ${require('onnxruntime-node/package.json').version}, ${model} ${imgsz}, ${threads} threads: ` +
              `median run ${ms[ms.length >> 1].toFixed(2)} ms over ${counted} runs`);
  console.log('ms per run by operator:');
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(`  ${op.padEnd(20)} ${perRun(us)}`);
  console.log(`slowest ${top} nodes, ms per run:`);
  for (const [node, n] of [...byNode].sort((a, b) => b[1].us - a[1].us).slice(0, top))
    console.log(`  ${perRun(n.us).padStart(7)}  ${n.op.padEnd(14)} ${node}`);
}

main().catch((e) => {
  console.error('ort_profile: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
