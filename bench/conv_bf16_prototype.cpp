// aitw_conv_bf16_prototype: what a bf16 path (AVX512_BF16's vdpbf16ps: two input channels per
// multiply-add, fp32 accumulators) would give aitw's convolution, measured before building it (issue 15,
// item 5). One thread, on real layer shapes of YOLO11n at 480x640, against aitw's fp32 PackedConv in the
// same process, minimum of 20 x 5 calls:
//   ./build/bench/aitw_conv_bf16_prototype
// The prototype tile is the fp32 one with channel pairs: 8 output channels x 3 zmm of 16 pixels, per input
// channel pair and tap 3 loads of bf16 pairs, 8 broadcasts of a weight pair, 24 vdpbf16ps. Its input is
// converted first (fp32 NCHW -> zero-padded planes of bf16 channel pairs; the time is included and also
// shown alone). Not a product path: no tails for odd channel counts or output channels not a multiple of
// 8, no activation, outputs left in the padded-width layout; weights and activations rounded to bf16
// (round to nearest even), and the error against fp32 is printed.
#include <immintrin.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <opencv2/core.hpp>
#include <random>
#include <vector>
#include "aitw/kernel/conv.hpp"
using namespace aitw::kernel;
static inline uint16_t bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return u >> 16;
}
struct BfConv {
  int ci, co, k, h, w, wq, rows;
  std::vector<uint32_t> wpk;  // [blk][pair][tap][8]
  std::vector<float> bias;
  std::vector<uint32_t> planes;  // [pair][rows*wq + slack]
  BfConv(int ci_, int co_, int k_, int h_, int w_, const float* W, const float* B)
      : ci(ci_), co(co_), k(k_), h(h_), w(w_) {
    int p = k / 2;
    wq = w + 2 * p;
    rows = h + 2 * p;
    int taps = k * k, pairs = ci / 2, blks = co / 8;
    wpk.resize((size_t)blks * pairs * taps * 8);
    for (int o = 0; o < co; ++o)
      for (int pr = 0; pr < pairs; ++pr)
        for (int t = 0; t < taps; ++t) {
          uint32_t lo = bf(W[((size_t)o * ci + 2 * pr) * taps + t]),
                   hi = bf(W[((size_t)o * ci + 2 * pr + 1) * taps + t]);
          wpk[(((size_t)(o / 8) * pairs + pr) * taps + t) * 8 + o % 8] = lo | (hi << 16);
        }
    bias.assign(B, B + co);
    planes.assign((size_t)pairs * (rows * wq + 64), 0);
  }
  __attribute__((target("avx512f,avx512bw,avx512bf16"))) void convert(
      const float* in) {  // fp32 NCHW -> padded bf16 channel-pair planes
    int p = k / 2, pairs = ci / 2;
    alignas(64) static const uint16_t perm[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                  21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                  11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i pm = _mm512_load_si512(perm);
    for (int pr = 0; pr < pairs; ++pr) {
      uint32_t* pl = planes.data() + (size_t)pr * (rows * wq + 64);
      const float* a = in + (size_t)(2 * pr) * h * w;
      const float* b = a + (size_t)h * w;
      for (int y = 0; y < h; ++y) {
        uint32_t* row = pl + (size_t)(y + p) * wq + p;
        int x = 0;
        for (; x + 16 <= w; x += 16) {
          __m512i c =
              (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(b + y * w + x), _mm512_loadu_ps(a + y * w + x));
          _mm512_storeu_si512(row + x, _mm512_permutexvar_epi16(pm, c));
        }
        for (; x < w; ++x) row[x] = bf(a[y * w + x]) | ((uint32_t)bf(b[y * w + x]) << 16);
      }
    }
  }
  __attribute__((target("avx512f,avx512bf16"))) void compute(float* out /* [co][h][wq] flat */) {
    int taps = k * k, pairs = ci / 2, blks = co / 8;
    std::ptrdiff_t off[9];
    int n = 0;
    for (int ky = 0; ky < k; ++ky)
      for (int kx = 0; kx < k; ++kx) off[n++] = ky * wq + kx;
    const int flat = h * wq;
    const int T = 48;
    for (int t0 = 0; t0 < flat; t0 += T)
      for (int blk = 0; blk < blks; ++blk) {
        __m512 acc[8][3];
        for (int c = 0; c < 8; ++c)
          for (int v = 0; v < 3; ++v) acc[c][v] = _mm512_set1_ps(bias[blk * 8 + c]);
        const uint32_t* wp = wpk.data() + (size_t)blk * pairs * taps * 8;
        for (int pr = 0; pr < pairs; ++pr) {
          const uint32_t* pl = planes.data() + (size_t)pr * (rows * wq + 64) + t0;
          for (int t = 0; t < taps; ++t, wp += 8) {
            const uint32_t* s = pl + off[t];
            __m512bh x0 = (__m512bh)_mm512_loadu_si512(s), x1 = (__m512bh)_mm512_loadu_si512(s + 16),
                     x2 = (__m512bh)_mm512_loadu_si512(s + 32);
#pragma GCC unroll 8
            for (int c = 0; c < 8; ++c) {
              __m512bh wc = (__m512bh)_mm512_set1_epi32(wp[c]);
              acc[c][0] = _mm512_dpbf16_ps(acc[c][0], wc, x0);
              acc[c][1] = _mm512_dpbf16_ps(acc[c][1], wc, x1);
              acc[c][2] = _mm512_dpbf16_ps(acc[c][2], wc, x2);
            }
          }
        }
        for (int c = 0; c < 8; ++c)
          for (int v = 0; v < 3; ++v) {
            int px = t0 + v * 16;
            if (px + 16 <= flat)
              _mm512_storeu_ps(out + (size_t)(blk * 8 + c) * (flat + 64) + px, acc[c][v]);
            else
              _mm512_mask_storeu_ps(out + (size_t)(blk * 8 + c) * (flat + 64) + px,
                                    (__mmask16)((1u << (flat - px)) - 1), acc[c][v]);
          }
      }
  }
};
int main() {
  if (!__builtin_cpu_supports("avx512bf16")) {
    std::printf("aitw_conv_bf16_prototype: this CPU has no AVX512_BF16\n");
    return 0;
  }
  cv::setNumThreads(1);
  struct C {
    int ci, co, k, h, w;
  } cs[] = {{64, 64, 3, 60, 80},  {128, 64, 3, 30, 40}, {64, 64, 3, 15, 20},
            {256, 64, 1, 60, 80}, {64, 64, 1, 60, 80},  {384, 256, 1, 15, 20}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto c : cs) {
    ConvShape s;
    s.in_channels = c.ci;
    s.out_channels = c.co;
    s.kernel_h = s.kernel_w = c.k;
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = c.k / 2;
    std::vector<float> W((size_t)c.co * c.ci * c.k * c.k), B(c.co), in((size_t)c.ci * c.h * c.w),
        out((size_t)c.co * c.h * c.w);
    for (auto& x : W) x = d(rng) / std::sqrt((float)c.ci * c.k * c.k);
    for (auto& x : B) x = d(rng);
    for (auto& x : in) x = d(rng);
    PackedConv pc(s, W.data(), B.data());
    std::vector<float> ws(pc.workspace_floats(c.h, c.w));
    BfConv bc(c.ci, c.co, c.k, c.h, c.w, W.data(), B.data());
    std::vector<float> bout((size_t)c.co * (c.h * bc.wq + 64));
    double t32 = 1e9, tb = 1e9, tcv = 1e9;
    for (int r = 0; r < 20; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i)
        pc.forward(in.data(), 1, c.h, c.w, 0, out.data(), 0, ConvActivation::None, ws.data(), ws.size());
      auto t1 = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) {
        bc.convert(in.data());
        bc.compute(bout.data());
      }
      auto t2 = std::chrono::steady_clock::now();
      for (int i = 0; i < 5; ++i) bc.convert(in.data());
      auto t3 = std::chrono::steady_clock::now();
      t32 = std::min(t32, std::chrono::duration<double, std::milli>(t1 - t0).count() / 5);
      tb = std::min(tb, std::chrono::duration<double, std::milli>(t2 - t1).count() / 5);
      tcv = std::min(tcv, std::chrono::duration<double, std::milli>(t3 - t2).count() / 5);
    }
    double err = 0, mx = 0;
    for (int o = 0; o < c.co; ++o)
      for (int y = 0; y < c.h; ++y)
        for (int x = 0; x < c.w; ++x) {
          double a = out[((size_t)o * c.h + y) * c.w + x],
                 b = bout[(size_t)o * (c.h * bc.wq + 64) + y * bc.wq + x];
          err = std::max(err, std::fabs(a - b));
          mx = std::max(mx, std::fabs(a));
        }
    double fl = 2.0 * c.co * c.ci * c.k * c.k * c.h * c.w;
    printf(
        "%dx%d %3d->%3d %2dx%2d: fp32 %.3f ms (%.0f GF/s) | bf16 %.3f ms (convert %.3f) (%.0f GF/s) x%.2f | "
        "max err %.1e of %.1f\n",
        c.k, c.k, c.ci, c.co, c.h, c.w, t32, fl / t32 / 1e6, tb, tcv, fl / tb / 1e6, t32 / tb, err, mx);
  }
}
