// Times ONNX Runtime's forward of an ONNX graph: `node ort_forward.js MODEL.onnx HxW THREADS RUNS`.
// Prints one JSON line: {"median_ms", "mean_ms", "runs", "threads", "ort_version"}.
// Benchmark tooling only (bench/peer/run.sh installs onnxruntime-node into build/peer); never part of aitw.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, imgsz, threadsArg, runsArg] = process.argv.slice(2);
  if (!model || !/^\d+x\d+$/.test(imgsz || '')) {
    console.error('usage: node ort_forward.js MODEL.onnx HxW THREADS RUNS');
    process.exit(2);
  }
  const [h, w] = imgsz.split('x').map(Number);
  const threads = Number(threadsArg || 2);
  const runs = Number(runsArg || 30);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  // The same input as aitw's side (bench layers): a constant 0.5 image.
  const input = new ort.Tensor('float32', new Float32Array(3 * h * w).fill(0.5), [1, 3, h, w]);
  const feeds = {[session.inputNames[0]]: input};
  for (let i = 0; i < 3; ++i) await session.run(feeds);  // warm-up: first runs allocate
  const ms = [];
  for (let i = 0; i < runs; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
                                   : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  const version = require('onnxruntime-node/package.json').version;
  console.log(JSON.stringify({median_ms: median, mean_ms: ms.reduce((a, b) => a + b, 0) / ms.length, runs,
                              threads, ort_version: version}));
}

main().catch((e) => {
  console.error('ort_forward: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
