// The shared failover contract, against small fake workers on loopback (main's `aitw serve` does not drain
// yet): Error 13 answering an Init, End "draining" / "max_session_age" after a Result, a silent worker
// and a refused connection all move the client to the next endpoint, where it re-Inits.
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { AIClient, aitw, encodeFramed, FrameReader } = require('..');
const { until } = require('./worker');

const servers = [];
const clients = [];

// A fake worker: `behave(envelope, reply, socket)` answers each message; it records what it got.
async function fakeWorker(behave) {
  const got = [];
  const server = net.createServer((socket) => {
    const reader = new FrameReader();
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      for (const body of reader.push(chunk)) {
        const e = aitw.v1.Envelope.decode(body);
        got.push(e.msg);
        behave(e, (msg) => socket.write(encodeFramed(msg)), socket);
      }
    });
  });
  servers.push(server);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { endpoint: `127.0.0.1:${server.address().port}`, got, server };
}

// Answers like a worker: InitOk + Ready, a Result + Ready per Frame, heartbeats echoed.
function serving(e, reply) {
  if (e.msg === 'init') {
    reply({ initOk: { modelId: 'b'.repeat(64), classNames: ['person'] } });
    reply({ ready: {} });
  } else if (e.msg === 'frame') {
    reply({ result: { frameId: e.frame.frameId, tsMonoNs: e.frame.tsMonoNs, detections: [{ classId: 0, score: 0.9 }] } });
    reply({ ready: {} });
  } else if (e.msg === 'heartbeat') {
    reply({ heartbeat: { tsMonoNs: e.heartbeat.tsMonoNs } });
  }
}

function client(endpoints, opts = {}) {
  // A long backoff: a move that waited for it would not finish within the test's patience.
  const c = new AIClient({ endpoints, backoffInitialMs: 60000, backoffMaxMs: 60000, ...opts });
  clients.push(c);
  return c;
}

after(async () => {
  for (const c of clients) await c.shutdown();
  for (const s of servers) s.close();
});

test('Error 13 (draining) answering the Init: re-Init on the next endpoint at once', async () => {
  const draining = await fakeWorker((e, reply) => {
    if (e.msg === 'init') reply({ error: { code: 13, message: 'draining: worker is shutting down', fatal: false } });
  });
  const healthy = await fakeWorker(serving);
  const c = client([draining.endpoint, healthy.endpoint]);
  const errors = [];
  c.onError((e) => errors.push(e));
  await c.connect();
  const ok = await c.init({ model: 'yolo11n', clientId: 'failover' });
  assert.equal(ok.modelId, 'b'.repeat(64));
  assert.deepEqual(errors.map((e) => e.code), [13]);
  assert.equal(c.stats().endpoint, healthy.endpoint);
  assert.equal(c.stats().ai_reconnects_total, 1);
  assert.deepEqual(healthy.got, ['init']);
});

for (const reason of ['draining', 'max_session_age']) {
  test(`End "${reason}" after a Result: the next endpoint at once, re-Init, streaming there`, async () => {
    const ending = await fakeWorker((e, reply) => {
      serving(e, reply);
      if (e.msg === 'frame') reply({ end: { reason } });
    });
    const healthy = await fakeWorker(serving);
    const c = client([ending.endpoint, healthy.endpoint]);
    const results = [];
    c.onResult((r) => results.push(r));
    await c.connect();
    await c.init({ model: 'yolo11n' });
    await until(() => c.canSend(), 'Ready');
    c.sendFrame({ pixels: Buffer.from([1, 2, 3]) });
    await until(() => results.length === 1, 'the Result of the ending worker');
    await until(() => c.stats().endpoint === healthy.endpoint && c.stats().ai_init_ok_total === 2, 're-Init elsewhere');
    c.sendFrame({ pixels: Buffer.from([4, 5, 6]) });
    await until(() => results.length === 2, 'a Result from the next worker');
    assert.deepEqual(healthy.got.filter((m) => m !== 'heartbeat'), ['init', 'frame']);
    assert.equal(c.stats().frames_lost_on_disconnect, 0);
  });
}

test('a silent worker is dropped after the heartbeat timeout; the frame in flight is counted lost', async () => {
  const silent = await fakeWorker((e, reply) => {
    if (e.msg === 'init') {
      reply({ initOk: { modelId: 'a'.repeat(64) } });
      reply({ ready: {} });
    } // then nothing, not even heartbeats
  });
  const healthy = await fakeWorker(serving);
  const c = client([silent.endpoint, healthy.endpoint], { heartbeatTimeoutMs: 300, backoffInitialMs: 10, backoffMaxMs: 20 });
  const errors = [];
  c.onError((e) => errors.push(e));
  await c.connect();
  await c.init({ model: 'yolo11n' });
  await until(() => c.canSend(), 'Ready');
  c.sendFrame({ pixels: Buffer.from([1]) });
  await until(() => c.stats().endpoint === healthy.endpoint && c.stats().ai_init_ok_total === 2, 'the move');
  assert.ok(errors.some((e) => /silent for 300 ms/.test(e.message)));
  assert.equal(c.stats().frames_lost_on_disconnect, 1);
  assert.ok(silent.got.includes('heartbeat'), 'heartbeats were sent');
});

test('a refused connection: the next endpoint after its backoff', async () => {
  const closed = await fakeWorker(() => {});
  const deadEndpoint = closed.endpoint;
  await new Promise((r) => closed.server.close(r));
  const healthy = await fakeWorker(serving);
  const c = client([deadEndpoint, healthy.endpoint], { backoffInitialMs: 10, backoffMaxMs: 20 });
  await c.connect();
  assert.equal(c.stats().endpoint, healthy.endpoint);
  assert.equal(c.stats().ai_reconnects_total, 0); // never connected before
  await c.init({ model: 'yolo11n' });
});

test('bad options are refused with the cause', () => {
  assert.throws(() => new AIClient({}), /host, port/);
  assert.throws(() => new AIClient({ endpoints: ['localhost'] }), /endpoint 'localhost': expected HOST:PORT/);
  assert.throws(() => new AIClient({ endpoints: ['h:70000'] }), /port 1-65535/);
  assert.throws(() => new AIClient({ host: 'h', port: 0 }), /port 0/);
  assert.equal(new AIClient({ endpoints: ['[::1]:7070'] }).stats().endpoint, '::1:7070');
});
