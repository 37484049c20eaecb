// aitw_conv_blocked_prototype: what a channel-blocked activation layout (issue 15, item 2) would give aitw's
// 1x1 layers, the largest kind (45 of YOLO11n's 87 convolutions, ~11 ms of ~26 at 2 threads), measured
// before building it. On NCHW a 1x1 tile reads one stream per input channel and writes one per output
// channel (48-80 of each on the high-resolution layers); on NCHWc16 (activations [channel / 16][pixel][16],
// what ONNX Runtime's NCHWc transformer and oneDNN's blocked formats keep between layers) it reads
// ci / 16 streams and writes co / 16. The blocked kernel here is the MLAS / oneDNN way: up to 4 output blocks
// (64 channels; 5 x 4 pixels for 80) as vectors x up to 6 pixels broadcast (24 zmm accumulators), weights
// packed [group][in channel][blocks][16], bias + SiLU fused in the store loop like aitw's. Against aitw's
// PackedConv (fp32, AVX-512, SiLU fused) on the same shapes, same thread count, the calls interleaved, median
// of 9 rounds of 5. Also printed: one NCHW -> NCHWc16 -> NCHW round trip of the layer's input and output
// (what the layer would cost where it borders an NCHW layer). Not a product path: AVX-512 only, channel
// counts multiples of 16.
//   ./build/bench/aitw_conv_blocked_prototype [threads] [huge]
// (`huge`: every buffer on 2 MB pages, for the TLB question.)
//
// Measured (Zen 4 VM, 2026-12-03): against the product as it was (tiles across rows went through a copy)
// blocked took 0.905-0.952 of NCHW's time over the 45 layers at 2 threads (0.883 at one), 0.76-0.86 on the
// 120 x 160 and 60 x 80 layers with 32-96 input channels; on 2 MB pages the same (0.941-0.952: not the
// TLB). With those tiles written in place (conv.cpp, run_tile) NCHW took 10.19-11.14 ms and blocked
// 0.962-0.981 of it at 2 threads (0.942 at one), while one NCHW <-> NCHWc16 round trip per layer cost
// 5.0-5.3 ms. So the layout buys at most ~0.2-0.4 ms on these layers, and only where no layer between two
// convolutions needs NCHW: not worth the rewrite of every kernel and layer it would take (bench/RESULTS.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <sys/mman.h>

#include <opencv2/core.hpp>

#include "aitw/kernel/conv.hpp"

using namespace aitw::kernel;

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AITW_BLK_AVX512 __attribute__((target("avx512f,avx512dq,fma")))
typedef float V16 __attribute__((vector_size(64)));
typedef float V16U __attribute__((vector_size(64), aligned(4), may_alias));
#include <immintrin.h>

AITW_BLK_AVX512 inline V16 ld(const float* p) {
  return *reinterpret_cast<const V16U*>(p);
}
AITW_BLK_AVX512 inline void st(float* p, V16 v) {
  *reinterpret_cast<V16U*>(p) = v;
}
// The product's AVX-512 SiLU (conv_microkernel.hpp, AITW_SILU_SCALEF), so that both sides pay the same.
AITW_BLK_AVX512 inline V16 silu(V16 x) {
  V16 t = x * -1.44269504088896341f;
  t = t > -126.f ? t : V16{} - 126.f;
  t = t < 126.f ? t : V16{} + 126.f;
  const V16 n = reinterpret_cast<V16>(_mm512_maskz_roundscale_ps(
      0xffff, reinterpret_cast<__m512>(t), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const V16 f = t - n;
  V16 p = V16{} + 1.327635505e-3f;
  p = p * f + 9.675540396e-3f;
  p = p * f + 5.550713635e-2f;
  p = p * f + 2.402211975e-1f;
  p = p * f + 6.931469668e-1f;
  p = p * f + 1.000000072f;
  const V16 e = reinterpret_cast<V16>(
      _mm512_maskz_scalef_ps(0xffff, reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(n)));
  return x / (1.f + e);
}

// kNO output blocks x kNP pixels from pixel p0: out[ob][p][16] = SiLU(bias + sum_c w[c][ob] in[c / 16][p][c %
// 16]).
template <int kNO, int kNP>
AITW_BLK_AVX512 void tile(const float* in, std::ptrdiff_t hw, int ci, const float* w, const float* bias,
                          float* out, std::ptrdiff_t p0, int np) {
  V16 acc[kNO][kNP];
#pragma GCC unroll 8
  for (int o = 0; o < kNO; ++o) {
    const V16 b = ld(bias + 16 * o);
#pragma GCC unroll 24
    for (int p = 0; p < kNP; ++p) acc[o][p] = b;
  }
  for (int cb = 0; cb < ci / 16; ++cb) {
    const float* x = in + (cb * hw + p0) * 16;
#pragma GCC unroll 4
    for (int k = 0; k < 16; ++k, w += 16 * kNO) {
      V16 wv[kNO];
#pragma GCC unroll 8
      for (int o = 0; o < kNO; ++o) wv[o] = ld(w + 16 * o);
#pragma GCC unroll 24
      for (int p = 0; p < kNP; ++p) {
        const V16 xv = V16{} + x[p * 16 + k];
#pragma GCC unroll 8
        for (int o = 0; o < kNO; ++o) acc[o][p] = wv[o] * xv + acc[o][p];
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < kNO; ++o)
#pragma GCC unroll 24
    for (int p = 0; p < kNP; ++p)
      if (p < np) st(out + (o * hw + p0 + p) * 16, silu(acc[o][p]));
}

struct Blocked {
  int ci, co;
  std::vector<float> w, bias;  // w: [group of 4 blocks][ci][blocks in the group][16]
  Blocked(int ci_, int co_, const float* W, const float* B)
      : ci(ci_), co(co_), w(static_cast<std::size_t>(co) * ci), bias(B, B + co) {
    std::size_t at = 0;
    for (int g0 = 0; g0 < co; g0 += group(g0)) {
      const int nb = group(g0);
      for (int c = 0; c < ci; ++c)
        for (int o = 0; o < nb; ++o) w[at++] = W[static_cast<std::size_t>(g0 + o) * ci + c];
    }
  }
  // Output channels per register tile from channel g0: 64, or 80 where exactly five blocks are left.
  int group(int g0) const { return co - g0 == 80 ? 80 : std::min(64, co - g0); }
  template <int kNO, int kNP>
  AITW_BLK_AVX512 void run_group(const float* in, std::ptrdiff_t hw, int g0, float* out, std::ptrdiff_t p0,
                                 std::ptrdiff_t p1) const {
    const float* wg = w.data() + static_cast<std::size_t>(g0) * ci;
    for (std::ptrdiff_t p = p0; p < p1; p += kNP)
      tile<kNO, kNP>(in, hw, ci, wg, bias.data() + g0, out + g0 * hw, p,
                     static_cast<int>(std::min<std::ptrdiff_t>(kNP, p1 - p)));
  }
  AITW_BLK_AVX512 void forward(const float* in, int hw, float* out) const {
    // Units of pixel ranges (multiples of 24), every output group per range (the range's input stays in
    // L1/L2).
    const std::ptrdiff_t chunk = 96, units = (hw + chunk - 1) / chunk;
    cv::parallel_for_(cv::Range(0, static_cast<int>(units)), [&](const cv::Range& r) {
      for (int u = r.start; u < r.end; ++u) {
        const std::ptrdiff_t p0 = u * chunk, p1 = std::min<std::ptrdiff_t>(hw, p0 + chunk);
        for (int g0 = 0; g0 < co; g0 += group(g0)) {
          switch (group(g0) / 16) {
            case 5:
              run_group<5, 4>(in, hw, g0, out, p0, p1);
              break;
            case 4:
              run_group<4, 6>(in, hw, g0, out, p0, p1);
              break;
            case 3:
              run_group<3, 8>(in, hw, g0, out, p0, p1);
              break;
            case 2:
              run_group<2, 12>(in, hw, g0, out, p0, p1);
              break;
            default:
              run_group<1, 12>(in, hw, g0, out, p0, p1);
              break;
          }
        }
      }
    });
  }
};

// NCHW <-> NCHWc16, in parallel over blocks.
void to_blocked(const float* src, int c, int hw, float* dst) {
  cv::parallel_for_(cv::Range(0, c / 16), [&](const cv::Range& r) {
    for (int b = r.start; b < r.end; ++b)
      for (int p = 0; p < hw; ++p)
        for (int k = 0; k < 16; ++k)
          dst[(static_cast<std::ptrdiff_t>(b) * hw + p) * 16 + k] =
              src[static_cast<std::ptrdiff_t>(b * 16 + k) * hw + p];
  });
}
void to_nchw(const float* src, int c, int hw, float* dst) {
  cv::parallel_for_(cv::Range(0, c / 16), [&](const cv::Range& r) {
    for (int b = r.start; b < r.end; ++b)
      for (int k = 0; k < 16; ++k)
        for (int p = 0; p < hw; ++p)
          dst[static_cast<std::ptrdiff_t>(b * 16 + k) * hw + p] =
              src[(static_cast<std::ptrdiff_t>(b) * hw + p) * 16 + k];
  });
}

// Buffers on 2 MB pages (madvise) or 4 KB pages, for the TLB question.
struct Buf {
  float* p = nullptr;
  std::size_t n = 0;
  Buf(std::size_t n_, bool huge) : n(n_) {
    const std::size_t bytes = (n * sizeof(float) + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    p = static_cast<float*>(std::aligned_alloc(2u << 20, bytes));
    if (huge) madvise(p, bytes, MADV_HUGEPAGE);
    std::fill(p, p + n, 0.f);
  }
  ~Buf() { std::free(p); }
  float* data() { return p; }
  std::size_t size() const { return n; }
};

template <class F>
double median_ms(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
template <class F>
double time5(F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5;
}
#endif

}  // namespace

int main(int argc, char** argv) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512dq")) {
    std::printf("aitw_conv_blocked_prototype: this CPU has no AVX-512; nothing to measure\n");
    return 0;
  }
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const bool huge = argc > 2 && std::string(argv[2]) == "huge";
  cv::setNumThreads(threads);
  // YOLO11n's 1x1 layer shapes at 480x640 (input channels, output channels, h, w), in graph order.
  const int shapes[][4] = {
      {32, 32, 120, 160}, {48, 64, 120, 160}, {64, 64, 60, 80},   {96, 128, 60, 80},  {128, 128, 30, 40},
      {64, 32, 30, 40},   {64, 32, 30, 40},   {64, 64, 30, 40},   {192, 128, 30, 40}, {256, 256, 15, 20},
      {128, 64, 15, 20},  {128, 64, 15, 20},  {128, 128, 15, 20}, {384, 256, 15, 20}, {256, 128, 15, 20},
      {512, 256, 15, 20}, {256, 256, 15, 20}, {128, 256, 15, 20}, {128, 128, 15, 20}, {128, 256, 15, 20},
      {256, 128, 15, 20}, {256, 256, 15, 20}, {384, 128, 30, 40}, {192, 128, 30, 40}, {256, 64, 60, 80},
      {96, 64, 60, 80},   {64, 80, 60, 80},   {192, 128, 30, 40}, {64, 64, 60, 80},   {80, 80, 60, 80},
      {80, 80, 60, 80},   {192, 128, 30, 40}, {128, 80, 30, 40},  {384, 256, 15, 20}, {64, 64, 30, 40},
      {128, 64, 15, 20},  {128, 64, 15, 20},  {80, 80, 30, 40},   {80, 80, 30, 40},   {128, 128, 15, 20},
      {384, 256, 15, 20}, {256, 80, 15, 20},  {64, 64, 15, 20},   {80, 80, 15, 20},   {80, 80, 15, 20}};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::printf("%s pages; ", huge ? "2 MB" : "4 KB");
  std::printf(
      "%d thread(s), median of 9 rounds x 5 calls, interleaved; aitw = PackedConv fp32 NCHW, SiLU fused\n",
      threads);
  std::printf("%10s %9s %8s %9s %9s %7s %9s %9s\n", "ci->co", "hxw", "MFLOP", "NCHW ms", "blk ms", "ratio",
              "reorder", "max diff");
  double sum_a = 0, sum_b = 0, sum_r = 0;
  for (const auto& s : shapes) {
    const int ci = s[0], co = s[1], h = s[2], w = s[3], hw = h * w;
    std::vector<float> W(static_cast<std::size_t>(co) * ci), B(co);
    Buf in(static_cast<std::size_t>(ci) * hw, huge);
    const float ws = 1.f / std::sqrt(static_cast<float>(ci));
    for (auto& x : W) x = dist(rng) * ws;
    for (auto& x : B) x = dist(rng) * 0.5f;
    for (std::size_t i = 0; i < in.size(); ++i) in.data()[i] = dist(rng);
    ConvShape cs;
    cs.in_channels = ci;
    cs.out_channels = co;
    PackedConv pc(cs, W.data(), B.data(), ConvIsa::Avx512);
    std::vector<float> wsb(pc.workspace_floats(h, w) + 1);
    Buf ref(static_cast<std::size_t>(co) * hw, huge), bin(in.size(), huge), bout(ref.size(), huge),
        back(ref.size(), huge), tmp(std::max(in.size(), ref.size()), huge);
    Blocked bk(ci, co, W.data(), B.data());
    to_blocked(in.data(), ci, hw, bin.data());
    const auto run_a = [&] {
      pc.forward(in.data(), 1, h, w, 0, ref.data(), 0, ConvActivation::SiLU, wsb.data(), wsb.size());
    };
    const auto run_b = [&] { bk.forward(bin.data(), hw, bout.data()); };
    const auto run_r = [&] {  // the input in, the output out: what one NCHW border costs the layer
      to_blocked(in.data(), ci, hw, tmp.data());
      to_nchw(bout.data(), co, hw, back.data());
    };
    run_a();
    run_b();
    run_r();
    std::vector<double> ta, tb, tr;
    for (int r = 0; r < 9; ++r) {
      ta.push_back(time5(run_a));
      tb.push_back(time5(run_b));
      tr.push_back(time5(run_r));
    }
    const double a = median_ms<int>(ta), b = median_ms<int>(tb), rr = median_ms<int>(tr);
    to_nchw(bout.data(), co, hw, back.data());
    double diff = 0;
    for (std::size_t i = 0; i < ref.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(ref.data()[i] - back.data()[i])));
    std::printf("%5d->%-4d %4dx%-4d %8.1f %9.3f %9.3f %7.2f %9.3f %9.1e\n", ci, co, h, w,
                2.0 * ci * co * hw / 1e6, a, b, b / a, rr, diff);
    sum_a += a;
    sum_b += b;
    sum_r += rr;
  }
  std::printf("sum of %zu layers: NCHW %.3f ms, blocked %.3f ms (ratio %.3f), reorders in+out %.3f ms\n",
              sizeof(shapes) / sizeof(shapes[0]), sum_a, sum_b, sum_b / sum_a, sum_r);
  return 0;
#else
  std::printf("aitw_conv_blocked_prototype: x86-64 GCC builds only\n");
  return 0;
#endif
}
