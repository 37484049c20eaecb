// node bench/peer/verdict_test.js: the peer's figures and gate (verdict.js); ctest runs it (peer_verdict).
'use strict';
const assert = require('assert');
const {median, summarize, gated, passes} = require('./verdict');

assert.strictEqual(median([3, 1, 2]), 2);
assert.strictEqual(median([4, 1, 3, 2]), 2.5);
assert.throws(() => median([]));

// The run that moved the gate: the host slowed mid-run; aitw led 8 of the 9 rounds.
const ort = [32.92, 32.50, 32.43, 32.12, 32.32, 46.66, 46.86, 46.86, 46.78];
const aitw = [28.73, 29.97, 29.51, 29.11, 35.56, 36.50, 36.21, 34.68, 35.21];
const s = summarize(ort, aitw);
assert.strictEqual(s.ort_ms, 32.92);
assert.strictEqual(s.aitw_ms, 34.68);
assert.ok(Math.abs(s.ratio - 34.68 / 32.92) < 1e-12);
assert.ok(s.ratio > 1, 'the ratio of the medians misreads this run');
assert.strictEqual(aitw.filter((x, i) => x < ort[i]).length, 8);
assert.ok(Math.abs(gated(s) - 28.73 / 32.92) < 1e-12, `median of the rounds' ratios: ${gated(s)}`);
assert.ok(passes(s, 1.0));
assert.ok(!passes(s, 0.85));

// aitw slower in every round fails a gate of 1.0 whatever the host does.
const slower = summarize([30, 30, 45, 45, 45], [31, 32, 47, 48, 46]);
assert.ok(gated(slower) > 1);
assert.ok(!passes(slower, 1.0));
assert.ok(passes(slower, 1.25));
// At the gate passes (the gate is "at most").
assert.ok(passes(summarize([10], [9]), '0.9'));

// Malformed rounds are an error, not a verdict.
assert.throws(() => summarize([1, 2], [1]));
assert.throws(() => summarize([], []));
assert.throws(() => summarize([1, 0], [1, 1]));
assert.throws(() => summarize([1, NaN], [1, 1]));
console.log('verdict_test: ok');
