#pragma once
// Runtime dispatch for the hand-written loops: the binary targets the x86-64 baseline (SSE2) so that it
// runs anywhere, and GCC's target_clones adds an AVX2 clone of each marked function, picked once at load
// time (ifunc). Only plain C++ loops are marked: Eigen code must not be, because its templates would be
// instantiated with different ISAs under one name. Elsewhere (aarch64: NEON is the baseline) it is empty.
// Not under ThreadSanitizer: the ifunc resolver is instrumented and runs before the TSan runtime is up, so
// the program dies while the dynamic loader relocates it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(AITW_NO_TARGET_CLONES) && \
    !defined(__SANITIZE_THREAD__)
#define AITW_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
// With FMA too (x86-64-v3): for loops whose results need not match another implementation's to the bit
// (the fused multiply-add rounds once); AITW_TARGET_CLONES leaves a * b + c as two roundings.
#define AITW_TARGET_CLONES_FMA __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define AITW_TARGET_CLONES
#define AITW_TARGET_CLONES_FMA
#endif
