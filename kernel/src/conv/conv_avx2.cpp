// AVX2+FMA micro-kernels: 6 output channels x 2 ymm of pixels (12 accumulators, 2 loads and a broadcast
// of the 16 registers; MLAS's AVX2 SGEMM kernel uses the same 6 x 16 tile). Compiled for AVX2 inside this
// file only and picked at run time (conv.cpp).
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace aitw::kernel::conv_detail {
namespace {

constexpr int kVecBytes = 32, kCoBlock = 6, kVectors = 2;
inline __attribute__((always_inline)) __m256 fma(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline __attribute__((always_inline)) __m256 bcast(const float* p) {
  return _mm256_broadcast_ss(p);
}
// The tiles over output channels' tap values as one vbroadcastss each, never shared between taps: at stride 2
// tap (p, kx = 2) reads pixel p + 1's kx = 0, and GCC 12 kept such broadcasts alive across taps, which with
// 12 accumulators in 16 registers spilled five of them to the stack (a load and a store around every FMA).
#define AITW_OC_BCAST_ASM
// r[k] lane p <- r[p] lane k (oc_store's transposed store): unpacks of floats, then of pairs, then a 128-bit
// lane exchange (vunpcklps, vshufps, vperm2f128), as generic shuffles.
#define AITW_OC_TRANSPOSE
typedef float V8 __attribute__((vector_size(32)));
inline __attribute__((always_inline)) void oc_transpose(V8 (&r)[8]) {
  V8 t[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    r[4 * i] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
    r[4 * i + 1] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    r[4 * i + 2] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
    r[4 * i + 3] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = __builtin_shufflevector(r[i], r[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
    t[i + 4] = __builtin_shufflevector(r[i], r[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = t[i];
}
// kNP floats of v to d, plus as many of res (null: none). 6 (the tiles' width) as 4 + 2 floats: vmaskmovps
// stores are slow on AMD (as slow as the scalar stores they replaced).
template <int kNP>
inline __attribute__((always_inline)) void oc_put(float* d, const float* res, V8 v) {
  if constexpr (kNP == 6) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    // The 2 floats through the epi64 forms: their pointers are unaligned types (UBSan flagged _mm_store_sd's
    // double * at a float's alignment).
    if (res) {
      lo = _mm_add_ps(lo, _mm_loadu_ps(res));
      hi = _mm_add_ps(hi, _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(res + 4))));
    }
    _mm_storeu_ps(d, lo);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 4), _mm_castps_si128(hi));
  } else {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(kNP), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (res) v = _mm256_add_ps(v, _mm256_maskload_ps(res, m));
    _mm256_maskstore_ps(d, m, v);
  }
}
#define AITW_SILU_MINMAX256  // the SiLU's clamp with vmaxps / vminps (conv_microkernel.hpp)
#include "conv_microkernel.hpp"

}  // namespace

// Every set of tiles, the ones over output channels included (3x3 padding 1: 6 pixels x 2 ymm of channels).
// They used to be off here (measured 3.0 vs 2.26 ms on 128 -> 128 stride 2 at 60 x 80), but that was the
// spills above: with the broadcasts kept per tap and the 8 x 8 transposed store, YOLO11n's seven stride-2
// layers at 480 x 640, 2 threads, Zen 4 VM, three alternated runs, against oneDNN 2.6's jit:avx2 on its
// blocked layout (DNNL_MAX_CPU_ISA=AVX2) in the same process: 15.16 / 13.85 / 13.08 ms (1.49-1.56x oneDNN)
// -> 10.87 / 10.23 / 9.29 ms (1.08-1.14x); all 87 convolutions 1.05-1.08x oneDNN's -> 0.93-0.99x.
// Winograd's GEMMs on 4 x 3 tiles instead (conv_avx2_wino.cpp).
const KernelSet* avx2_kernels() {
  static const KernelSet set = [] {
    KernelSet k = make_kernel_set("avx2");
    k.wino = avx2_wino_kernels();
    return k;
  }();
  return &set;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx2_kernels() {
  return nullptr;
}
}  // namespace aitw::kernel::conv_detail
#endif
