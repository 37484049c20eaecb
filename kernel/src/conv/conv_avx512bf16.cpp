// bf16 micro-kernels (AVX512_BF16): the AVX-512 tile of conv_avx512.cpp — 8 output channels x 3 zmm of
// pixels — with vdpbf16ps, which multiplies two input channels' bf16 values by two weights and adds both to
// an fp32 accumulator: half the multiply-add instructions of fp32 (measured by aitw_conv_bf16_prototype:
// 1.9-2.1x on 3x3 layers, 1.4-1.7x on 1x1 with the input conversion). The input is channel pairs (one
// 32-bit bf16 pair per pixel, built by pack_pairs when the band is split) and the weights pairs packed the
// same way; accumulation, bias, activation and residual stay fp32 (the fp32 tile's epilogue, with the SiLU's
// bf16 form: AITW_SILU_BF16 below). The 3x3 tiles
// over output channels likewise (conv_microkernel.hpp's oc_tile with the OcBf16 multiply-add below): their
// input is converted to pair planes band by band (each unit its band's rows), and each tap broadcasts a
// pixel's pair. Per kind, sum of
// YOLO11n's layers, 2 threads, Zen 4 VM, same process as fp32 (pixel-vector tiles on pair bands -> these):
// 3x3 stride 1 14.3 -> 10.8 ms (fp32 18.2-19.0), stride 2 13.1 -> 9.4 (fp32 15.6-15.7). Compiled for
// AVX512_BF16 inside this file only, picked at run time (conv.cpp) for convolutions asked to run in bf16.
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#include <cstdint>

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16,fma")
namespace aitw::kernel::conv_detail {
namespace {

constexpr int kVecBytes = 64, kCoBlock = 8, kVectors = 3;
inline __attribute__((always_inline)) __m512 fma(__m512 a, __m512 b, __m512 c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline __attribute__((always_inline)) __m512 bcast(const float* p) {
  return _mm512_set1_ps(*p);
}
// The bf16 of a (round to nearest even) in the low half of each 32-bit lane, of b in the high half: 16
// channel pairs (pack_pairs' layout). vcvtne2ps2bf16 puts a's 16 words below b's; vpermw interleaves them:
// two instructions where two vcvtneps2bf16, two widenings, a shift and an or took six (the same bits; the
// pair epilogue alone 2.74 -> 2.16 ns a zmm on the Zen 5 VM).
inline __attribute__((always_inline)) __m512i pair_vector(__m512 a, __m512 b) {
  alignas(64) static constexpr std::int16_t kInterleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                               21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                               11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  return _mm512_permutexvar_epi16(_mm512_load_si512(kInterleave),
                                  reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
}
// (tile_store's pair stores, conv_microkernel.hpp.)
inline __attribute__((always_inline)) void store_pair_vector(float* p, __m512 a, __m512 b) {
  _mm512_storeu_si512(p, pair_vector(a, b));
}
#include "conv_transpose16.hpp"
#define AITW_SILU_SCALEF  // SiLU with vrndscaleps / vscalefps (conv_microkernel.hpp)
#define AITW_SILU_BF16    // and its bf16 form: degree 3, no clamp
#define AITW_TILE_STORE_PAIRS
#include "conv_microkernel.hpp"

// One weight pair (two bf16 in 32 bits) in every lane.
inline __attribute__((always_inline)) __m512bh bcast_pair(const float* p) {
  std::int32_t bits;
  __builtin_memcpy(&bits, p, sizeof bits);
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(bits));
}

template <int kTaps, int kNV>
void conv_tile_bf16(const TileJob& j) {
  V acc[kCoBlock][kNV];
#pragma GCC unroll 16
  for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[c][v] = j.scale ? V{} : splat(j.bias[c]);
  const int ntaps = kTaps ? kTaps : j.ntaps;
  const float* w = j.weights;
  const float* in = j.in;
  for (int p = 0; p < j.channels; ++p, in += j.in_channel) {
#pragma GCC unroll 9
    for (int t = 0; t < ntaps; ++t, w += kCoBlock) {
      const float* src = in + j.taps[t];
      if (kTaps == 1 || (kTaps == 9 && t % 3 == 0)) {
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) __builtin_prefetch(src + kTilePx + v * kLanes);
      }
      __m512bh x[kNV];
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) x[v] = reinterpret_cast<__m512bh>(_mm512_loadu_si512(src + v * kLanes));
#pragma GCC unroll 16
      for (int c = 0; c < kCoBlock; ++c) {
        const __m512bh wc = bcast_pair(w + c);
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) acc[c][v] = _mm512_dpbf16_ps(acc[c][v], wc, x[v]);
      }
    }
  }
  if (j.scale) {
#pragma GCC unroll 16
    for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) acc[c][v] = fma(acc[c][v], splat(j.scale[c]), splat(j.bias[c]));
  }
  tile_store<kNV>(j, acc);  // pairs_out: the pair stores
}

// The 3x3 tiles over output channels (conv_microkernel.hpp's oc_tile) on channel pairs: per pair and tap,
// kOB weight vectors (16 output channels x the pair's two weights) and kOcPx broadcasts of a pixel's pair
// feed kOcPx x kOB vdpbf16ps, each two multiply-adds per lane. OcJob.in: the input as pair planes
// (pack_pairs).
struct OcBf16 {
  typedef __m512bh X;
  typedef __m512bh W;
  static inline __attribute__((always_inline)) X x(const float* p) { return bcast_pair(p); }
  static inline __attribute__((always_inline)) W w(const float* p) {
    return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p));
  }
  static inline __attribute__((always_inline)) V mac(V acc, X x, W w) { return _mm512_dpbf16_ps(acc, x, w); }
  // OcJob::pairs_out: each pixel's 32 (kOB 2) or 16 channels rounded into 16 or 8 pairs (vcvtne2ps2bf16: the
  // even channel in the low half), transposed to rows of pixels per pair plane like oc_store's floats: one
  // transpose and half the stores of the fp32 output, and no pass of the unit over a buffer of floats.
  static constexpr bool kPairs = true;
  template <int kNP, int kOB>
  static inline __attribute__((always_inline)) void store_pairs(const OcJob& j, V (&acc)[kOB][kNP]) {
    const int n = (j.rows + 1) / 2;
    V16 r[16];
#pragma GCC unroll 16
    for (int p = 0; p < kNP; ++p) {
      const V a0 = activate(acc[0][p], j.activation);
      const V a1 = kOB > 1 ? activate(acc[kOB > 1 ? 1 : 0][p], j.activation) : V{};
      r[p] = reinterpret_cast<V16>(_mm512_cvtne2ps_pbh(a1, a0));
    }
    if constexpr (kNP == 1) {
      float w[16];
      _mm512_storeu_ps(w, reinterpret_cast<__m512>(r[0]));
      for (int k = 0; k < n; ++k) j.out[k * j.out_channel] = w[k];
      return;
    } else {
#pragma GCC unroll 16
      for (int p = kNP; p < 16; ++p) r[p] = V16{};
      transpose16(r);
      for (int k = 0; k < n; ++k) oc_put<kNP>(j.out + k * j.out_channel, nullptr, r[k]);
    }
  }
};

void pack_pairs(const float* a, const float* b, std::ptrdiff_t n, float* dst) {
  for (std::ptrdiff_t i = 0; i < n; i += 16) {
    const auto m = static_cast<__mmask16>(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1);
    const __m512 va = _mm512_maskz_loadu_ps(m, a + i);
    const __m512 vb = b ? _mm512_maskz_loadu_ps(m, b + i) : _mm512_setzero_ps();
    _mm512_mask_storeu_epi32(dst + i, m, pair_vector(va, vb));
  }
}

// AddPairsFn: each pair's low half shifted up into a float (channel a's bf16), its high half masked (b's).
void add_pairs(float* a, float* b, const float* pairs, std::ptrdiff_t n) {
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  for (std::ptrdiff_t i = 0; i < n; i += 16) {
    const auto m = static_cast<__mmask16>(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1);
    const __m512i p = _mm512_maskz_loadu_epi32(m, pairs + i);
    _mm512_mask_storeu_ps(a + i, m,
                          _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i),
                                        _mm512_castsi512_ps(_mm512_maskz_slli_epi32(m, p, 16))));
    if (b)
      _mm512_mask_storeu_ps(
          b + i, m,
          _mm512_add_ps(_mm512_maskz_loadu_ps(m, b + i), _mm512_castsi512_ps(_mm512_and_si512(p, high))));
  }
}

}  // namespace

const KernelSet* avx512bf16_kernels() {
  static const KernelSet set = [] {
    KernelSet k = make_kernel_set("avx512bf16");
    k.tile_1[0] = &conv_tile_bf16<1, 1>;
    k.tile_1[1] = &conv_tile_bf16<1, 2>;
    k.tile_1[2] = &conv_tile_bf16<1, 3>;
    k.tile_9[0] = &conv_tile_bf16<9, 1>;
    k.tile_9[1] = &conv_tile_bf16<9, 2>;
    k.tile_9[2] = &conv_tile_bf16<9, 3>;
    k.tile_n[0] = &conv_tile_bf16<0, 1>;
    k.tile_n[1] = &conv_tile_bf16<0, 2>;
    k.tile_n[2] = &conv_tile_bf16<0, 3>;
    set_oc_tiles<OcBf16>(k);
    k.pairs = true;
    k.pack_pairs = &pack_pairs;
    k.add_pairs = &add_pairs;
    return k;
  }();
  return &set;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx512bf16_kernels() {
  return nullptr;
}
}  // namespace aitw::kernel::conv_detail
#endif
