// The convolution micro-kernels, written once over GCC vector types and instantiated by each ISA file
// (conv_avx512.cpp, conv_avx2.cpp, conv_portable.cpp) after it has switched the target ISA on. Included
// there inside an anonymous namespace on purpose: every ISA gets its own internal-linkage copy, so the
// linker can never hand an AVX-512 instantiation to a baseline caller. No #include here for the same reason.
//
// The ISA file defines, before including: kVecBytes, kCoBlock, kVectors (tile = kCoBlock output channels x
// kVectors vectors of pixels, all accumulators in registers), `V fma(V a, V b, V c)` (a * b + c) and
// `V bcast(const float* p)` (*p in every lane, one broadcast load where the ISA has it), and includes
// aitw/kernel/exp_poly.hpp after switching its ISA on.

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

// kernel/fast_math.hpp's SiLU on the same polynomial (exp_poly.hpp), lane by lane the same operations in
// the same order (no contraction into FMAs), so the fused epilogue gives what the AitwSiLU layer gives.
inline __attribute__((always_inline)) V silu(V x) {
  V n;
  const V y = aitw::kernel::exp_detail::exp_reduced(-x, n);
  IV bits = reinterpret_cast<IV>(y) + (__builtin_convertvector(n, IV) << 23);
  return x / (1.f + reinterpret_cast<V>(bits));
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
  if (j.residual) {
#pragma GCC unroll 16
    for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) {
        const std::ptrdiff_t o = c * j.out_channel + v * kLanes;
        store(j.out + o, activate(acc[c][v], j.activation) + load(j.residual + o));
      }
    return;
  }
#pragma GCC unroll 16
  for (int c = 0; c < kCoBlock; ++c)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v)
      store(j.out + c * j.out_channel + v * kLanes, activate(acc[c][v], j.activation));
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

aitw::kernel::conv_detail::KernelSet make_kernel_set(const char* name) {
  static_assert(kVectors >= 1 && kVectors <= 3);
  aitw::kernel::conv_detail::KernelSet k{name, kCoBlock, kTilePx,       kLanes, {},     {},
                                         {},   &dw_tile, &stride2_copy, false,  nullptr};
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
