// aitw_conv_winograd_prototype: what Winograd would give aitw's 3x3 stride-1 layers, measured before building
// it (issue 15, items 4 and 6). aitw's fp32 3x3 tiles over output channels already run at ~97 % of the FMA
// peak, so only fewer multiplies take these layers further. F(2x2, 3x3) computes a 2 x 2 output tile from a
// 4 x 4 input tile with 16 multiplies per (input, output) channel pair instead of 36; F(4x4, 3x3) a 4 x 4
// tile from 6 x 6 with 36 instead of 144, and 2.25 transformed values per output instead of 4. One thread,
// real YOLO11n shapes at 480x640, against aitw's PackedConv (fp32, no activation) in the same process,
// minimum of 7 rounds of 5 calls:
//   ./build/bench/aitw_conv_winograd_prototype
// Both work per band of tile rows (so that the transformed input stays in L2): the input transform along
// the padded rows (column transform, then the row transform on the columns' phases by shuffles), the GEMMs
// M[xi] = U[xi] V[xi] on the fp32 tile of the 1x1 layers (8 output channels x 3 zmm of tiles; the transformed
// weights U packed at load), the output transform over vectors of 16 tiles, and interleaved stores into NCHW.
// Not a product path: no activation, residual or concat inputs, one thread, AVX-512 only. Printed: the max
// abs difference against PackedConv and each phase's mean time per call.
//
// Measured (Zen 4 VM, 2026-12-03, two runs): F(4x4, 3x3) 1.42-1.50x over the twelve shapes (64->64 at 60x80
// 3.17 -> 1.56-1.80 ms, 128->64 at 30x40 1.55 -> 0.92-0.95, 64->64 at 30x40 1.73-1.77x; 0.79-0.89x at 15x20,
// where 20 tiles fill half a GEMM block), max difference 5e-6 to 1.3e-5; F(2x2, 3x3) 1.09-1.11x (1.16-1.32x
// on the 64-channel layers, slower on the small ones: its transforms cost as much as the multiplies saved).
// F(4x4, 3x3) is now in the product (PackedConv::winograd, conv_winograd_kernels.hpp); this stays as the
// measurement that chose it, and for comparing F(2x2, 3x3).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "aitw/kernel/conv.hpp"

using namespace aitw::kernel;

namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define AITW_WINO_AVX512 __attribute__((target("avx512f,fma")))
typedef float V16 __attribute__((vector_size(64)));
typedef float V16U __attribute__((vector_size(64), aligned(4), may_alias));

// m[xi][co][t] = sum over c of u[xi][co][c] v[xi][c][t] for the nxi transformed positions, tiles [0, nt)
// rounded up to 48 (row stride tb): the fp32 tile of the 1x1 layers, 8 output channels x 3 zmm of tiles.
AITW_WINO_AVX512 void wino_gemm(int nxi, int ci, int co, int tb, const float* u, const float* v, float* m,
                                int nt) {
  const int blocks = (nt + 47) / 48;
  for (int xi = 0; xi < nxi; ++xi)
    for (int cb = 0; cb < co / 8; ++cb)
      for (int b = 0; b < blocks; ++b) {
        V16 acc[8][3];
        for (int k = 0; k < 8; ++k)
          for (int q = 0; q < 3; ++q) acc[k][q] = V16{};
        const float* wv = u + (static_cast<std::size_t>(xi) * (co / 8) + cb) * ci * 8;
        const float* x = v + static_cast<std::size_t>(xi) * ci * tb + b * 48;
        for (int c = 0; c < ci; ++c, wv += 8, x += tb) {
          V16 xs[3];
          for (int q = 0; q < 3; ++q) xs[q] = *reinterpret_cast<const V16U*>(x + 16 * q);
#pragma GCC unroll 8
          for (int k = 0; k < 8; ++k) {
            const V16 wk = V16{} + wv[k];
            for (int q = 0; q < 3; ++q) acc[k][q] += wk * xs[q];
          }
        }
        float* out = m + (static_cast<std::size_t>(xi) * co + cb * 8) * tb + b * 48;
        for (int k = 0; k < 8; ++k)
          for (int q = 0; q < 3; ++q) *reinterpret_cast<V16U*>(out + k * tb + 16 * q) = acc[k][q];
      }
}

// Band by band: input transform, GEMMs, output transform, each phase's time added to the variant's totals.
template <class W>
void wino_forward(W& wi, const float* in, float* out) {
  using clk = std::chrono::steady_clock;
  for (int ty0 = 0; ty0 < wi.th; ty0 += wi.band_rows) {
    const int ty1 = std::min(wi.th, ty0 + wi.band_rows);
    const auto t0 = clk::now();
    wi.input_transform(in, ty0, ty1);
    const auto t1 = clk::now();
    wi.gemm((ty1 - ty0) * wi.tw);
    const auto t2 = clk::now();
    wi.output_transform(out, ty0, ty1);
    const auto t3 = clk::now();
    wi.t_in += std::chrono::duration<double, std::milli>(t1 - t0).count();
    wi.t_gemm += std::chrono::duration<double, std::milli>(t2 - t1).count();
    wi.t_out += std::chrono::duration<double, std::milli>(t3 - t2).count();
  }
}

struct Wino {
  int ci, co, h, w, th, tw;  // tiles: th x tw of 2 x 2 outputs
  int band_rows, tb;         // tile rows per band; floats per (xi, channel) row of v and m
  std::vector<float> u;      // [xi][co / 8][ci][8]
  std::vector<float> bias;
  std::vector<float> v;  // [xi][ci][tb]
  std::vector<float> m;  // [xi][co][tb]
  std::vector<float> rows;
  std::vector<float> band;  // the band's padded input rows and 4 transformed rows

  Wino(int ci_, int co_, int h_, int w_, const float* W, const float* B) : ci(ci_), co(co_), h(h_), w(w_) {
    th = (h + 1) / 2;
    tw = (w + 1) / 2;
    // Bands of tile rows: about 96-192 tiles each (v and m of a 64-channel layer: ~0.4-0.8 MB).
    band_rows = std::max(1, 144 / tw);
    tb = (band_rows * tw + 47) / 48 * 48 + 16;  // a stride: the GEMM runs whole blocks of 48, a row transform
    // writes up to 15 past the band's last tile
    // U = G g G^T per (output, input) channel, G = [[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]].
    u.assign(static_cast<std::size_t>(16) * co * ci, 0.f);
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c) {
        const float* g = W + (static_cast<std::size_t>(o) * ci + c) * 9;
        float t[4][3];
        for (int j = 0; j < 3; ++j) {
          t[0][j] = g[j];
          t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
          t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
          t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; ++i) {
          const float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                              0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
          for (int j = 0; j < 4; ++j)
            u[((static_cast<std::size_t>(i * 4 + j) * (co / 8) + o / 8) * ci + c) * 8 + o % 8] = r[j];
        }
      }
    bias.assign(B, B + co);
    v.assign(static_cast<std::size_t>(16) * ci * tb + 16, 0.f);  // a row's last vector may run 15 past
    m.assign(static_cast<std::size_t>(16) * co * tb, 0.f);
    rows.assign(std::max<std::size_t>(static_cast<std::size_t>(4) * (2 * tw + 2 + 16) + 4 * (tw + 16) * 2,
                                      static_cast<std::size_t>(4) * tb),
                0.f);
  }

  // Tiles [ty0, ty1) of every channel into v[xi][c][0..]: B^T d B with B^T = [[1, 0, -1, 0], [0, 1, 1, 0],
  // [0, -1, 1, 0], [0, 1, 0, -1]]. The band's input rows are copied once, zero-padded; the column transform
  // runs along each padded row, the row transform on 16 tiles at a time (even and odd columns by shuffles).
  AITW_WINO_AVX512 void input_transform(const float* in, int ty0, int ty1) {
    const int wp = (2 * tw + 2 + 47) / 16 * 16 + 16;  // padded row, whole vectors and one more
    const int nrows = 2 * (ty1 - ty0) + 2;
    if (band.size() < static_cast<std::size_t>(nrows + 4) * wp)
      band.assign(static_cast<std::size_t>(nrows + 4) * wp, 0.f);
    float* tr = band.data() + static_cast<std::size_t>(nrows) * wp;  // 4 transformed rows
    for (int c = 0; c < ci; ++c) {
      const float* plane = in + static_cast<std::size_t>(c) * h * w;
      for (int k = 0; k < nrows; ++k) {
        const int y = 2 * ty0 - 1 + k;
        float* r = band.data() + static_cast<std::size_t>(k) * wp;
        r[0] = 0.f;
        if (y >= 0 && y < h) {
          std::copy(plane + static_cast<std::size_t>(y) * w, plane + static_cast<std::size_t>(y) * w + w,
                    r + 1);
          std::fill(r + 1 + w, r + wp, 0.f);
        } else {
          std::fill(r, r + wp, 0.f);
        }
      }
      for (int ty = ty0; ty < ty1; ++ty) {
        const float* __restrict r0 = band.data() + static_cast<std::size_t>(2 * (ty - ty0)) * wp;
        const float* __restrict r1 = r0 + wp;
        const float* __restrict r2 = r1 + wp;
        const float* __restrict r3 = r2 + wp;
        float* __restrict t0 = tr;
        float* __restrict t1 = tr + wp;
        float* __restrict t2 = tr + 2 * wp;
        float* __restrict t3 = tr + 3 * wp;
        for (int x = 0; x < wp; x += 16) {
          const V16 a0 = *reinterpret_cast<const V16U*>(r0 + x), a1 = *reinterpret_cast<const V16U*>(r1 + x),
                    a2 = *reinterpret_cast<const V16U*>(r2 + x), a3 = *reinterpret_cast<const V16U*>(r3 + x);
          *reinterpret_cast<V16U*>(t0 + x) = a0 - a2;
          *reinterpret_cast<V16U*>(t1 + x) = a1 + a2;
          *reinterpret_cast<V16U*>(t2 + x) = a2 - a1;
          *reinterpret_cast<V16U*>(t3 + x) = a1 - a3;
        }
        const std::size_t at = static_cast<std::size_t>(ty - ty0) * tw;
        for (int i = 0; i < 4; ++i) {
          const float* t = tr + i * wp;
          float* d0 = v.data() + (static_cast<std::size_t>(i * 4 + 0) * ci + c) * tb + at;
          float* d1 = v.data() + (static_cast<std::size_t>(i * 4 + 1) * ci + c) * tb + at;
          float* d2 = v.data() + (static_cast<std::size_t>(i * 4 + 2) * ci + c) * tb + at;
          float* d3 = v.data() + (static_cast<std::size_t>(i * 4 + 3) * ci + c) * tb + at;
          for (int x = 0; x < tw; x += 16) {  // may run past tw: the band's next tiles are written after
            const V16 lo = *reinterpret_cast<const V16U*>(t + 2 * x),
                      hi = *reinterpret_cast<const V16U*>(t + 2 * x + 16);
            const V16 lo2 = *reinterpret_cast<const V16U*>(t + 2 * x + 2),
                      hi2 = *reinterpret_cast<const V16U*>(t + 2 * x + 18);
            const V16 e =
                __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const V16 o =
                __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            const V16 e1 =
                __builtin_shufflevector(lo2, hi2, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const V16 o1 =
                __builtin_shufflevector(lo2, hi2, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            *reinterpret_cast<V16U*>(d0 + x) = e - e1;
            *reinterpret_cast<V16U*>(d1 + x) = o + e1;
            *reinterpret_cast<V16U*>(d2 + x) = e1 - o;
            *reinterpret_cast<V16U*>(d3 + x) = o - o1;
          }
        }
      }
    }
  }

  AITW_WINO_AVX512 void gemm(int nt) { wino_gemm(16, ci, co, tb, u.data(), v.data(), m.data(), nt); }

  // Y = A^T M A + bias, A^T = [[1, 1, 1, 0], [0, 1, -1, -1]] (vectors of 16 tiles), then each tile row's two
  // output rows interleaved into NCHW.
  AITW_WINO_AVX512 void output_transform(float* out, int ty0, int ty1) {
    const int nt = (ty1 - ty0) * tw;
    float* y = rows.data();  // 4 x tb
    if (rows.size() < static_cast<std::size_t>(4) * tb) rows.resize(static_cast<std::size_t>(4) * tb);
    y = rows.data();
    for (int o = 0; o < co; ++o) {
      const float* mo = m.data() + static_cast<std::size_t>(o) * tb;
      const std::size_t xs = static_cast<std::size_t>(co) * tb;  // between xi
      const V16 b = V16{} + bias[o];
      for (int t = 0; t < nt; t += 16) {
        V16 mm[16];
        for (int xi = 0; xi < 16; ++xi) mm[xi] = *reinterpret_cast<const V16U*>(mo + xi * xs + t);
        V16 s[4], d[4];
        for (int j = 0; j < 4; ++j) {
          s[j] = mm[j] + mm[4 + j] + mm[8 + j];
          d[j] = mm[4 + j] - mm[8 + j] - mm[12 + j];
        }
        *reinterpret_cast<V16U*>(y + t) = s[0] + s[1] + s[2] + b;
        *reinterpret_cast<V16U*>(y + tb + t) = s[1] - s[2] - s[3] + b;
        *reinterpret_cast<V16U*>(y + 2 * tb + t) = d[0] + d[1] + d[2] + b;
        *reinterpret_cast<V16U*>(y + 3 * tb + t) = d[1] - d[2] - d[3] + b;
      }
      float* plane = out + static_cast<std::size_t>(o) * h * w;
      const int full = w / 2;  // tiles with both columns inside
      for (int ty = ty0; ty < ty1; ++ty) {
        const int t0 = (ty - ty0) * tw;
        for (int a = 0; a < 2 && 2 * ty + a < h; ++a) {
          float* __restrict row = plane + static_cast<std::size_t>(2 * ty + a) * w;
          const float* __restrict y0 = y + (2 * a) * tb + t0;
          const float* __restrict y1 = y + (2 * a + 1) * tb + t0;
          for (int tx = 0; tx < full; ++tx) {
            row[2 * tx] = y0[tx];
            row[2 * tx + 1] = y1[tx];
          }
          if (w % 2) row[w - 1] = y0[full];
        }
      }
    }
  }

  double t_in = 0, t_gemm = 0, t_out = 0;
  void forward(const float* in, float* out) { wino_forward(*this, in, out); }
};

// F(4x4, 3x3): 6 x 6 input tiles at a stride of 4, 36 GEMMs, 4 x 4 outputs a tile. B^T rows (points 0, +-1,
// +-2, inf): [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
// [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]; G: [1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
// [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]; A^T: [1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0],
// [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1].
template <class T>
inline __attribute__((always_inline)) void bt6(const T (&u)[6], T (&d)[6]) {
  d[0] = 4.f * u[0] - 5.f * u[2] + u[4];
  d[1] = -4.f * (u[1] + u[2]) + u[3] + u[4];
  d[2] = 4.f * (u[1] - u[2]) - u[3] + u[4];
  d[3] = 2.f * (u[3] - u[1]) - u[2] + u[4];
  d[4] = 2.f * (u[1] - u[3]) - u[2] + u[4];
  d[5] = 4.f * u[1] - 5.f * u[3] + u[5];
}
template <class T>
inline __attribute__((always_inline)) void at6(const T (&m)[6], T (&y)[4]) {
  const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4];
  y[0] = m[0] + a + c;
  y[1] = b + 2.f * e;
  y[2] = a + 4.f * c;
  y[3] = b + 8.f * e + m[5];
}

struct Wino43 {
  int ci, co, h, w, th, tw, band_rows, tb;
  std::vector<float> u, bias, v, m, band, y;
  double t_in = 0, t_gemm = 0, t_out = 0;

  Wino43(int ci_, int co_, int h_, int w_, const float* W, const float* B) : ci(ci_), co(co_), h(h_), w(w_) {
    th = (h + 3) / 4;
    tw = (w + 3) / 4;
    band_rows = std::max(1, 96 / tw);
    tb = (band_rows * tw + 47) / 48 * 48 + 16;
    const double G[6][3] = {{0.25, 0, 0},
                            {-1 / 6., -1 / 6., -1 / 6.},
                            {-1 / 6., 1 / 6., -1 / 6.},
                            {1 / 24., 1 / 12., 1 / 6.},
                            {1 / 24., -1 / 12., 1 / 6.},
                            {0, 0, 1}};
    u.assign(static_cast<std::size_t>(36) * co * ci, 0.f);
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c) {
        const float* g = W + (static_cast<std::size_t>(o) * ci + c) * 9;
        double t[6][3];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 3; ++j) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
        for (int i = 0; i < 6; ++i)
          for (int j = 0; j < 6; ++j)
            u[((static_cast<std::size_t>(i * 6 + j) * (co / 8) + o / 8) * ci + c) * 8 + o % 8] =
                static_cast<float>(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
      }
    bias.assign(B, B + co);
    v.assign(static_cast<std::size_t>(36) * ci * tb + 16, 0.f);
    m.assign(static_cast<std::size_t>(36) * co * tb, 0.f);
    y.assign(static_cast<std::size_t>(16) * tb, 0.f);
  }

  AITW_WINO_AVX512 void input_transform(const float* in, int ty0, int ty1) {
    const int wp = (4 * tw + 2 + 79) / 16 * 16 + 16;  // padded row; a 16-tile window reads 64 + 4 + 64 floats
    const int nrows = 4 * (ty1 - ty0) + 2;
    if (band.size() < static_cast<std::size_t>(nrows + 6) * wp)
      band.assign(static_cast<std::size_t>(nrows + 6) * wp, 0.f);
    float* tr = band.data() + static_cast<std::size_t>(nrows) * wp;  // 6 column-transformed rows
    for (int c = 0; c < ci; ++c) {
      const float* plane = in + static_cast<std::size_t>(c) * h * w;
      for (int k = 0; k < nrows; ++k) {
        const int yy = 4 * ty0 - 1 + k;
        float* r = band.data() + static_cast<std::size_t>(k) * wp;
        r[0] = 0.f;
        if (yy >= 0 && yy < h) {
          std::copy(plane + static_cast<std::size_t>(yy) * w, plane + static_cast<std::size_t>(yy) * w + w,
                    r + 1);
          std::fill(r + 1 + w, r + wp, 0.f);
        } else {
          std::fill(r, r + wp, 0.f);
        }
      }
      for (int ty = ty0; ty < ty1; ++ty) {
        const float* r0 = band.data() + static_cast<std::size_t>(4 * (ty - ty0)) * wp;
        for (int x = 0; x < wp; x += 16) {
          V16 uu[6], dd[6];
          for (int k = 0; k < 6; ++k) uu[k] = *reinterpret_cast<const V16U*>(r0 + k * wp + x);
          bt6(uu, dd);
          for (int k = 0; k < 6; ++k) *reinterpret_cast<V16U*>(tr + k * wp + x) = dd[k];
        }
        const std::size_t at = static_cast<std::size_t>(ty - ty0) * tw;
        for (int i = 0; i < 6; ++i) {
          const float* t = tr + i * wp;
          float* d[6];
          for (int j = 0; j < 6; ++j)
            d[j] = v.data() + (static_cast<std::size_t>(i * 6 + j) * ci + c) * tb + at;
          for (int x = 0; x < tw; x += 16) {
            // Phases 0..3 of the 64 floats from column 4x, and phases 0, 1 of those from 4x + 4.
            V16 ph[6];
            for (int half = 0; half < 2; ++half) {
              const float* q = t + 4 * x + 4 * half;
              const V16 a = *reinterpret_cast<const V16U*>(q), b = *reinterpret_cast<const V16U*>(q + 16),
                        cc = *reinterpret_cast<const V16U*>(q + 32),
                        dd2 = *reinterpret_cast<const V16U*>(q + 48);
              const V16 s0 =
                  __builtin_shufflevector(a, b, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
              const V16 s1 =
                  __builtin_shufflevector(a, b, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
              const V16 s2 =
                  __builtin_shufflevector(cc, dd2, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
              const V16 s3 = __builtin_shufflevector(cc, dd2, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19,
                                                     23, 27, 31);
              if (half == 0) {
                ph[0] =
                    __builtin_shufflevector(s0, s2, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
                ph[1] = __builtin_shufflevector(s0, s2, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                                30, 31);
                ph[2] =
                    __builtin_shufflevector(s1, s3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
                ph[3] = __builtin_shufflevector(s1, s3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                                30, 31);
              } else {
                ph[4] =
                    __builtin_shufflevector(s0, s2, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
                ph[5] = __builtin_shufflevector(s0, s2, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29,
                                                30, 31);
              }
            }
            V16 dd[6];
            bt6(ph, dd);
            for (int j = 0; j < 6; ++j) *reinterpret_cast<V16U*>(d[j] + x) = dd[j];
          }
        }
      }
    }
  }

  AITW_WINO_AVX512 void gemm(int nt) { wino_gemm(36, ci, co, tb, u.data(), v.data(), m.data(), nt); }

  AITW_WINO_AVX512 void output_transform(float* out, int ty0, int ty1) {
    const int nt = (ty1 - ty0) * tw;
    const std::size_t xs = static_cast<std::size_t>(co) * tb;
    for (int o = 0; o < co; ++o) {
      const float* mo = m.data() + static_cast<std::size_t>(o) * tb;
      const V16 bv = V16{} + bias[o];
      for (int t = 0; t < nt; t += 16) {
        V16 rowt[4][6];  // A^T over i, for each column j
        for (int j = 0; j < 6; ++j) {
          V16 col[6], r4[4];
          for (int i = 0; i < 6; ++i) col[i] = *reinterpret_cast<const V16U*>(mo + (i * 6 + j) * xs + t);
          at6(col, r4);
          for (int a = 0; a < 4; ++a) rowt[a][j] = r4[a];
        }
        for (int a = 0; a < 4; ++a) {
          V16 r4[4];
          at6(rowt[a], r4);
          for (int b2 = 0; b2 < 4; ++b2)
            *reinterpret_cast<V16U*>(y.data() + (a * 4 + b2) * tb + t) = r4[b2] + bv;
        }
      }
      float* plane = out + static_cast<std::size_t>(o) * h * w;
      const int full = w / 4;
      for (int ty = ty0; ty < ty1; ++ty) {
        const int t0 = (ty - ty0) * tw;
        for (int a = 0; a < 4 && 4 * ty + a < h; ++a) {
          float* __restrict row = plane + static_cast<std::size_t>(4 * ty + a) * w;
          const float* __restrict y0 = y.data() + (a * 4) * tb + t0;
          const float* __restrict y1 = y0 + tb;
          const float* __restrict y2 = y1 + tb;
          const float* __restrict y3 = y2 + tb;
          for (int tx = 0; tx < full; ++tx) {
            row[4 * tx] = y0[tx];
            row[4 * tx + 1] = y1[tx];
            row[4 * tx + 2] = y2[tx];
            row[4 * tx + 3] = y3[tx];
          }
          const float* ys[4] = {y0, y1, y2, y3};
          for (int x = 4 * full; x < w; ++x) row[x] = ys[x - 4 * full][full];
        }
      }
    }
  }

  void forward(const float* in, float* out) { wino_forward(*this, in, out); }
};

template <class F>
double best_ms(F&& f) {
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 5; ++i) f();
    best = std::min(
        best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 5);
  }
  return best;
}
#endif

}  // namespace

int main() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("aitw_conv_winograd_prototype: this CPU has no AVX-512; nothing to measure\n");
    return 0;
  }
  cv::setNumThreads(1);
  // YOLO11n's 3x3 stride-1 layer shapes at 480x640 (input channels, output channels, h, w).
  const int shapes[][4] = {{16, 8, 120, 160}, {8, 16, 120, 160}, {32, 16, 60, 80}, {16, 32, 60, 80},
                           {32, 32, 30, 40},  {64, 64, 15, 20},  {64, 64, 60, 80}, {64, 32, 30, 40},
                           {32, 64, 30, 40},  {128, 64, 30, 40}, {64, 64, 30, 40}, {256, 64, 15, 20}};
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::printf("one thread, min of 7 x 5 calls; aitw = PackedConv fp32 (3x3 tiles over output channels)\n");
  std::printf("%10s %9s %8s %10s %10s %8s %10s\n", "ci->co", "hxw", "MFLOP", "aitw ms", "wino ms", "ratio",
              "max diff");
  double sum_a = 0, sum_w = 0, sum_w4 = 0;
  for (const auto& s : shapes) {
    const int ci = s[0], co = s[1], h = s[2], w = s[3];
    std::vector<float> W(static_cast<std::size_t>(co) * ci * 9), B(co),
        in(static_cast<std::size_t>(ci) * h * w);
    const float ws = 1.f / std::sqrt(9.f * ci);
    for (auto& x : W) x = dist(rng) * ws;
    for (auto& x : B) x = dist(rng) * 0.5f;
    for (auto& x : in) x = dist(rng);
    ConvShape cs;
    cs.in_channels = ci;
    cs.out_channels = co;
    cs.kernel_h = cs.kernel_w = 3;
    cs.stride_h = cs.stride_w = 1;
    cs.pad_top = cs.pad_left = cs.pad_bottom = cs.pad_right = 1;
    PackedConv pc(cs, W.data(), B.data(), ConvIsa::Avx512);
    std::vector<float> ws_buf(pc.workspace_floats(h, w) + 1), ref(static_cast<std::size_t>(co) * h * w),
        got(ref.size());
    Wino wi(ci, co, h, w, W.data(), B.data());
    const auto run_aitw = [&] {
      pc.forward(in.data(), 1, h, w, 0, ref.data(), 0, ConvActivation::None, ws_buf.data(), ws_buf.size());
    };
    const auto run_wino = [&] { wi.forward(in.data(), got.data()); };
    const double a = best_ms(run_aitw), b = best_ms(run_wino);
    double diff = 0;
    for (std::size_t i = 0; i < ref.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(ref[i] - got[i])));
    Wino43 w4(ci, co, h, w, W.data(), B.data());
    std::vector<float> got4(ref.size());
    const double b4 = best_ms([&] { w4.forward(in.data(), got4.data()); });
    double diff4 = 0;
    for (std::size_t i = 0; i < ref.size(); ++i)
      diff4 = std::max(diff4, static_cast<double>(std::fabs(ref[i] - got4[i])));
    sum_w4 += b4;
    const double mflop = 2.0 * ci * co * 9 * h * w / 1e6;
    const double calls = 35 + 1;
    std::printf("%5d->%-4d %4dx%-4d %8.1f %10.3f %10.3f %8.2f %10.1e   in %.3f gemm %.3f out %.3f\n", ci, co,
                h, w, mflop, a, b, a / b, diff, wi.t_in / calls, wi.t_gemm / calls, wi.t_out / calls);
    std::printf("%29s F(4x4,3x3) %10.3f %8.2f %10.1e   in %.3f gemm %.3f out %.3f\n", "", b4, a / b4, diff4,
                w4.t_in / calls, w4.t_gemm / calls, w4.t_out / calls);
    sum_a += a;
    sum_w += b;
  }
  std::printf("sum: aitw %.3f ms, F(2x2,3x3) %.3f ms (ratio %.2f), F(4x4,3x3) %.3f ms (ratio %.2f)\n", sum_a,
              sum_w, sum_a / sum_w, sum_w4, sum_a / sum_w4);
  return 0;
#else
  std::printf("aitw_conv_winograd_prototype: x86-64 GCC builds only\n");
  return 0;
#endif
}
