// The peer's figures and gate from the rounds' medians (bench/peer/peer.js; tested by verdict_test.js).
// ort_ms and aitw_ms: the medians of the round medians; ratio = aitw_ms / ort_ms; ratio_rounds_median: the
// median of the rounds' own aitw / ORT, which the gate takes: each round's two figures come from the same
// moment of the host, while the ratio of the two medians can pair one engine's fast rounds with the other's
// slow ones when the host's speed moves mid-run (Zen 4 VM, 2026-12-03: ORT rounds 32 / 47 ms, aitw 29 / 35,
// medians 32.9 / 34.7 -> 1.053 while aitw led 8 of the 9 rounds, median of the rounds' ratios 0.873).
'use strict';

const median = (xs) => {
  if (!xs.length) throw new Error('median of nothing');
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function summarize(ortMs, aitwMs) {
  if (ortMs.length !== aitwMs.length || !ortMs.length)
    throw new Error(`rounds differ or are missing: ORT ${ortMs.length}, aitw ${aitwMs.length}`);
  for (const x of [...ortMs, ...aitwMs])
    if (!(Number.isFinite(x) && x > 0)) throw new Error(`a round's median is not a positive time: ${x}`);
  const ortMed = median(ortMs), aitwMed = median(aitwMs);
  return {
    ort_ms: ortMed,
    aitw_ms: aitwMed,
    ratio: aitwMed / ortMed,
    ratio_rounds_median: median(aitwMs.map((x, i) => x / ortMs[i])),
  };
}

// The figure the gate compares, and whether it passes (at or below the gate).
const gated = (summary) => summary.ratio_rounds_median;
const passes = (summary, gate) => gated(summary) <= Number(gate);

module.exports = {median, summarize, gated, passes};
