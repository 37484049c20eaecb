// aitw's forward against ONNX Runtime's, alternating rounds between two long-lived processes: this one runs
// ORT in-process, and `aitw bench layers --stdin-rounds` (a child) runs a round of aitw's forwards for each
// line it is sent. Both are loaded and warmed up once, so consecutive rounds of the two are ~1 s apart and
// see the same load on a shared host (one process per round put 3-4 s of loading between them, and the
// host's slow episodes, several seconds long, then hit one side only). The order within a round alternates
// (ORT first in odd rounds, aitw first in even ones), so neither side always runs right after the other.
//
//   node peer.js --graph G.onnx --imgsz HxW --threads N --rounds R --runs K --json OUT [--gate X]
//                [--model M --precision P --aitw ./build/tools/aitw --aitw-json FILE] [--isa native|avx2]
//
// Prints one line per round and a summary; writes {ort_ms, aitw_ms, ratio, model, imgsz, threads, rounds,
// runs, precision, isa, ort_version, ort_rounds_ms, aitw_rounds_ms, ratio_rounds_median}: ort_ms and aitw_ms are
// the medians of the round medians, ratio = aitw_ms / ort_ms, ratio_rounds_median the median of the rounds'
// aitw / ORT. Exit 1 when --gate is given and ratio_rounds_median is above it (see below), 2 on a usage or
// engine error. Benchmark tooling only; never part of aitw.
'use strict';
const {spawn} = require('child_process');
const fs = require('fs');
const readline = require('readline');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = {threads: 2, rounds: 9, runs: 30, precision: 'auto', aitw: './build/tools/aitw', gate: '', isa: 'native'};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());
    if (!(i + 1 < argv.length)) throw new Error(`${argv[i]} needs a value`);
    a[key] = argv[i + 1];
  }
  for (const k of ['graph', 'imgsz', 'model', 'json', 'aitwJson'])
    if (!a[k]) throw new Error(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  if (!/^\d+x\d+$/.test(a.imgsz)) throw new Error(`--imgsz must be HxW, got '${a.imgsz}'`);
  if (!['native', 'avx2'].includes(a.isa)) throw new Error(`--isa must be native or avx2, got '${a.isa}'`);
  if (a.isa === 'avx2' && process.env.AITW_CONV_ISA !== 'avx2')
    throw new Error('--isa avx2 is set up by bench/peer/run.sh --isa avx2 (AITW_CONV_ISA=avx2 is not set)');
  for (const k of ['threads', 'rounds', 'runs']) {
    a[k] = Number(a[k]);
    if (!Number.isInteger(a[k]) || a[k] < 1) throw new Error(`--${k} must be a positive integer`);
  }
  return a;
}

const {median, summarize, gated, passes} = require('./verdict');

// The aitw child: its JSON lines in order; next() resolves with the next one, rejects if it exits first.
function startAitw(a) {
  const args = ['--log-level', 'warn', 'bench', 'layers', '--model', a.model, '--imgsz', a.imgsz, '--threads',
                String(a.threads), '--precision', a.precision, '--repetitions', String(a.runs), '--stdin-rounds',
                '--json', a.aitwJson];
  const child = spawn(a.aitw, args, {stdio: ['pipe', 'pipe', 'inherit']});
  const lines = [], waiting = [];
  let ended = null;
  child.on('error', (e) => {
    ended = new Error(`could not start ${a.aitw}: ${e.message}`);
    while (waiting.length) waiting.shift().reject(ended);
  });
  child.on('exit', (code, signal) => {
    if (!ended) ended = new Error(`aitw bench layers ended (${signal || 'exit ' + code}) before a round's result`);
    while (waiting.length) waiting.shift().reject(ended);
  });
  readline.createInterface({input: child.stdout}).on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch (e) {
      return;  // not one of the protocol's lines
    }
    if (waiting.length) waiting.shift().resolve(msg);
    else lines.push(msg);
  });
  return {
    child,
    next() {
      if (lines.length) return Promise.resolve(lines.shift());
      if (ended) return Promise.reject(ended);
      return new Promise((resolve, reject) => waiting.push({resolve, reject}));
    },
  };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const [h, w] = a.imgsz.split('x').map(Number);
  const session = await ort.InferenceSession.create(a.graph, {
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  // The same input as aitw's side (bench layers): a constant 0.5 image.
  const input = new ort.Tensor('float32', new Float32Array(3 * h * w).fill(0.5), [1, 3, h, w]);
  const feeds = {[session.inputNames[0]]: input};
  for (let i = 0; i < 3; ++i) await session.run(feeds);  // warm-up: first runs allocate
  const ortRound = async () => {
    const ms = [];
    for (let i = 0; i < a.runs; ++i) {
      const t0 = process.hrtime.bigint();
      await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return median(ms);
  };

  const aitw = startAitw(a);
  const ready = await aitw.next();
  if (!ready.ready) throw new Error('aitw bench layers: unexpected first line ' + JSON.stringify(ready));
  const aitwRound = async () => {
    aitw.child.stdin.write('\n');
    return (await aitw.next()).forward_ms_median;
  };
  const ortMs = [], aitwMs = [];
  for (let r = 1; r <= a.rounds; ++r) {
    if (r % 2) {
      ortMs.push(await ortRound());
      aitwMs.push(await aitwRound());
    } else {
      aitwMs.push(await aitwRound());
      ortMs.push(await ortRound());
    }
    console.log(`peer: round ${r}/${a.rounds}  ORT ${ortMs[r - 1].toFixed(2).padStart(8)} ms  ` +
                `aitw ${aitwMs[r - 1].toFixed(2).padStart(8)} ms`);
  }
  aitw.child.stdin.end();  // aitw writes its --json report (every round) and exits
  const code = await new Promise((resolve) => {
    if (aitw.child.exitCode !== null) resolve(aitw.child.exitCode);
    else aitw.child.on('exit', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`aitw bench layers exited with ${code}`);

  const figures = summarize(ortMs, aitwMs);
  const report = {
    ort_ms: figures.ort_ms,
    aitw_ms: figures.aitw_ms,
    ratio: figures.ratio,
    model: a.model,
    imgsz: a.imgsz,
    threads: a.threads,
    rounds: a.rounds,
    runs: a.runs,
    precision: JSON.parse(fs.readFileSync(a.aitwJson, 'utf8')).precision,
    // 'avx2': both engines held to AVX2 / FMA3 on this CPU (run.sh --isa avx2: aitw by AITW_CONV_ISA, ORT by
    // a copy of its library that sees no AVX-512 state, bench/peer/ort_avx2.py). run.sh sets that up; this
    // script only records it, and refuses it without AITW_CONV_ISA=avx2 (checked in parseArgs).
    isa: a.isa,
    ort_version: require('onnxruntime-node/package.json').version,
    ort_rounds_ms: ortMs,
    aitw_rounds_ms: aitwMs,
    ratio_rounds_median: figures.ratio_rounds_median,
  };
  fs.writeFileSync(a.json, JSON.stringify(report, null, 2) + '\n');
  console.log(`peer: ${a.model} ${a.imgsz}, ${a.threads} threads, aitw ${report.precision}` +
              `${a.isa === 'native' ? '' : ', both engines ' + a.isa}: ` +
              `ORT ${report.ort_ms.toFixed(2)} ms, aitw ${report.aitw_ms.toFixed(2)} ms, ratio aitw/ORT ${report.ratio.toFixed(3)} (median of ${a.rounds} ` +
              `alternating rounds x ${a.runs}; median of the rounds' ratios ` +
              `${report.ratio_rounds_median.toFixed(3)}) -> ${a.json}`);
  // The gate takes the median of the rounds' ratios (verdict.js says why).
  if (a.gate !== '' && !passes(report, a.gate)) {
    console.log(`peer: GATE FAILED: median of the rounds' ratios ${gated(report).toFixed(3)} > ${a.gate}`);
    process.exit(1);
  }
  if (a.gate !== '') console.log(`peer: gate ok: median of the rounds' ratios ${gated(report).toFixed(3)} <= ${a.gate}`);
}

main().catch((e) => {
  console.error('peer: ' + (e && e.message ? e.message : e));
  process.exit(2);
});
