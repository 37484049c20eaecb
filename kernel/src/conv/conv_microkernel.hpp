// The convolution micro-kernels, written once over GCC vector types and instantiated by each ISA file
// (conv_avx512.cpp, conv_avx2.cpp, conv_portable.cpp) after it has switched the target ISA on. Included
// there inside an anonymous namespace on purpose: every ISA gets its own internal-linkage copy, so the
// linker can never hand an AVX-512 instantiation to a baseline caller. No #include here for the same reason.
//
// The ISA file defines, before including: kVecBytes, kCoBlock, kVectors (tile = kCoBlock output channels x
// kVectors vectors of pixels, all accumulators in registers), `V fma(V a, V b, V c)` (a * b + c) and
// `V bcast(const float* p)` (*p in every lane, one broadcast load where the ISA has it).

constexpr int kLanes = kVecBytes / 4;
constexpr int kTilePx = kVectors * kLanes;
typedef float V __attribute__((vector_size(kVecBytes)));
typedef float VU __attribute__((vector_size(kVecBytes), aligned(4), may_alias));  // unaligned access
typedef int IV __attribute__((vector_size(kVecBytes)));

inline __attribute__((always_inline)) V load(const float* p) {
  return *reinterpret_cast<const VU*>(p);
}
inline __attribute__((always_inline)) void store(float* p, V v) {
  *reinterpret_cast<VU*>(p) = v;
}
inline __attribute__((always_inline)) V splat(float s) {
  return V{} + s;
}

// SiLU, x / (1 + 2^t) with t = -x log2(e): t = n + f, n the nearest integer, 2^f on [-1/2, 1/2] by a degree-5
// minimax polynomial (7.5e-8 relative), t clamped to +-126 (x = +-inf keep their sign; NaN takes the bound
// and x / (1 + ...) is NaN again; AVX-512 clamps only above, see below). Generic: n by the 1.5 * 2^23
// rounding trick, whose low mantissa bits then hold n, shifted straight into the exponent; 15 vector
// operations, ~14-17 cycles a zmm where kernel/fast_math.hpp's silu (Cephes expf: clamps, a two-constant ln 2
// reduction, degree 6, an integer conversion) took ~20-22: the epilogue is 17-30 % of a layer with K = 27-64
// (YOLO11n's first layers, its 1x1 layers at 120 x 160 and 60 x 80). AVX-512 (the ISA file defines
// AITW_SILU_SCALEF): n by vrndscaleps and 2^n p by vscalefps, 13 operations (12 with one clamp); alone
// (load, SiLU, store) 4.8 -> 3.5 ns a zmm on a Zen 4 VM, the same values. Within 1e-6 (relative) of the exact
// SiLU, as fast_math's (which the AitwSiLU layer runs where no convolution takes the activation).
//
// The bf16 kernels (AITW_SILU_BF16: conv_avx512bf16.cpp, every convolution that multiplies in bf16) take 2^f
// of degree 3 (7.5e-5 relative, Remez: 26 times under the half unit of the bf16 their outputs are rounded to,
// or their inputs were) and no clamp: vscalefps makes 2^n of |n| >= 128 +inf or 0, so a large finite |x|
// still gives x or -0, +inf gives +inf (as below), and only a sum under -2.3e38 (t = +inf: f = t - n is NaN,
// vscalefps(NaN, +inf) +inf, x / inf NaN) gives NaN, as a NaN one does. With the pair stores' vpermw, the
// epilogue of a tile writing pairs (SiLU, rounding, store) alone in L1 on the Zen 5 VM: 2.74 -> 1.42 ns a zmm
// (degree 3 0.4 of it, the clamp 0.35); 1 % of the bf16 values move by one unit.
inline __attribute__((always_inline)) V silu(V x) {
  V t = x * -1.44269504088896341f;
#if defined(AITW_SILU_SCALEF)
#ifndef AITW_SILU_BF16
  // Only the upper clamp (x = -inf gives -inf / 2^126 = -inf): below -126, 2^t p by vscalefps is under
  // 2^-126 (or 0; for t = -inf, f = t - n is NaN and vscalefps(NaN, -inf) is +0), so 1 + 2^t p is 1 and x
  // comes out as with the clamp, bit for bit, +inf included. One operation off the chain: YOLO11n fp32
  // forward 0.984 (25 alternated rounds on the Zen 5 VM, range 0.914-1.109; per-layer sums 0.986).
  // (The maskz forms with a full mask: GCC 12 warns about the plain ones' undefined pass-through, PR 105593.)
  t = _mm512_maskz_min_ps(0xffff, t, splat(126.f));
#endif
  const V n = _mm512_maskz_roundscale_ps(0xffff, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const V f = t - n;
#else
  // The clamp as vmaxps / vminps where the ISA file allows them: GCC 12 compiles the ternaries on 256- and
  // 512-bit vectors to a compare and a blend each (t > b ? t : b is maxps's own rule, b for a NaN t, so the
  // values are the same). Alone (load, SiLU, store) 4.1 -> 3.4 ns a zmm on the Zen 4 VM.
#if defined(AITW_SILU_MINMAX256)
  t = _mm256_min_ps(_mm256_max_ps(t, splat(-126.f)), splat(126.f));
#else
  t = t > -126.f ? t : splat(-126.f);
  t = t < 126.f ? t : splat(126.f);
#endif
  constexpr float kMagic = 12582912.f;
  const V tm = t + kMagic;  // kMagic + n in its bits
  const V f = t - (tm - kMagic);
#endif
#if defined(AITW_SILU_BF16)
  V p = splat(5.517166907e-2f);
  p = p * f + 2.426111222e-1f;
  p = p * f + 6.932609855e-1f;
  p = p * f + 9.999280735e-1f;
#else
  V p = splat(1.327635505e-3f);
  p = p * f + 9.675540396e-3f;
  p = p * f + 5.550713635e-2f;
  p = p * f + 2.402211975e-1f;
  p = p * f + 6.931469668e-1f;
  p = p * f + 1.000000072f;
#endif
#ifdef AITW_SILU_SCALEF
  const V e = _mm512_maskz_scalef_ps(0xffff, p, n);
#else
  const V e = reinterpret_cast<V>(reinterpret_cast<IV>(p) + (reinterpret_cast<IV>(tm) << 23));
#endif
  return x / (1.f + e);
}

inline __attribute__((always_inline)) V activate(V v, int act) {
  if (act == 2) return silu(v);
  if (act == 1) return v > 0.f ? v : V{};
  return v;
}

// A tile's accumulators out: activation, the bottleneck's residual Add (read in the output loop instead of a
// second pass over both tensors), store. Shared by the fp32 tile below and the bf16 one
// (conv_avx512bf16.cpp).
template <int kNV>
inline __attribute__((always_inline)) void tile_store(const aitw::kernel::conv_detail::TileJob& j,
                                                      V (&acc)[kCoBlock][kNV]) {
  // The job's fields in locals: the stores go through float pointers, which may alias the job, so GCC
  // reloaded j.activation (and the pointers) after each store and tested it again before each vector (1x1
  // bf16 tile: 248 jumps -> 26). YOLO11n, 2 threads, Zen 5 VM, alternated forwards: bf16 0.950 / 0.981 (7 /
  // 15 rounds; per-layer sums 0.970), fp32 level (1.003 / 0.991).
  const int act = j.activation;
  float* const out = j.out;
  const std::ptrdiff_t oc = j.out_channel;
#ifdef AITW_TILE_STORE_PAIRS
  // TileJob::pairs_out (the bf16 file's tiles): channels c and c + 1 of each vector of pixels as one vector
  // of pairs, pack_pairs' rounding and layout.
  if (j.pairs_out) {
#pragma GCC unroll 8
    for (int c = 0; c < kCoBlock; c += 2)
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v)
        store_pair_vector(out + (c / 2) * oc + v * kLanes, activate(acc[c][v], act),
                          activate(acc[c + 1][v], act));
    return;
  }
#endif
  if (const float* const res = j.residual) {
#pragma GCC unroll 16
    for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        const std::ptrdiff_t o = c * oc + v * kLanes;
        store(out + o, activate(acc[c][v], act) + load(res + o));
      }
    return;
  }
#pragma GCC unroll 16
  for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) store(out + c * oc + v * kLanes, activate(acc[c][v], act));
}

// kNV <= kVectors vectors of pixels: a band's last tile takes only the vectors it needs.
template <int kTaps, int kNV>
void conv_tile(const aitw::kernel::conv_detail::TileJob& j) {
  V acc[kCoBlock][kNV];
#pragma GCC unroll 16
  for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[c][v] = splat(j.bias[c]);
  const int ntaps = kTaps ? kTaps : j.ntaps;
  const float* w = j.weights;
  for (int s = 0; s <= j.more; ++s) {
    const float* in = s == 0 ? j.in : j.more_in[s - 1] + j.more_offset;
    const int channels = s == 0 ? j.channels : j.more_channels[s - 1];
    for (int ci = 0; ci < channels; ++ci, in += j.in_channel) {
#pragma GCC unroll 9
      for (int t = 0; t < ntaps; ++t, w += kCoBlock) {
        const float* src = in + j.taps[t];
        // NCHW gives every input channel its own stream: fetch the next tile's part of it now (a 1x1 tile
        // otherwise stalls on each channel's first line; measured 1.13 -> ? ms on 32->32 at 120x160).
        if (kTaps == 1 || (kTaps == 9 && t % 3 == 0)) {
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) __builtin_prefetch(src + kTilePx + v * kLanes);
        }
        V x[kNV];
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v) x[v] = load(src + v * kLanes);
#pragma GCC unroll 16
        for (int c = 0; c < kCoBlock; ++c) {
          const V wc = bcast(w + c);
#pragma GCC unroll 4
          for (int v = 0; v < kNV; ++v) acc[c][v] = fma(wc, x[v], acc[c][v]);
        }
      }
    }
  }
  tile_store<kNV>(j, acc);
}

void dw_tile(const aitw::kernel::conv_detail::DwJob& j) {
  const float* in = j.in;
  float* out = j.out;
  for (int i = 0; i < j.tiles; ++i, in += kTilePx, out += kTilePx) {
    V acc[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) acc[v] = splat(j.bias);
    for (int t = 0; t < j.ntaps; ++t) {
      const V wt = bcast(j.weights + t);
      const float* src = in + j.taps[t];
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[v] = fma(wt, load(src + v * kLanes), acc[v]);
    }
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) store(out + v * kLanes, activate(acc[v], j.activation));
  }
}

// kN vectors of one output row from x on, before the activation.
template <int kN>
inline __attribute__((always_inline)) void dw3_vectors(const float* const (&r)[3], const V (&wt)[9], V bias,
                                                       int x, int w, float* o) {
  // One partial sum per kernel row, added at the end: nine dependent FMAs were a 36-cycle chain per vector.
  V acc[3][kN];
#pragma GCC unroll 3
  for (int ky = 0; ky < 3; ++ky) {
#if defined(__clang__)  // clang spells the shuffle differently; its build (fuzzing) loads unaligned
#pragma GCC unroll 4
    for (int n = 0; n < kN; ++n) {
      const float* p = r[ky] + x + n * kLanes;
      acc[ky][n] = ky == 0 ? fma(wt[0], load(p), bias) : wt[3 * ky] * load(p);
      acc[ky][n] = fma(wt[3 * ky + 1], load(p + 1), acc[ky][n]);
      acc[ky][n] = fma(wt[3 * ky + 2], load(p + 2), acc[ky][n]);
    }
#else
    // Columns x - 1, x, x + 1: the aligned vector at x of the padded row and two shifts into the next one.
    IV one, two;
    for (int i = 0; i < kLanes; ++i) {
      one[i] = i + 1;
      two[i] = i + 2;
    }
    V a[kN + 1];
#pragma GCC unroll 5
    for (int n = 0; n <= kN; ++n) a[n] = load(r[ky] + x + n * kLanes);
#pragma GCC unroll 4
    for (int n = 0; n < kN; ++n) {
      acc[ky][n] = ky == 0 ? fma(wt[0], a[n], bias) : wt[3 * ky] * a[n];
      acc[ky][n] = fma(wt[3 * ky + 1], __builtin_shuffle(a[n], a[n + 1], one), acc[ky][n]);
      acc[ky][n] = fma(wt[3 * ky + 2], __builtin_shuffle(a[n], a[n + 1], two), acc[ky][n]);
    }
#endif
  }
#pragma GCC unroll 4
  for (int n = 0; n < kN; ++n) {
    const V a = (acc[0][n] + acc[1][n]) + acc[2][n];
    const int xn = x + n * kLanes;
    if (xn + kLanes <= w) {
      store(o + xn, a);
    } else {
      float t[kLanes];
      store(t, a);
      for (int i = 0; i < w - xn; ++i) o[xn + i] = t[i];
    }
  }
}

// The activation and residual over n contiguous floats, four independent vectors at a time (one SiLU is a
// ~100-cycle chain; in the row loop it cost 36 cycles a vector, here ~20).
template <int kAct>
void activate_range(float* o, const float* res, std::ptrdiff_t n) {
  std::ptrdiff_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    V a[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) a[k] = activate(load(o + i + k * kLanes), kAct);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) store(o + i + k * kLanes, res ? a[k] + load(res + i + k * kLanes) : a[k]);
  }
  for (; i < n; i += kLanes) {
    const std::ptrdiff_t m = n - i < kLanes ? n - i : kLanes;
    float t[kLanes] = {};
    for (std::ptrdiff_t k = 0; k < m; ++k) t[k] = o[i + k];
    store(t, activate(load(t), kAct));
    for (std::ptrdiff_t k = 0; k < m; ++k) o[i + k] = res ? t[k] + res[i + k] : t[k];
  }
}

// UpAddJob: the addend, upscaled, added row span by row span (f = 2: each low value into an output pair),
// then the activation over the share, four vectors at a time, with the tiles' own SiLU. The layer's former
// pass over its whole output (fast_math's silu, AVX2 at most) cost 0.08 / 0.12 ms on YOLO11n's two folded
// 1x1 layers in the forward; the same pass per unit, in cache, gained nothing; this SiLU took 0.07 ms off
// the 60 x 80 one.
void up_add(const aitw::kernel::conv_detail::UpAddJob& j) {
  const int lw = j.w / j.f;
  for (int c = j.c0; c < j.c1; ++c) {
    float* const o = j.out + c * j.out_plane;
    const float* const z = j.z + c * j.low_plane;
    for (std::ptrdiff_t p = j.p0; p < j.p1;) {
      const int y = static_cast<int>(p / j.w), x0 = static_cast<int>(p % j.w);
      const int x1 = static_cast<int>(j.w - x0 < j.p1 - p ? j.w : x0 + (j.p1 - p));
      float* const row = o + static_cast<std::ptrdiff_t>(y) * j.w;
      const float* const zr = z + static_cast<std::ptrdiff_t>(y / j.f) * lw;
      int x = x0;
      if (j.f == 2) {
        if (x < x1 && x % 2) {
          row[x] += zr[x / 2];
          ++x;
        }
        const int pairs = (x1 - x) / 2;
        float* const op = row + x;
        const float* const zp = zr + x / 2;
        for (int i = 0; i < pairs; ++i) {
          op[2 * i] += zp[i];
          op[2 * i + 1] += zp[i];
        }
        x += 2 * pairs;
      }
      for (; x < x1; ++x) row[x] += zr[x / j.f];
      p += x1 - x0;
    }
    if (j.activation == 2) {
      activate_range<2>(o + j.p0, nullptr, j.p1 - j.p0);
    } else if (j.activation == 1) {
      activate_range<1>(o + j.p0, nullptr, j.p1 - j.p0);
    }
  }
}

// A depthwise job's rows [y0, y1), contiguous in the channel's output: one pass for the activation and the
// residual.
inline __attribute__((always_inline)) void dw3_epilogue(const aitw::kernel::conv_detail::Dw3Job& j) {
  const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(j.y0) * j.w,
                       n = static_cast<std::ptrdiff_t>(j.y1 - j.y0) * j.w;
  float* const o = j.out + at;
  const float* const res = j.residual ? j.residual + at : nullptr;
  if (j.activation == 2) {
    activate_range<2>(o, res, n);
  } else if (j.activation == 1) {
    activate_range<1>(o, res, n);
  } else if (res) {
    activate_range<0>(o, res, n);
  }
}

// n input floats from src to dst (vectors, then a scalar tail), or, with half 0 or 1 (Dw3Job::pair_half),
// the low or high bf16 of n pair words widened: one shift and one mask a vector, chosen outside the loops.
inline __attribute__((always_inline)) void copy_dw_input(float* dst, const float* src, std::ptrdiff_t n,
                                                         int half) {
  typedef int IVU __attribute__((vector_size(kVecBytes), aligned(4), may_alias));
  typedef unsigned UU __attribute__((aligned(4), may_alias));
  std::ptrdiff_t i = 0;
  if (half < 0) {
    for (; i + kLanes <= n; i += kLanes) store(dst + i, load(src + i));
    for (; i < n; ++i) dst[i] = src[i];
    return;
  }
  const int shift = half ? 0 : 16;
  const unsigned mask = half ? 0xffff0000u : 0xffffffffu;
  for (; i + kLanes <= n; i += kLanes)
    store(dst + i,
          reinterpret_cast<V>((*reinterpret_cast<const IVU*>(src + i) << shift) & static_cast<int>(mask)));
  for (; i < n; ++i) {
    const unsigned u = (*reinterpret_cast<const UU*>(src + i) << shift) & mask;
    __builtin_memcpy(dst + i, &u, sizeof u);
  }
}

// No loop-to-memset/memcpy conversion: a libc call (and vzeroupper) per ring row cost more than the row.
#if defined(__clang__)
#define AITW_NO_LIBCALLS
#else
#define AITW_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif
AITW_NO_LIBCALLS void dw3_rows(const aitw::kernel::conv_detail::Dw3Job& j) {
  // The job's fields in locals: the output stores could alias it as far as the compiler knows.
  const float* const in = j.in;
  const int h = j.h, w = j.w, y0 = j.y0, y1 = j.y1, nv = (w + kLanes - 1) / kLanes, half = j.pair_half;
  float* const out = j.out;
  const std::ptrdiff_t rs = j.row_floats;
  // Input row y lives in ring[(y + 3) % 3]; rows start on a vector boundary (the scratch has a vector's
  // slack for it).
  float* const base = reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(j.rows) + kVecBytes - 1) &
                                               ~static_cast<std::uintptr_t>(kVecBytes - 1));
  float* const ring[3] = {base, base + rs, base + 2 * rs};
  // Row y into its ring slot: a zero, the row, zeros; whole vectors (a memcpy call per row cost as much as
  // the row's FMAs at w = 80).
  const auto fill = [&](int y) {
    float* r = ring[(y + 3) % 3];
    const V zero{};
    for (std::ptrdiff_t i = 0; i < rs; i += kLanes) store(r + i, zero);
    if (y < 0 || y >= h) return;
    copy_dw_input(r + 1, in + static_cast<std::ptrdiff_t>(y) * w, w, half);
  };
  V wt[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) wt[t] = bcast(j.weights + t);
  const V bias = splat(j.bias);
  fill(y0 - 1);
  fill(y0);
  for (int y = y0; y < y1; ++y) {
    fill(y + 1);
    const float* const r[3] = {ring[(y + 2) % 3], ring[y % 3], ring[(y + 1) % 3]};
    float* o = out + static_cast<std::ptrdiff_t>(y) * w;
    int v = 0;
    for (; v + 4 <= nv; v += 4) dw3_vectors<4>(r, wt, bias, v * kLanes, w, o);
    switch (nv - v) {
      case 3:
        dw3_vectors<3>(r, wt, bias, v * kLanes, w, o);
        break;
      case 2:
        dw3_vectors<2>(r, wt, bias, v * kLanes, w, o);
        break;
      case 1:
        dw3_vectors<1>(r, wt, bias, v * kLanes, w, o);
        break;
      default:
        break;
    }
  }
  dw3_epilogue(j);
}

// Depthwise 3x3, stride 1, padding 1 on narrow rows: the channel as one flat sequence (Dw3Job). Where a row
// is a vector and a quarter, dw3_rows spends two vectors, partial stores and a ring row on it, and the band
// path a libc call per copied row (256 channels at 15 x 20 took 0.11 ms, ONNX Runtime's blocked layout 0.03).
// Here a channel is one copy in, h * w / lanes vectors of nine unaligned loads and FMAs (a partial sum per
// kernel column, the outer two masked at the row ends) and one pass for the activation.
AITW_NO_LIBCALLS void dw3_flat(const aitw::kernel::conv_detail::Dw3Job& j) {
  typedef int IVU __attribute__((vector_size(kVecBytes), aligned(4), may_alias));
  const int h = j.h, w = j.w, y0 = j.y0, y1 = j.y1;
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(h) * w, nr = j.row_floats;  // each half of the masks
  float* const buf = j.rows + w + 1;                                               // the channel's pixel 0
  // Rows y0 - 1 .. y1 of the channel; zeros above row 0 and below row h - 1.
  const std::ptrdiff_t c0 = static_cast<std::ptrdiff_t>(y0 > 0 ? y0 - 1 : 0) * w,
                       c1 = static_cast<std::ptrdiff_t>(y1 < h ? y1 + 1 : h) * w;
  if (y0 == 0)
    for (std::ptrdiff_t i = -(w + 1); i < 0; ++i) buf[i] = 0.f;
  if (y1 == h)
    for (std::ptrdiff_t i = n; i < n + w + 1 + kLanes; ++i) buf[i] = 0.f;
  copy_dw_input(buf + c0, j.in + c0, c1 - c0, j.pair_half);
  V wt[9];
#pragma GCC unroll 9
  for (int t = 0; t < 9; ++t) wt[t] = bcast(j.weights + t);
  const V bias = splat(j.bias);
  const std::int32_t* const ml = j.masks;
  const std::int32_t* const mr = j.masks + nr;
  const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(y1) * w;
  for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(y0) * w; p < p1; p += kLanes) {
    const float* c = buf + p;
    V s0 = wt[0] * load(c - w - 1), s1 = fma(wt[1], load(c - w), bias), s2 = wt[2] * load(c - w + 1);
    s0 = fma(wt[3], load(c - 1), s0);
    s1 = fma(wt[4], load(c), s1);
    s2 = fma(wt[5], load(c + 1), s2);
    s0 = fma(wt[6], load(c + w - 1), s0);
    s1 = fma(wt[7], load(c + w), s1);
    s2 = fma(wt[8], load(c + w + 1), s2);
    const IV l = *reinterpret_cast<const IVU*>(ml + p), r = *reinterpret_cast<const IVU*>(mr + p);
    const V a = s1 + reinterpret_cast<V>(reinterpret_cast<IV>(s0) & l) +
                reinterpret_cast<V>(reinterpret_cast<IV>(s2) & r);
    if (p + kLanes <= p1) {
      store(j.out + p, a);
    } else {
      float t[kLanes];
      store(t, a);
      for (std::ptrdiff_t k = 0; k < p1 - p; ++k) j.out[p + k] = t[k];
    }
  }
  dw3_epilogue(j);
}

// dst[k] = src[2 k] for k < n, reading no further than src[avail - 1]: the column phases of a stride-2
// convolution's input, two loads and one two-source permute per vector.
void stride2_copy(const float* src, int n, int avail, float* dst) {
  int k = 0;
#if defined(__clang__)  // clang spells the shuffle differently; its build (fuzzing) takes the scalar loop
  (void)avail;
#else
  IV even;
  for (int i = 0; i < kLanes; ++i) even[i] = 2 * i;
  for (; k + kLanes <= n && 2 * (k + kLanes) <= avail; k += kLanes)
    store(dst + k, __builtin_shuffle(load(src + 2 * k), load(src + 2 * k + kLanes), even));
#endif
  for (; k < n; ++k) dst[k] = src[2 * k];
}

// 3x3 padding 1, stride 1 or 2, kOcPx pixels x kOcOb vectors of output channels (OcJob). The tap values are
// broadcast from the NCHW input where they are (a pixel's window is as easy to reach at stride 2 as at
// stride 1), the weights are vectors over output channels: no band copy or phase split of the input (12-30 %
// of these layers on the pixel-vector tiles) and no partial tiles at a band's end. Accumulators: kOcPx x
// kOcOb vectors; per input channel and tap, kOcOb weight loads and kOcPx broadcasts feed kOcPx x kOcOb FMAs.
// The price is the transposed store, small next to 9 x (input channels) FMAs a value.
#ifndef AITW_OC_PX
#define AITW_OC_PX (kVecBytes == 64 ? 10 : 6)
#endif
constexpr int kOcPx = AITW_OC_PX, kOcOb = 2, kOcCo = kOcOb * kLanes;

// The accumulators out: activation, transposed to the NCHW output (a row of kNP pixels per channel), the
// residual added.
template <int kNP, int kOB = kOcOb>
inline __attribute__((always_inline)) void oc_store(const aitw::kernel::conv_detail::OcJob& j,
                                                    V (&acc)[kOB][kNP]) {
#ifdef AITW_OC_TRANSPOSE
  // The ISA file defines oc_transpose (r[k] lane p <- r[p] lane k over kLanes vectors) and oc_put<kNP> (kNP
  // floats of a vector to a row, the residual's added). AVX-512 (conv_transpose16.hpp): 16 x 16, masked
  // stores. The generic path below goes through a stack array with a scalar store per value (320 a tile).
  // Alone, 2 threads, 3 rounds (generic -> this): 16 -> 32 stride 2 at 240 x 320 0.759 -> 0.628 ms, 16 -> 32
  // at 60 x 80 0.170 -> 0.138, 64 -> 64 at 60 x 80 0.99 -> 0.94; YOLO11n's stride-2 layers 4.36 -> 4.04 ms,
  // stride 1 5.52 -> 5.20; its forward 21.56 -> 20.64 ms. AVX2 (conv_avx2.cpp): 8 x 8, 4 + 2-float stores.
  if constexpr (kNP > 1 && kNP <= kLanes) {
#pragma GCC unroll 4
    for (int o = 0; o < kOB; ++o) {
      const int rows = j.rows - o * kLanes;
      if (rows <= 0) break;
      V r[kLanes];
#pragma GCC unroll 16
      for (int p = 0; p < kNP; ++p) r[p] = activate(acc[o][p], j.activation);
#pragma GCC unroll 16
      for (int p = kNP; p < kLanes; ++p) r[p] = V{};
      oc_transpose(r);
      float* out = j.out + o * kLanes * j.out_channel;
      const float* res = j.residual ? j.residual + o * kLanes * j.out_channel : nullptr;
      if (rows >= kLanes) {
#pragma GCC unroll 16
        for (int k = 0; k < kLanes; ++k)
          oc_put<kNP>(out + k * j.out_channel, res ? res + k * j.out_channel : nullptr, r[k]);
      } else {
        for (int k = 0; k < rows; ++k)
          oc_put<kNP>(out + k * j.out_channel, res ? res + k * j.out_channel : nullptr, r[k]);
      }
    }
    return;
  }
#endif
  float t[kOB * kLanes][kNP];
#pragma GCC unroll 4
  for (int o = 0; o < kOB; ++o)
#pragma GCC unroll 12
    for (int p = 0; p < kNP; ++p) {
      float v[kLanes];
      store(v, activate(acc[o][p], j.activation));
      for (int i = 0; i < kLanes; ++i) t[o * kLanes + i][p] = v[i];
    }
  for (int k = 0; k < j.rows; ++k) {
    float* o = j.out + k * j.out_channel;
    const float* r = j.residual ? j.residual + k * j.out_channel : nullptr;
#pragma GCC unroll 12
    for (int p = 0; p < kNP; ++p) o[p] = r ? t[k][p] + r[p] : t[k][p];
  }
}

// The multiply-add of the tiles over output channels: fp32 here (a tap value broadcast, a vector of weights);
// the bf16 file passes its own (a pixel's channel pair broadcast, weight pairs, vdpbf16ps).
struct OcFp32 {
  typedef V X;
  typedef V W;
  static constexpr bool kPairs = false;  // no OcJob::pairs_out (the bf16 file's M writes pairs)
  static inline __attribute__((always_inline)) X x(const float* p) {
#ifdef AITW_OC_BCAST_ASM
    X r;
    asm volatile("vbroadcastss %1, %0" : "=x"(r) : "m"(*p));
    return r;
#else
    return bcast(p);
#endif
  }
  static inline __attribute__((always_inline)) W w(const float* p) {
    return load(p);
  }
  static inline __attribute__((always_inline)) V mac(V acc, X x, W w) {
    return fma(w, x, acc);
  }
};

// The accumulators' start and, with a scale (bf16 int8-grid weights), sum * scale + bias.
template <int kOB, int kNP>
inline __attribute__((always_inline)) void oc_init(const aitw::kernel::conv_detail::OcJob& j,
                                                   V (&acc)[kOB][kNP]) {
#pragma GCC unroll 4
  for (int o = 0; o < kOB; ++o) {
    const V b = j.scale ? V{} : load(j.bias + o * kLanes);
#pragma GCC unroll 12
    for (int p = 0; p < kNP; ++p) acc[o][p] = b;
  }
}
template <int kOB, int kNP>
inline __attribute__((always_inline)) void oc_scale(const aitw::kernel::conv_detail::OcJob& j,
                                                    V (&acc)[kOB][kNP]) {
  if (!j.scale) return;
#pragma GCC unroll 4
  for (int o = 0; o < kOB; ++o) {
    const V sc = load(j.scale + o * kLanes), b = load(j.bias + o * kLanes);
#pragma GCC unroll 12
    for (int p = 0; p < kNP; ++p) acc[o][p] = fma(acc[o][p], sc, b);
  }
}

// kOB: vectors of output channels computed (kOcOb, or 1 for a last block of at most kLanes channels); the
// weights keep kOcCo channels per tap either way. M: the multiply-add (OcFp32, or the bf16 file's).
template <int kStride, bool kLeft, bool kRight, int kOB = kOcOb, class M = OcFp32>
void oc_tile(const aitw::kernel::conv_detail::OcJob& j) {
  V acc[kOB][kOcPx];
  oc_init(j, acc);
  const float* w = j.weights;
  for (int s = 0; s <= j.more; ++s) {
    const float* in = (s == 0 ? j.in : j.more_in[s - 1]) + j.offset;
    const int channels = s == 0 ? j.channels : j.more_channels[s - 1];
    for (int c = 0; c < channels; ++c, in += j.plane) {
#pragma GCC unroll 3
      for (int ky = 0; ky < 3; ++ky) {
        if (ky < j.ky0 || ky >= j.ky1) {
          w += 3 * kOcCo;
          continue;
        }
        const float* r = in + ky * j.w;
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; ++kx, w += kOcCo) {
          typename M::W wv[kOB];
#pragma GCC unroll 4
          for (int o = 0; o < kOB; ++o) wv[o] = M::w(w + o * kLanes);
#pragma GCC unroll 12
          for (int p = 0; p < kOcPx; ++p) {
            if (kLeft && p == 0 && kx == 0) continue;           // column -1: padding
            if (kRight && p == kOcPx - 1 && kx == 2) continue;  // column w: padding
            const typename M::X x = M::x(r + kStride * p + kx);
#pragma GCC unroll 4
            for (int o = 0; o < kOB; ++o) acc[o][p] = M::mac(acc[o][p], x, wv[o]);
          }
        }
      }
    }
  }
  oc_scale(j, acc);
  if constexpr (M::kPairs) {
    if (j.pairs_out) {
      M::template store_pairs<kOcPx, kOB>(j, acc);
      return;
    }
  }
  oc_store<kOcPx, kOB>(j, acc);
}

// One pixel anywhere (images narrower than a tile, the last column of an odd width at stride 2): every tap
// checked.
template <class M = OcFp32>
void oc_one(const aitw::kernel::conv_detail::OcJob& j) {
  V acc[kOcOb][1];
  oc_init(j, acc);
  const float* w = j.weights;
  for (int s = 0; s <= j.more; ++s) {
    const float* in = (s == 0 ? j.in : j.more_in[s - 1]) + j.offset;
    const int channels = s == 0 ? j.channels : j.more_channels[s - 1];
    for (int c = 0; c < channels; ++c, in += j.plane)
      for (int ky = 0; ky < 3; ++ky)
        for (int kx = 0; kx < 3; ++kx, w += kOcCo) {
          if (ky < j.ky0 || ky >= j.ky1 || j.ix0 + kx < 0 || j.ix0 + kx >= j.w) continue;
          const typename M::X x = M::x(in + ky * j.w + kx);
#pragma GCC unroll 4
          for (int o = 0; o < kOcOb; ++o) acc[o][0] = M::mac(acc[o][0], x, M::w(w + o * kLanes));
        }
  }
  oc_scale(j, acc);
  if constexpr (M::kPairs) {
    if (j.pairs_out) {
      M::template store_pairs<1, kOcOb>(j, acc);
      return;
    }
  }
  oc_store<1>(j, acc);
}

// The tiles over output channels of a KernelSet, with the multiply-add M.
template <class M>
void set_oc_tiles(aitw::kernel::conv_detail::KernelSet& k) {
  k.oc_tile[0][0] = &oc_tile<1, false, false, kOcOb, M>;
  k.oc_tile[0][1] = &oc_tile<1, true, false, kOcOb, M>;
  k.oc_tile[0][2] = &oc_tile<1, false, true, kOcOb, M>;
  k.oc_tile[0][3] = &oc_tile<1, true, true, kOcOb, M>;
  k.oc_tile[1][0] = &oc_tile<2, false, false, kOcOb, M>;
  k.oc_tile[1][1] = &oc_tile<2, true, false, kOcOb, M>;
  k.oc_tile[1][2] = &oc_tile<2, false, true, kOcOb, M>;
  k.oc_tile[1][3] = &oc_tile<2, true, true, kOcOb, M>;
  if constexpr (kOcOb > 1) {
    k.oc_half[0][0] = &oc_tile<1, false, false, 1, M>;
    k.oc_half[0][1] = &oc_tile<1, true, false, 1, M>;
    k.oc_half[0][2] = &oc_tile<1, false, true, 1, M>;
    k.oc_half[0][3] = &oc_tile<1, true, true, 1, M>;
    k.oc_half[1][0] = &oc_tile<2, false, false, 1, M>;
    k.oc_half[1][1] = &oc_tile<2, true, false, 1, M>;
    k.oc_half[1][2] = &oc_tile<2, false, true, 1, M>;
    k.oc_half[1][3] = &oc_tile<2, true, true, 1, M>;
  }
  k.oc_one = &oc_one<M>;
}

#include "conv_winograd_kernels.hpp"

aitw::kernel::conv_detail::KernelSet make_kernel_set(const char* name) {
  static_assert(kVectors >= 1 && kVectors <= 3);
  aitw::kernel::conv_detail::KernelSet k{name,
                                         kCoBlock,
                                         kTilePx,
                                         kLanes,
                                         {},
                                         {},
                                         {},
                                         &dw_tile,
                                         &dw3_rows,
                                         &dw3_flat,
                                         &stride2_copy,
                                         false,
                                         nullptr,
                                         {},
                                         nullptr,
                                         0,
                                         0,
                                         {},
                                         {&wino_in_t<4>, &wino_in_t<6>},
                                         {&wino_out_t<4>, &wino_out_t<6>},
                                         nullptr,
                                         &up_add,
                                         nullptr};
  set_oc_tiles<OcFp32>(k);
  k.oc_px = kOcPx;
  k.oc_co = kOcCo;
  k.tile_1[0] = &conv_tile<1, 1>;
  k.tile_9[0] = &conv_tile<9, 1>;
  k.tile_n[0] = &conv_tile<0, 1>;
  if constexpr (kVectors >= 2) {
    k.tile_1[1] = &conv_tile<1, 2>;
    k.tile_9[1] = &conv_tile<9, 2>;
    k.tile_n[1] = &conv_tile<0, 2>;
  }
  if constexpr (kVectors >= 3) {
    k.tile_1[2] = &conv_tile<1, 3>;
    k.tile_9[2] = &conv_tile<9, 3>;
    k.tile_n[2] = &conv_tile<0, 3>;
  }
  return k;
}
