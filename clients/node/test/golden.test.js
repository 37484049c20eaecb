// Wire compatibility: the C++ encoding of every message type (proto/golden/, written and asserted by
// tests/wire_golden_test.cpp) decodes here and re-encodes byte for byte.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { aitw, splitFramed } = require('..');

const GOLDEN = path.resolve(__dirname, '..', '..', '..', 'proto', 'golden');
const CASES = ['init', 'frame', 'end', 'heartbeat', 'initOk', 'ready', 'result', 'error'];

test('every golden Envelope decodes and re-encodes byte-identically', () => {
  const bodies = splitFramed(fs.readFileSync(path.join(GOLDEN, 'messages.bin')));
  assert.deepEqual(bodies.map((b) => aitw.v1.Envelope.decode(b).msg), CASES);
  for (const body of bodies) {
    const e = aitw.v1.Envelope.decode(body);
    const again = Buffer.from(aitw.v1.Envelope.encode(e).finish());
    assert.ok(again.equals(body), `${e.msg}: ${again.toString('hex')} != ${body.toString('hex')}`);
  }
});

test('golden values survive decoding (64-bit ids, negative timestamps, floats, packed classes)', () => {
  const e = splitFramed(fs.readFileSync(path.join(GOLDEN, 'messages.bin'))).map((b) => aitw.v1.Envelope.decode(b));
  assert.equal(e[0].init.model, 'yolo11n@3');
  assert.deepEqual(e[0].init.thresholds.classes, [0, 2, 79, 300]);
  assert.equal(e[0].init.thresholds.conf, 0.25);
  assert.equal(e[0].init.format, aitw.v1.PixelFormat.JPEG);
  assert.equal(e[1].frame.frameId.toString(), '9007199254740993');
  assert.equal(e[1].frame.tsMonoNs.toString(), '-1234567890123456789');
  assert.equal(e[1].frame.pixels.length, 24);
  assert.equal(e[6].result.frameId.toString(), '18446744073709551615');
  assert.equal(e[6].result.detections[1].classId, 79);
  assert.equal(e[6].result.times.inferMs, 55.25);
  assert.equal(e[7].error.code, 12);
  assert.equal(e[7].error.fatal, true);
});

test('the golden RecordingHeader re-encodes byte-identically', () => {
  const [body] = splitFramed(fs.readFileSync(path.join(GOLDEN, 'recording_header.bin')));
  const h = aitw.v1.RecordingHeader.decode(body);
  assert.equal(h.fps, 12.5);
  assert.equal(h.source, 'camera_pan.mp4');
  assert.ok(Buffer.from(aitw.v1.RecordingHeader.encode(h).finish()).equals(body));
});

test('framing: the golden stream fed one byte at a time gives the same messages', () => {
  const { FrameReader } = require('..');
  const bytes = fs.readFileSync(path.join(GOLDEN, 'messages.bin'));
  const reader = new FrameReader();
  const bodies = [];
  for (let i = 0; i < bytes.length; i++) bodies.push(...reader.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(bodies.map((b) => b.toString('hex')), splitFramed(bytes).map((b) => b.toString('hex')));
  assert.equal(reader.bufferedBytes, 0);
  assert.throws(() => splitFramed(bytes.subarray(0, bytes.length - 1)), /truncated/);
  assert.throws(() => new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff])), /exceeds/);
});
