// AIClient against a real `aitw serve` (one per suite, with an auth token): handshake, results, latest-wins
// drop accounting, hot reload, auth refusals, and a worker restart (reconnect + re-Init).
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { AIClient } = require('..');
const { Worker, BUS_JPG, until } = require('./worker');

const TOKEN = 'node-client-test-token';
const worker = new Worker({ authToken: TOKEN });
const clients = [];

function client(opts = {}) {
  const c = new AIClient({ host: '127.0.0.1', port: worker.port, backoffInitialMs: 50, backoffMaxMs: 400, ...opts });
  clients.push(c);
  return c;
}

const jpeg = () => ({ pixels: BUS_JPG, format: 'JPEG' });

before(async () => {
  await worker.start();
});

after(async () => {
  for (const c of clients) await c.shutdown();
  await worker.stop();
  worker.cleanup();
});

test('handshake: InitOk describes the model, then the window opens', async () => {
  const c = client();
  await c.connect();
  assert.equal(c.canSend(), false);
  const ok = await c.init({ model: 'yolo11n', conf: 0.25, iou: 0.45, format: 'JPEG', clientId: 'node-test', authToken: TOKEN });
  assert.match(ok.modelId, /^[0-9a-f]{64}$/);
  assert.equal(ok.classNames.length, 80);
  assert.equal(ok.classNames[0], 'person');
  assert.ok(ok.inputWidth > 0 && ok.inputHeight > 0);
  await until(() => c.canSend(), 'the first Ready');
  assert.equal(c.stats().ai_init_ok_total, 1);
});

test('results: detections of bus.jpg, latency and metrics', async () => {
  const c = client();
  const results = [];
  c.onResult((r) => results.push(r));
  await c.connect();
  await c.init({ model: 'yolo11n', conf: 0.25, format: 'JPEG', authToken: TOKEN });
  const id = c.sendFrame({ ...jpeg(), tsMonoNs: 123456789n });
  await until(() => results.length === 1, 'the Result');
  const r = results[0];
  assert.equal(r.frameId, id);
  assert.equal(r.tsMonoNs, 123456789n); // echoed
  assert.ok(r.detections.some((d) => d.classId === 0 && d.score >= 0.25), 'a person in bus.jpg');
  assert.ok(r.detections.some((d) => d.classId === 5), 'the bus');
  for (const d of r.detections) assert.ok(d.x2 > d.x1 && d.y2 > d.y1 && d.x2 <= 810 && d.y2 <= 1080);
  assert.ok(r.latencyMs > 0 && r.times.inferMs > 0);
  const s = c.stats();
  assert.equal(s.ai_frames_sent_total, 1);
  assert.equal(s.ai_detections_total, r.detections.length);
  assert.equal(s.ai_result_latency_ms.count, 1);
  assert.equal(s.ai_frame_inflight, 0);
});

test('classes filter: only the classes asked for come back', async () => {
  const c = client();
  const results = [];
  c.onResult((r) => results.push(r));
  await c.connect();
  await c.init({ model: 'yolo11n', conf: 0.25, classes: [5], format: 'JPEG', authToken: TOKEN });
  c.sendFrame(jpeg());
  await until(() => results.length === 1, 'the Result');
  assert.ok(results[0].detections.length >= 1);
  assert.ok(results[0].detections.every((d) => d.classId === 5));
});

test('latest wins: a burst sends the first and the last frame, the rest are counted as drops', async () => {
  const c = client();
  const results = [];
  c.onResult((r) => results.push(r));
  await c.connect();
  await c.init({ model: 'yolo11n', format: 'JPEG', authToken: TOKEN });
  await until(() => c.canSend(), 'Ready');
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(c.sendFrame(jpeg()));
  assert.equal(c.stats().ai_frame_inflight, 1);
  assert.equal(c.canSend(), false);
  await until(() => results.length === 2, 'two Results');
  await until(() => c.stats().ai_frame_inflight === 0, 'the window to free');
  const s = c.stats();
  assert.deepEqual(results.map((r) => r.frameId), [ids[0], ids[5]]);
  assert.equal(s.ai_frames_sent_total, 2);
  assert.equal(s.ai_drops_latestwins_total, 4);
  assert.equal(s.ai_frames_sent_total + s.ai_drops_latestwins_total, ids.length);
});

test('hot reload: Init with another model while streaming, held until the frame in flight is answered', async () => {
  const c = client();
  const results = [];
  const errors = [];
  c.onResult((r) => results.push(r));
  c.onError((e) => errors.push(e));
  await c.connect();
  const first = await c.init({ model: 'yolo11n', format: 'JPEG', authToken: TOKEN });
  await until(() => c.canSend(), 'Ready');
  c.sendFrame(jpeg()); // in flight while the reload is asked for: the worker would refuse an Init now
  const second = await c.init({ model: 'yolov8n', format: 'JPEG', authToken: TOKEN });
  assert.notEqual(second.modelId, first.modelId);
  assert.equal(results.length, 1);
  c.sendFrame(jpeg());
  await until(() => results.length === 2, 'a Result from the reloaded model');
  assert.deepEqual(errors, []);
  assert.equal(c.stats().ai_init_ok_total, 2);
});

test('a refused model: init() rejects with code 7 and the session keeps serving its model', async () => {
  const c = client();
  const results = [];
  c.onResult((r) => results.push(r));
  await c.connect();
  await c.init({ model: 'yolo11n', format: 'JPEG', authToken: TOKEN });
  await assert.rejects(c.init({ model: 'no-such-model', format: 'JPEG', authToken: TOKEN }), (e) => e.code === 7);
  c.sendFrame(jpeg());
  await until(() => results.length === 1, 'a Result from the kept model');
});

test('auth: a missing or wrong token is refused (code 12), the token never echoed', async () => {
  for (const authToken of [undefined, 'wrong-token']) {
    const c = client();
    const errors = [];
    c.onError((e) => errors.push(e));
    await c.connect();
    await assert.rejects(c.init({ model: 'yolo11n', authToken }), (e) => e.code === 12);
    assert.ok(!errors[0].message.includes(TOKEN));
    assert.equal(errors[0].fatal, true);
    assert.equal(c.stats().ai_init_ok_total, 0);
  }
});

test('worker restart: the client reconnects, re-Inits by itself and streams again', async () => {
  const c = client();
  const results = [];
  c.onResult((r) => results.push(r));
  await c.connect();
  await c.init({ model: 'yolo11n', format: 'JPEG', authToken: TOKEN });
  c.sendFrame(jpeg());
  await until(() => results.length === 1, 'a Result before the restart');
  await worker.stop();
  await until(() => !c.stats().connected, 'the client to see the worker gone');
  await worker.start();
  await until(() => c.stats().ai_init_ok_total === 2, 're-Init after reconnecting');
  assert.ok(c.stats().ai_reconnects_total >= 1);
  c.sendFrame(jpeg());
  await until(() => results.length === 2, 'a Result after the restart');
});
