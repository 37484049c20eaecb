// Winograd F(4x4, 3x3) and F(6x4, 3x3) transforms (conv_internal.hpp: WinoInJob, WinoOutJob) over the ISA's
// vectors, one vector of tiles at a time. Included by conv_microkernel.hpp (V, load, store, splat, activate,
// kLanes), inside each ISA file's anonymous namespace; the ISA file includes <utility>
// (std::integer_sequence) first. kTH, the tile's output rows (4 or 6): along a column the transforms combine
// whole rows (vectors of flat tiles, no shuffles), so the taller tile costs nothing there; along a row each
// tile's columns are phases of its floats (shuffles), which stays F(4, 3).
//
// F(6, 3) down the columns (interpolation points 0, +-1, +-2, +-1/2, infinity; ncnn's winograd63): B^T rows
// [1, 0, -21/4, 0, 21/4, 0, -1, 0], [0, 1, 1, -17/4, -17/4, 1, 1, 0], [0, -1, 1, 17/4, -17/4, -1, 1, 0],
// [0, 1/2, 1/4, -5/2, -5/4, 2, 1, 0], [0, -1/2, 1/4, 5/2, -5/4, -2, 1, 0], [0, 2, 4, -5/2, -5, 1/2, 1, 0],
// [0, -2, 4, 5/2, -5, -1/2, 1, 0], [0, -1, 0, 21/4, 0, -21/4, 0, 1]; A^T rows [1, 1, 1, 1, 1, 1, 1, 0],
// [0, 1, -1, 2, -2, 1/2, -1/2, 0], [0, 1, 1, 4, 4, 1/4, 1/4, 0], [0, 1, -1, 8, -8, 1/8, -1/8, 0],
// [0, 1, 1, 16, 16, 1/16, 1/16, 0], [0, 1, -1, 32, -32, 1/32, -1/32, 1]; G in conv.cpp.
//
// Matrices (interpolation points 0, +-1, +-2, infinity; Lavin and Gray's F(4x4, 3x3), as ncnn and NNPACK
// use): B^T rows [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0,
// 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]; A^T rows [1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4,
// 0], [0, 1, -1, 8, -8, 1]; G in conv.cpp (weights, at load).

template <class T>
inline __attribute__((always_inline)) void wino_bt(const T (&u)[6], T (&d)[6]) {
  d[0] = 4.f * u[0] - 5.f * u[2] + u[4];
  d[1] = -4.f * (u[1] + u[2]) + u[3] + u[4];
  d[2] = 4.f * (u[1] - u[2]) - u[3] + u[4];
  d[3] = 2.f * (u[3] - u[1]) - u[2] + u[4];
  d[4] = 2.f * (u[1] - u[3]) - u[2] + u[4];
  d[5] = 4.f * u[1] - 5.f * u[3] + u[5];
}
template <class T>
inline __attribute__((always_inline)) void wino_at(const T (&m)[6], T (&y)[4]) {
  const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4];
  y[0] = m[0] + a + c;
  y[1] = b + 2.f * e;
  y[2] = a + 4.f * c;
  y[3] = b + 8.f * e + m[5];
}

// F(6, 3): B^T on 8 values, A^T from 8 to 6 (the matrices above, their common sums shared).
template <class T>
inline __attribute__((always_inline)) void wino_bt8(const T (&u)[8], T (&d)[8]) {
  d[0] = u[0] - u[6] + 5.25f * (u[4] - u[2]);
  d[7] = u[7] - u[1] + 5.25f * (u[3] - u[5]);
  const T a1 = u[2] + u[6] - 4.25f * u[4], b1 = u[1] + u[5] - 4.25f * u[3];
  d[1] = a1 + b1;
  d[2] = a1 - b1;
  const T a2 = u[6] + 0.25f * u[2] - 1.25f * u[4], b2 = 0.5f * u[1] - 2.5f * u[3] + 2.f * u[5];
  d[3] = a2 + b2;
  d[4] = a2 - b2;
  const T a3 = u[6] + 4.f * u[2] - 5.f * u[4], b3 = 2.f * u[1] - 2.5f * u[3] + 0.5f * u[5];
  d[5] = a3 + b3;
  d[6] = a3 - b3;
}
template <class T>
inline __attribute__((always_inline)) void wino_at8(const T (&m)[8], T (&y)[6]) {
  const T a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], e = m[3] - m[4], f = m[5] + m[6],
          g = m[5] - m[6];
  y[0] = m[0] + a + c + f;
  y[1] = b + 2.f * e + 0.5f * g;
  y[2] = a + 4.f * c + 0.25f * f;
  y[3] = b + 8.f * e + 0.125f * g;
  y[4] = a + 16.f * c + 0.0625f * f;
  y[5] = b + 32.f * e + 0.03125f * g + m[7];
}
// Down a column: kTH + 2 values to as many transformed (kTH 4: F(4, 3), 6: F(6, 3)), and back to kTH.
template <int kTH, class T>
inline __attribute__((always_inline)) void wino_bt_col(const T (&u)[kTH + 2], T (&d)[kTH + 2]) {
  if constexpr (kTH == 4)
    wino_bt(u, d);
  else
    wino_bt8(u, d);
}
template <int kTH, class T>
inline __attribute__((always_inline)) void wino_at_col(const T (&m)[kTH + 2], T (&y)[kTH]) {
  if constexpr (kTH == 4)
    wino_at(m, y);
  else
    wino_at8(m, y);
}

using WinoLanes = std::make_integer_sequence<int, kLanes>;
constexpr int kHalf = kLanes / 2, kQuarter = kLanes / 4;

// Of the 2 kLanes floats a, b (kHalf tiles of 4): phase P of each tile, then phase P + 1.
template <int P, int... I>
inline __attribute__((always_inline)) V wino_pick(V a, V b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (I < kHalf ? 4 * I + P : 4 * (I - kHalf) + P + 1)...);
}
// a's low (kHi: high) half, then b's.
template <bool kHi, int... I>
inline __attribute__((always_inline)) V wino_halves(V a, V b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, (I < kHalf ? I + kHi * kHalf : kLanes + I - kHalf + kHi * kHalf)...);
}
// The phases of the 4 kLanes floats at q (kLanes tiles of 4): ph[p][i] = q[4 i + p], p < kPhases (2 or 4).
template <int kPhases>
inline __attribute__((always_inline)) void wino_phases(const float* q, V* ph) {
  const V a = load(q), b = load(q + kLanes), c = load(q + 2 * kLanes), d = load(q + 3 * kLanes);
  const V s0 = wino_pick<0>(a, b, WinoLanes{}), s2 = wino_pick<0>(c, d, WinoLanes{});
  ph[0] = wino_halves<false>(s0, s2, WinoLanes{});
  ph[1] = wino_halves<true>(s0, s2, WinoLanes{});
  if constexpr (kPhases == 4) {
    const V s1 = wino_pick<2>(a, b, WinoLanes{}), s3 = wino_pick<2>(c, d, WinoLanes{});
    ph[2] = wino_halves<false>(s1, s3, WinoLanes{});
    ph[3] = wino_halves<true>(s1, s3, WinoLanes{});
  }
}

// The inverse: z[2 k] = a[k + kHi * kHalf], z[2 k + 1] = b[k + kHi * kHalf].
template <bool kHi, int... I>
inline __attribute__((always_inline)) V wino_zip2(V a, V b, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(a, b, ((I % 2) * kLanes + I / 2 + kHi * kHalf)...);
}
// Output vector kQ % 2 of a half from the pairs z01 (phases 0, 1) and z23 (phases 2, 3) of that half.
template <int kQ, int... I>
inline __attribute__((always_inline)) V wino_zip4(V z01, V z23, std::integer_sequence<int, I...>) {
  return __builtin_shufflevector(
      z01, z23,
      ((I % 4 < 2 ? 0 : kLanes) + 2 * ((kQ % 2) * kQuarter + I / 4) + (I % 4 < 2 ? I % 4 : I % 4 - 2))...);
}
// y[p][i] (phase p of tile i) as 4 kLanes consecutive floats z: z[4 i + p] = y[p][i].
inline __attribute__((always_inline)) void wino_interleave(const V (&y)[4], V (&z)[4]) {
  const V a = wino_zip2<false>(y[0], y[1], WinoLanes{}), b = wino_zip2<false>(y[2], y[3], WinoLanes{});
  const V c = wino_zip2<true>(y[0], y[1], WinoLanes{}), d = wino_zip2<true>(y[2], y[3], WinoLanes{});
  z[0] = wino_zip4<0>(a, b, WinoLanes{});
  z[1] = wino_zip4<1>(a, b, WinoLanes{});
  z[2] = wino_zip4<2>(c, d, WinoLanes{});
  z[3] = wino_zip4<3>(c, d, WinoLanes{});
}

// Tile row by tile row, its kTH + 2 input rows copied zero-padded (column -1 and everything from w on zero)
// and the column transform (B^T along the rows' vectors) stored at the tile row's place in kTH + 2 flat rows
// `tr` (tile row k of the band from 4 (tw + 1) k: tile (ty, tx) finds its six columns at 4 t, t = its flat
// index with a dummy tile closing each tile row); then the row transform on kLanes flat tiles at a time
// across tile rows (each tile's six columns are phases 0-3 of its four floats and phases 0-1 of the next
// tile's; the dummy tile reads the next row's first columns and is never used). Position 6 i + k: column
// transform row i, row transform value k.
template <int kTH>
void wino_in_t(const aitw::kernel::conv_detail::WinoInJob& j) {
  constexpr int kR = kTH + 2;
  const int tws = j.tw + 1, rows = j.ty1 - j.ty0, nt = rows * tws;
  const int wp = 4 * tws + 2 * kLanes;                                          // a padded input row
  const std::ptrdiff_t trs = 4 * static_cast<std::ptrdiff_t>(nt) + 6 * kLanes;  // a flat row of tr
  float* const r = j.rows;
  float* const tr = j.rows + kR * wp;
  // The padded rows' zeros past the image: written once, the copies below only overwrite [1, w].
  for (int k = 0; k < kR; ++k)
    for (int x = 0; x < wp; x += kLanes) store(r + k * wp + x, V{});
  for (int ty = j.ty0; ty < j.ty1; ++ty) {
    for (int k = 0; k < kR; ++k) {
      const int y = kTH * ty - 1 + k;
      float* row = r + k * wp;
      if (y < 0 || y >= j.h) {
        for (int x = 0; x < j.w + 1; x += kLanes) store(row + x, V{});
        continue;
      }
      const float* src = j.in + static_cast<std::ptrdiff_t>(y) * j.w;
      int x = 0;
      for (; x + kLanes <= j.w; x += kLanes) store(row + 1 + x, load(src + x));
      for (; x < j.w; ++x) row[1 + x] = src[x];
    }
    float* const t = tr + static_cast<std::ptrdiff_t>(ty - j.ty0) * 4 * tws;
    for (int x = 0; x < 4 * tws; x += kLanes) {  // the last vector runs into the next tile row's place
      V u[kR], d[kR];
#pragma GCC unroll 8
      for (int k = 0; k < kR; ++k) u[k] = load(r + k * wp + x);
      wino_bt_col<kTH>(u, d);
#pragma GCC unroll 8
      for (int k = 0; k < kR; ++k) store(t + k * trs + x, d[k]);
    }
  }
  for (int i = 0; i < kR; ++i) {
    const float* const t = tr + i * trs;
    float* const d0 = j.v + static_cast<std::ptrdiff_t>(6 * i) * j.xi_stride;
    for (int x = 0; x < nt; x += kLanes) {
      V ph[6], d[6];
      wino_phases<4>(t + 4 * x, ph);
      wino_phases<2>(t + 4 * x + 4, ph + 4);
      wino_bt(ph, d);
#pragma GCC unroll 6
      for (int k = 0; k < 6; ++k) store(d0 + k * j.xi_stride + x, d[k]);
    }
  }
}

// Per output channel: A^T M A over kLanes tiles at a time, plus the bias, the activation, into
// y[4 kTH][m_stride] (output (a, b) of each tile in row 4 a + b); then tile row by tile row into NCHW, four
// outputs of a row per tile interleaved by shuffles where a whole vector of tiles lies inside the image, one
// by one at the right edge; the residual added after the activation. A row's last tiles go out as whole
// vectors, then float by float, with no libc call: GCC had made that copy a memcpy call per output row and
// channel (3840 calls of 64 bytes on a 64 -> 64 layer at 60 x 80), 0.6 % of the fp32 forward in `perf`;
// without it YOLO11n's two such layers took 1.499 -> 1.431 ms, YOLOv8n's Winograd layers at 60 x 80 -0.02 to
// -0.05 ms each (Zen 5 VM, 2 threads, alternated runs).
template <int kTH, int kAct>
AITW_NO_LIBCALLS void wino_out_act(const aitw::kernel::conv_detail::WinoOutJob& j) {
  constexpr int kR = kTH + 2;
  const std::ptrdiff_t xs = static_cast<std::ptrdiff_t>(j.co_block) * j.m_stride, ys = j.m_stride;
  for (int r = 0; r < j.rows; ++r) {
    const float* const m = j.m + static_cast<std::ptrdiff_t>(r) * j.m_stride;
    const V bias = splat(j.bias[r]);
    for (int t = 0; t < j.nt; t += kLanes) {
      V rowt[kTH][6];
#pragma GCC unroll 6
      for (int c = 0; c < 6; ++c) {
        V col[kR], yc[kTH];
#pragma GCC unroll 8
        for (int i = 0; i < kR; ++i) col[i] = load(m + (i * 6 + c) * xs + t);
        wino_at_col<kTH>(col, yc);
#pragma GCC unroll 6
        for (int a = 0; a < kTH; ++a) rowt[a][c] = yc[a];
      }
#pragma GCC unroll 6
      for (int a = 0; a < kTH; ++a) {
        V y4[4];
        wino_at(rowt[a], y4);
#pragma GCC unroll 4
        for (int b = 0; b < 4; ++b) store(j.y + (a * 4 + b) * ys + t, activate(y4[b] + bias, kAct));
      }
    }
    float* const out = j.out + r * j.out_channel;
    const float* const res = j.residual ? j.residual + r * j.out_channel : nullptr;
    for (int i = 0; i < j.nt;) {
      const int t = j.t0 + i, ty = t / (j.tw + 1), tx0 = t % (j.tw + 1);
      if (tx0 == j.tw) {  // the dummy tile closing a tile row
        ++i;
        continue;
      }
      const int n = j.tw - tx0 < j.nt - i ? j.tw - tx0 : j.nt - i;
      // Tiles whose four columns are inside (the last one may have 1-3).
      const int inside = j.w / 4 - tx0 < n ? j.w / 4 - tx0 : n;
      for (int a = 0; a < kTH && kTH * ty + a < j.h; ++a) {
        const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(kTH * ty + a) * j.w + 4 * tx0;
        float* const row = out + at;
        const float* const rr = res ? res + at : nullptr;
        const float* const y0 = j.y + (4 * a) * ys + i;
        int q = 0;
        for (; q + kLanes <= inside; q += kLanes) {
          const V y[4] = {load(y0 + q), load(y0 + ys + q), load(y0 + 2 * ys + q), load(y0 + 3 * ys + q)};
          V z[4];
          wino_interleave(y, z);
#pragma GCC unroll 4
          for (int p = 0; p < 4; ++p) {
            float* const o = row + 4 * q + p * kLanes;
            store(o, rr ? z[p] + load(rr + 4 * q + p * kLanes) : z[p]);
          }
        }
        if (q < n) {  // the row's last tiles: a whole vector's interleave, the part inside the row kept
          const V y[4] = {load(y0 + q), load(y0 + ys + q), load(y0 + 2 * ys + q), load(y0 + 3 * ys + q)};
          V z[4];
          wino_interleave(y, z);
          float tmp[4 * kLanes];
#pragma GCC unroll 4
          for (int p = 0; p < 4; ++p) store(tmp + p * kLanes, z[p]);
          const int left = j.w - 4 * (tx0 + q), keep = 4 * (n - q) < left ? 4 * (n - q) : left;
          float* const o = row + 4 * q;
          const float* const r4 = rr ? rr + 4 * q : nullptr;
          int k = 0;
          for (; k + kLanes <= keep; k += kLanes)
            store(o + k, r4 ? load(tmp + k) + load(r4 + k) : load(tmp + k));
          if (r4) {
            for (; k < keep; ++k) o[k] = tmp[k] + r4[k];
          } else {
            for (; k < keep; ++k) o[k] = tmp[k];
          }
        }
      }
      i += n;
    }
  }
}

template <int kTH>
void wino_out_t(const aitw::kernel::conv_detail::WinoOutJob& j) {
  if (j.activation == 2) {
    wino_out_act<kTH, 2>(j);
  } else if (j.activation == 1) {
    wino_out_act<kTH, 1>(j);
  } else {
    wino_out_act<kTH, 0>(j);
  }
}
