#include "aitw/kernel/conv.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "../parallel.hpp"
#include "conv_internal.hpp"

namespace aitw::kernel {
namespace {

using conv_detail::KernelSet;

std::atomic<int> g_forced{-1};
std::atomic<int> g_wino_forced{-1};
std::atomic<int> g_wino_rows_forced{-1};

const KernelSet& kernels_for(ConvIsa isa, bool bf16 = false) {
  const KernelSet* k = nullptr;
  if (bf16 && isa == ConvIsa::Avx512) k = conv_detail::avx512bf16_kernels();
  if (k) return *k;
  if (isa == ConvIsa::Avx512) k = conv_detail::avx512_kernels();
  if (isa == ConvIsa::Avx2) k = conv_detail::avx2_kernels();
  return k ? *k : *conv_detail::portable_kernels();
}

// 3x3 padding 1, stride 1 or 2, on the tiles over output channels (KernelSet::oc_tile; in bf16 on the input
// converted to pair planes band by band): no band copy or phase split. Alone, AVX-512, 2 threads, ms
// (pixel-vector tiles on phase planes -> these): stride 2 64 -> 64 at 120 x 160 1.17 -> 0.99, 128 -> 128 at
// 60 x 80 1.18 -> 0.97, 128 -> 256 at 30 x 40 0.64 -> 0.49, 16 -> 32 at 240 x 320 0.65 -> 0.60. With 3 input
// channels (YOLO's first layer, K = 27) the transposed stores outweigh the sums: 0.41 -> 0.62, so few input
// channels keep the phase planes; at stride 1 so do fewer output channels than one block (half a block's
// lanes would be wasted), except exactly one vector of them, which the half-width tiles (KernelSet::oc_half)
// take: 16 output channels, 2 threads, Zen 4 VM, band path -> these: 16 -> 16 at 120 x 160 0.57 -> 0.47 ms,
// 32 -> 16 at 60 x 80 0.26 -> 0.22, 16 -> 16 at 60 x 80 0.15 -> 0.12, 64 -> 16 at 30 x 40 0.16 -> 0.10.
bool oc_path(const ConvShape& s, const KernelSet& k) {
  const int stride = s.stride_w;
  return stride >= 1 && stride <= 2 && s.stride_h == stride && k.oc_tile[stride - 1][0] && !s.depthwise() &&
         s.kernel_h == 3 && s.kernel_w == 3 && s.pad_top == 1 && s.pad_left == 1 && s.pad_bottom == 1 &&
         s.pad_right == 1 && s.in_channels >= 8 &&
         (stride == 2 || s.out_channels >= k.oc_co || (k.oc_half[0][0] && s.out_channels == k.lanes));
}

// Winograd F(4x4, 3x3) or F(6x4, 3x3) (conv_internal.hpp, WinoInJob): 3x3 stride 1 padding 1, not depthwise,
// fp32.
bool wino_shape(const ConvShape& s) {
  return !s.depthwise() && s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 &&
         s.pad_top == 1 && s.pad_left == 1 && s.pad_bottom == 1 && s.pad_right == 1;
}

// Where Winograd beats the direct tiles in the forward: 3x3 stride-1 layers of 8+ input and output channels
// on images of at least min_tiles 4 x 4 tiles. Its transformed weights are 4-5.3x the direct tiles' (36 or 48
// positions against 9 taps): in a forward they come from L3 each time, which the same layer repeated warm
// (aitw_conv_bench) hides. AVX2 and portable from 20 tiles (the 15 x 20 level): their direct tiles are slower
// per multiply, and AVX2's forward lost with fewer Winograd layers (Zen 5 VM, YOLO11n, sum of per-layer
// medians: from 20 tiles 27.46 ms, from 80 27.67, from 300 28.16). AVX-512 from 300 tiles (the 60 x 80
// level): in the forward its direct tiles win at 15 x 20 and 30 x 40 (Zen 5 VM, YOLO11n at 480 x 640, 2
// threads: 64 -> 64 at 15 x 20 0.100-0.114 -> 0.071-0.074 ms, 32 -> 32 at 30 x 40 0.100-0.110 -> 0.073-0.080,
// 64 -> 32 0.188 -> 0.133; forward's layers 17.14 -> 16.62 ms; YOLOv8n 19.11 -> 17.61), although warm
// Winograd still wins there by 10-25 %. AVX-512 also wants 32+ channels on both sides: below, the
// transforms (per input and per output channel) outweigh the multiplies saved (per channel pair), and the
// direct tiles won in the forward (Zen 5 VM, 2 threads, medians of 5 alternated runs: YOLO11n's 16 -> 8 and
// 8 -> 16 at 120 x 160 0.478 -> 0.431 ms the pair, YOLOv8n's 16 -> 16 pair there 0.653 -> 0.582; 32 -> 32 at
// 60 x 80 stays Winograd: direct took YOLOv8n's four 0.88 -> 1.09 ms). AVX2 keeps 8+: its direct tiles lost
// there (the 16 -> 8 / 8 -> 16 pair 0.566 -> 0.658 ms). Those AVX-512 limits hold where 512-bit FMAs are full
// width (conv_avx512_full_width); where they are half width, as on Zen 4, AVX2's rule.
bool winograd_pays(const ConvShape& s, int h, int w, ConvIsa isa) {
  // Full-width 512-bit FMAs (Zen 5): the rule measured there. Half width (Zen 4), the multiplies saved are
  // worth twice as much and AVX2's rule pays: Zen 4 VM, alternated forwards (9 rounds, fp32), YOLO11n 23.86
  // -> 22.98 ms, YOLOv8n 26.84 -> 24.19 (its head's cv3.1.0 0.962 -> 0.566, model.2.m.0.cv2 0.550 -> 0.360).
  const bool avx512 = isa == ConvIsa::Avx512 && conv_avx512_full_width();
  const int tiles = ((h + 3) / 4) * ((w + 3) / 4), min_tiles = avx512 ? 300 : 20,
            min_channels = avx512 ? 32 : 8;
  return tiles >= min_tiles && s.in_channels >= min_channels && s.out_channels >= min_channels;
}

// How a Winograd forward is cut: bands of tile rows whose V ([36][channel][tile]) stays within
// kWinoBandBytes, in whole rounds of the threads, one band per unit of work, each unit transforming its
// band's input into its thread's own buffer. Images of fewer than kWinoBandTiles tiles (or fewer tile rows
// than threads) are one band, and the units split its output-channel blocks instead, each transforming the
// whole input itself: no second parallel loop, no transformed input shared between cores. Against the first
// way to cut them (the input transformed once, in parallel over channels, then the GEMMs over (tile block,
// channel block): two loops, V read across cores), at two threads, ratio to the direct tiles: 15 x 20 64 ->
// 64 0.98-1.12 -> 0.77-0.85, 30 x 40 32 -> 32 1.01-1.18 -> 0.76-0.88, 64 -> 32 0.89-1.06 -> 0.71-0.83.
constexpr std::size_t kWinoBandBytes = 768 << 10;
constexpr int kWinoBandTiles = 160;

struct WinoPlan {
  int th = 0, tw = 0;
  int band_rows = 0, bands = 1;  // band b: tile rows [b th / bands, (b + 1) th / bands), at most band_rows
  int groups = 1;                // units per band, each over a share of the output-channel blocks
  std::ptrdiff_t tbs = 0;        // floats per (position, channel) row of V: a band's tiles, rounded up
  std::ptrdiff_t xs = 0;         // floats between V's positions
  std::size_t rows_floats = 0;   // the input transform's scratch (WinoInJob::rows)
  std::size_t v_floats = 0;
};

// kTH: the tiles' output rows (4: F(4x4, 3x3), 6: F(6x4, 3x3)); (kTH + 2) x 6 positions.
WinoPlan wino_plan(int ci, int h, int w, const KernelSet& k, int kTH) {
  WinoPlan p;
  p.th = (h + kTH - 1) / kTH;
  p.tw = (w + 3) / 4;
  const int positions = 6 * (kTH + 2);
  const std::size_t row_bytes = sizeof(float) * positions * ci * (p.tw + 1);
  const int threads = std::max(1, cv::getNumThreads());
  int rows = static_cast<int>(std::clamp<std::size_t>(kWinoBandBytes / row_bytes, 1, p.th));
  int bands = (p.th + rows - 1) / rows;
  if (p.th < threads || p.th * p.tw < kWinoBandTiles) {
    rows = p.th;
    bands = 1;
    p.groups = threads;
  } else {
    // Whole rounds of the threads, tile rows dealt out evenly (band b: rows [b th / bands, (b + 1) th /
    // bands)): F(6x4) at 60 x 80 has 10 tile rows, which bands of 3 cut 3 + 3 + 3 + 1 (one thread 6 rows,
    // the other 4) and these cut 2 + 3 + 2 + 3.
    bands = std::min(p.th, (bands + threads - 1) / threads * threads);
    rows = (p.th + bands - 1) / bands;
  }
  p.band_rows = rows;  // the largest band's
  p.bands = bands;
  // The input transform's last vector of a row runs up to lanes - 1 tiles past it; the GEMM reads whole
  // vectors of tiles.
  p.tbs = (static_cast<std::ptrdiff_t>(rows) * (p.tw + 1) + k.lanes + k.tile_px - 1) / k.tile_px * k.tile_px;
  p.rows_floats =
      static_cast<std::size_t>(kTH + 2) * (4 * (p.tw + 1) + 2 * k.lanes) +
      static_cast<std::size_t>(kTH + 2) * (4 * static_cast<std::size_t>(rows) * (p.tw + 1) + 6 * k.lanes);
  // Positions a whole number of 4 KB pages and one cache line apart: the input transform stores a tile
  // vector's 36 (48) values into 36 (48) positions, which ci * tbs floats apart (a multiple of 4 KB for most
  // layers: 32 x 96, 64 x 144) all fell into one L1 set.
  p.xs = (static_cast<std::ptrdiff_t>(ci) * p.tbs + 1023) / 1024 * 1024 + 16;
  p.v_floats = static_cast<std::size_t>(positions) * p.xs;
  return p;
}

// Where each tap of the kernel reads, for an input of h x w. Stride s splits the zero-padded input into
// s_h * s_w phase planes (plane (ry, rx) holds padded rows ry, ry + s_h, ... and columns rx, rx + s_w, ...),
// so that output pixel (oy, ox) reads tap (ky, kx) at plane (ky % s_h, kx % s_w), row oy + ky / s_h, column
// ox + kx / s_w: the same offset for every pixel, and consecutive output pixels read consecutive floats.
// Output pixels are computed in the planes' flat row-major space (row length wq >= ow); the columns past ow
// are computed and dropped, which costs (wq - ow) / wq of the work (2 of 22 columns at the 15 x 20 level).
// The planes are built one band of output rows at a time into a buffer sized to stay in L2 (the whole
// image's planes went through L3 and back: 17 % of a 64-channel stride-2 layer at 120 x 160 went to the
// split alone). A 1x1 stride-1 unpadded convolution reads the input itself (direct).
constexpr int kMaxTaps = 64;

struct Geometry {
  int oh = 0, ow = 0, wq = 0, planes = 1;
  bool direct = false;
  bool shared = false;                    // small image: split once, whole, shared by all threads (no bands)
  int band_rows = 0, bands = 1;           // output rows per band
  std::ptrdiff_t plane = 0, channel = 0;  // floats per phase plane / per channel in a band buffer
  std::size_t band_floats = 0;            // one band buffer, slack included (direct: the tail tile)
  std::array<std::ptrdiff_t, kMaxTaps> taps{};  // no allocation per forward
  int ntaps = 0;
};

constexpr std::size_t kBandBytes = 256 << 10, kSharedBytes = 1 << 20;
// Layers of few input channels (the stem, 3 -> 16 stride 2 at 480 x 640) write far more than they split: a
// band of 15 rows split 246 KB and wrote 307 KB of output, which with the input's rows left L2 short. At
// 64 KB their bands are the four rows stride 2 takes at least (77 KB split, 82 KB written). YOLO11n's
// model.0 in the forward, 2 threads, Zen 5 VM, medians of three alternated runs: fp32 0.62 -> 0.55 ms, bf16
// 0.60 -> 0.56, AVX2 1.10 -> 0.94; the other band-path layers measured the same at 64 KB to 512 KB.
constexpr std::size_t kFewChannelBandBytes = 64 << 10;
constexpr int kFewChannels = 8;

// `pairs`: for the bf16 kernels, which read channel pairs built when the input is split: no direct path.
Geometry geometry(const ConvShape& s, int h, int w, int tile_px, bool pairs = false) {
  Geometry g;
  g.oh = s.out_h(h);
  g.ow = s.out_w(w);
  if (g.oh <= 0 || g.ow <= 0) return g;  // kernel larger than the padded input: nothing to compute
  g.direct = !pairs && s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
             s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  if (g.direct) {
    g.wq = w;
    g.plane = g.channel = static_cast<std::ptrdiff_t>(h) * w;
    g.band_rows = g.oh;
    g.ntaps = 1;
    g.band_floats = static_cast<std::size_t>(s.in_channels) * tile_px;
    return g;
  }
  const int wp = w + s.pad_left + s.pad_right;
  g.planes = s.stride_h * s.stride_w;
  g.wq = (wp + s.stride_w - 1) / s.stride_w;
  const int extra = (s.kernel_h - 1) / s.stride_h;  // phase rows a band reads below its last output row
  const std::size_t row_bytes = sizeof(float) * s.in_channels * g.planes * g.wq;
  // What fits the budget, but at least three tiles per band (each band's last tile is partly wasted) and,
  // at stride 2, four output rows: every band splits the phase row below its last output row again, so
  // 4 rows split 1.25 times the input where 2 split 1.5 times (the 64-channel 120 x 160 layer; its time
  // moved within this shared host's noise, 5.0-5.3 -> 4.6-5.3 ms at one thread).
  const std::size_t budget = s.in_channels < kFewChannels ? kFewChannelBandBytes : kBandBytes;
  const int fit = static_cast<int>(budget / row_bytes) - extra;
  // The 15 x 20 and 30 x 40 levels fit whole (<= 1 MB): one split in parallel, then every thread reads it,
  // instead of each thread's units splitting the same few bands again.
  g.shared = !s.depthwise() && row_bytes * (g.oh + extra) <= kSharedBytes;
  const int min_rows = std::max((3 * tile_px + g.wq - 1) / g.wq, s.stride_h > 1 ? 4 * extra : 1);
  g.band_rows = g.shared ? g.oh : std::clamp(std::max(min_rows, fit), 1, g.oh);
  g.bands = (g.oh + g.band_rows - 1) / g.band_rows;
  g.plane = static_cast<std::ptrdiff_t>(g.band_rows + extra) * g.wq;
  g.channel = g.plane * g.planes;
  std::ptrdiff_t max_tap = 0;
  for (int ky = 0; ky < s.kernel_h; ++ky)
    for (int kx = 0; kx < s.kernel_w; ++kx) {
      const std::ptrdiff_t t = ((ky % s.stride_h) * s.stride_w + kx % s.stride_w) * g.plane +
                               static_cast<std::ptrdiff_t>(ky / s.stride_h) * g.wq + kx / s.stride_w;
      g.taps[g.ntaps++] = t;
      max_tap = std::max(max_tap, t);
    }
  // The band's last tile reads up to a tile past the last channel's rows; depthwise also writes a
  // channel's flat band output after that.
  g.band_floats = static_cast<std::size_t>(s.in_channels * g.channel + max_tap + tile_px);
  if (s.depthwise()) g.band_floats += g.plane + tile_px;
  return g;
}

// Phase rows [row0, row0 + plane / wq) of one channel into its zero-padded phase planes.
void phase_split(const ConvShape& s, const Geometry& g, const KernelSet& k, const float* src, int h, int w,
                 int row0, float* dst) {
  const int rows = static_cast<int>(g.plane / g.wq);
  for (int ry = 0; ry < s.stride_h; ++ry)
    for (int rx = 0; rx < s.stride_w; ++rx) {
      float* plane = dst + (ry * s.stride_w + rx) * g.plane;
      // Padded column j * stride_w + rx is input column x = j * stride_w + rx - pad_left.
      int j0 = 0;
      while (j0 * s.stride_w + rx - s.pad_left < 0) ++j0;
      const int x0 = j0 * s.stride_w + rx - s.pad_left;
      const int n = x0 < w ? std::min(g.wq - j0, (w - x0 + s.stride_w - 1) / s.stride_w) : 0;
      for (int i = 0; i < rows; ++i) {
        float* row = plane + static_cast<std::ptrdiff_t>(i) * g.wq;
        const int y = (row0 + i) * s.stride_h + ry - s.pad_top;
        if (y < 0 || y >= h || n <= 0) {
          std::fill(row, row + g.wq, 0.f);
          continue;
        }
        std::fill(row, row + j0, 0.f);
        const float* in = src + static_cast<std::ptrdiff_t>(y) * w + x0;
        if (s.stride_w == 1) {
          std::memcpy(row + j0, in, sizeof(float) * n);
        } else {
          k.stride2(in, n, w - x0, row + j0);
        }
        std::fill(row + j0 + n, row + g.wq, 0.f);
      }
    }
}

// Two channels' phase planes (b null: zeros) as bf16 pairs, for the bf16 kernels: each split into scratch,
// then packed together (g.channel pairs at dst).
void split_pair(const ConvShape& s, const Geometry& g, const KernelSet& k, const float* a, const float* b,
                int h, int w, int row0, float* dst) {
  thread_local std::vector<float> scratch;  // two channels of a band: tens of KB
  if (scratch.size() < static_cast<std::size_t>(2 * g.channel)) scratch.resize(2 * g.channel);
  phase_split(s, g, k, a, h, w, row0, scratch.data());
  if (b) phase_split(s, g, k, b, h, w, row0, scratch.data() + g.channel);
  k.pack_pairs(scratch.data(), b ? scratch.data() + g.channel : nullptr, g.channel, dst);
}

// Rows of a tile computed into `tmp` ([rows][tile_px]) copied to the output, dropping padded columns, plus
// the residual (same layout as `out`) if there is one.
// p0, end: the tile's flat range within a band whose first output row is `oy0`.
// `origin`: the output pixel `out` starts at (a unit's buffer of out_pairs; then no residual).
// `pairs`: the output's bf16 channel pairs instead (forward's out_pairs, this kernel set's pack_pairs): rows
// r and r + 1 into pair plane r / 2 (an odd count's last pair gets 0 in its high half); no residual.
void scatter(const float* tmp, int rows, int tile_px, std::ptrdiff_t p0, std::ptrdiff_t end, int oy0,
             const Geometry& g, float* out, std::ptrdiff_t out_plane, const float* res,
             std::ptrdiff_t origin = 0, const KernelSet* pairs = nullptr) {
  end = std::min(p0 + tile_px, end);
  for (std::ptrdiff_t p = p0; p < end;) {
    const std::ptrdiff_t oy = oy0 + p / g.wq, ox = p % g.wq;
    const std::ptrdiff_t seg = std::min<std::ptrdiff_t>(g.wq - ox, end - p);
    if (ox < g.ow) {
      const std::ptrdiff_t n = std::min<std::ptrdiff_t>(seg, g.ow - ox);
      for (int r = 0; r < rows; r += pairs ? 2 : 1) {
        const float* t = tmp + r * tile_px + (p - p0);
        if (pairs) {
          pairs->pack_pairs(t, r + 1 < rows ? t + tile_px : nullptr, n,
                            out + (r / 2) * out_plane + oy * g.ow + ox);
          continue;
        }
        const std::ptrdiff_t o = r * out_plane + oy * g.ow + ox - origin;
        if (res) {
          for (std::ptrdiff_t i = 0; i < n; ++i) out[o + i] = t[i] + res[o + i];
        } else {
          std::memcpy(out + o, t, sizeof(float) * n);
        }
      }
    }
    p += seg;
  }
}

// Band path: parallel stripes, each owning one band buffer of the workspace.
int stripes_for(int units) {
  return std::max(1, std::min(units, std::max(8, 2 * cv::getNumThreads())));
}

constexpr int kMaxTileFloats = 16 * 64;

}  // namespace

const char* conv_isa_name(ConvIsa isa) {
  switch (isa) {
    case ConvIsa::Avx512:
      return "avx512";
    case ConvIsa::Avx2:
      return "avx2";
    default:
      return "portable";
  }
}

bool conv_isa_supported(ConvIsa isa) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  if (isa == ConvIsa::Avx512) return __builtin_cpu_supports("avx512f");
  if (isa == ConvIsa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == ConvIsa::Portable;
}

bool conv_bf16_pays(const ConvShape& s) {
  return !s.depthwise();
}

const char* conv_precision_name(ConvPrecision p) {
  return p == ConvPrecision::Bf16 ? "bf16" : "fp32";
}

bool conv_bf16_supported() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512bf16") && conv_detail::avx512bf16_kernels() != nullptr;
  return ok;
#else
  return false;
#endif
}

double conv_avx512_fma_width_ratio() {
  static const double ratio =
      conv_isa_supported(ConvIsa::Avx512) ? conv_detail::avx512_fma_width_ratio() : 0.;
  return ratio;
}

bool conv_avx512_full_width() {
  // Decided once (a wrong value throws from the initialiser, so every call refuses it again).
  static const bool full = [] {
    const char* env = std::getenv("AITW_AVX512_FMA");
    const std::string v = env ? env : "";
    if (v == "full" || v == "half") return v == "full";
    if (!v.empty())
      throw std::invalid_argument("AITW_AVX512_FMA='" + v + "': expects full or half (or unset: measured)");
    // Half width runs the same work in twice the time: the ratio is ~1 or ~2.
    return !conv_isa_supported(ConvIsa::Avx512) || conv_avx512_fma_width_ratio() < 1.5;
  }();
  return full;
}

ConvIsa conv_best_isa() {
  static const ConvIsa best = conv_isa_supported(ConvIsa::Avx512) ? ConvIsa::Avx512
                              : conv_isa_supported(ConvIsa::Avx2) ? ConvIsa::Avx2
                                                                  : ConvIsa::Portable;
  return best;
}

namespace {
// AITW_CONV_ISA=avx512|avx2|portable: the level new convolutions use instead of the best this CPU runs (an
// AVX2-only edge box reproduced on an AVX-512 machine, a level stepped around); unset or empty: the best.
// A level the CPU cannot run, or another word, is an error naming the variable, at every model load.
ConvIsa isa_from_env() {
  const char* v = std::getenv("AITW_CONV_ISA");
  if (!v || !*v) return conv_best_isa();
  const std::string s(v);
  for (const ConvIsa isa : {ConvIsa::Avx512, ConvIsa::Avx2, ConvIsa::Portable})
    if (s == conv_isa_name(isa)) {
      if (!conv_isa_supported(isa))
        throw std::invalid_argument("AITW_CONV_ISA=" + s + ": this CPU cannot run the " + s +
                                    " kernels (its best: " + conv_isa_name(conv_best_isa()) + ")");
      return isa;
    }
  throw std::invalid_argument("AITW_CONV_ISA=" + s + ": not a kernel level (avx512, avx2 or portable)");
}
}  // namespace

ConvIsa conv_default_isa() {
  const int f = g_forced.load();
  if (f >= 0) return static_cast<ConvIsa>(f);
  static const ConvIsa from_env = isa_from_env();  // throws again at the next call while it is wrong
  return from_env;
}

void conv_force_winograd_rows(std::optional<int> rows) {
  if (rows && *rows != 4 && *rows != 6)
    throw std::invalid_argument("conv_force_winograd_rows: " + std::to_string(*rows) + " (4 or 6)");
  g_wino_rows_forced.store(rows ? *rows : -1);
}

void conv_force_winograd(std::optional<bool> on) {
  g_wino_forced.store(on ? (*on ? 1 : 0) : -1);
}

void conv_force_isa(std::optional<ConvIsa> isa) {
  if (isa && !conv_isa_supported(*isa))
    throw std::invalid_argument(std::string("conv: this CPU cannot run ") + conv_isa_name(*isa));
  g_forced.store(isa ? static_cast<int>(*isa) : -1);
}

std::string conv_unsupported_reason(const ConvShape& s) {
  if (s.in_channels <= 0 || s.out_channels <= 0 || s.kernel_h <= 0 || s.kernel_w <= 0) return "empty shape";
  if (s.stride_h < 1 || s.stride_h > 2 || s.stride_w < 1 || s.stride_w > 2) return "stride other than 1, 2";
  if (s.pad_top < 0 || s.pad_left < 0 || s.pad_bottom < 0 || s.pad_right < 0) return "negative padding";
  if (s.groups != 1 && !s.depthwise()) return "groups other than 1 or the channel count";
  if (s.kernel_h * s.kernel_w > kMaxTaps) return "kernel larger than 64 taps";
  return {};
}

namespace {
// Whether each of the n weights is an integer in [-127, 127] times s (to 1e-3 of an integer: an fp32 weight
// q * s is within 127 * 2^-24 of it).
bool on_int8_grid(const float* w, std::size_t n, double s) {
  for (std::size_t i = 0; i < n; ++i) {
    const double q = w[i] / s;
    if (std::fabs(q - std::nearbyint(q)) > 1e-3 || std::fabs(q) > 127.001) return false;
  }
  return true;
}
}  // namespace

double conv_int8_grid_scale(const float* w, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(w[i])));
  return m > 0 && on_int8_grid(w, n, m / 127) ? m / 127 : 0.;
}

PackedConv::PackedConv(const ConvShape& shape, const float* weights, const float* bias, ConvIsa isa,
                       ConvPrecision precision, const double* grid_scales)
    : shape_(shape), isa_(isa) {
  if (const auto why = conv_unsupported_reason(shape); !why.empty())
    throw std::invalid_argument("PackedConv: " + why);
  bf16_ = precision == ConvPrecision::Bf16 && isa_ == ConvIsa::Avx512 && conv_bf16_pays(shape) &&
          conv_bf16_supported();
  const KernelSet& k = kernels_for(isa_, bf16_);
  const int taps = shape.kernel_h * shape.kernel_w, co = shape.out_channels;
  if (shape.depthwise()) {
    co_block_ = 1;
    packed_.assign(weights, weights + static_cast<std::ptrdiff_t>(co) * taps);
  } else if (bf16_) {
    // Channel pairs: the even channel's weight in the low half, the odd one's (or 0) in the high half.
    oc_ = oc_path(shape, k);
    co_block_ = oc_ ? k.oc_co : k.co_block;
    const int ci = shape.in_channels, pairs = (ci + 1) / 2, blocks = (co + co_block_ - 1) / co_block_;
    const std::size_t n = static_cast<std::size_t>(blocks) * pairs * taps * co_block_;
    std::vector<float> lo(n, 0.f), hi(n, 0.f);
    // Channels whose weights are integers in [-127, 127] times max |w| / 127 (conv_int8_grid_scale; or on
    // the grid the caller names): the integers, exact in bf16, with the scale applied in the epilogue.
    // Others: their bf16 roundings, scale 1.
    const std::size_t per = static_cast<std::size_t>(ci) * taps;
    std::vector<double> grid(co, 0.);  // the channel's scale, 0 when its weights are not on a grid
    for (int o = 0; o < co; ++o) {
      const float* wo = weights + o * per;
      grid[o] = grid_scales
                    ? (grid_scales[o] > 0 && on_int8_grid(wo, per, grid_scales[o]) ? grid_scales[o] : 0.)
                    : conv_int8_grid_scale(wo, per);
      if (grid[o] > 0) ++int8_grid_channels_;
    }
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c)
        for (int t = 0; t < taps; ++t) {
          const float wv = weights[(static_cast<std::size_t>(o) * ci + c) * taps + t];
          (c % 2 ? hi
                 : lo)[((static_cast<std::size_t>(o / co_block_) * pairs + c / 2) * taps + t) * co_block_ +
                       o % co_block_] = grid[o] > 0 ? static_cast<float>(std::nearbyint(wv / grid[o])) : wv;
        }
    if (int8_grid_channels_ > 0) {
      scale_.assign(static_cast<std::size_t>(blocks) * co_block_, 1.f);
      for (int o = 0; o < co; ++o)
        if (grid[o] > 0) scale_[o] = static_cast<float>(grid[o]);
    }
    packed_.assign(n, 0.f);
    k.pack_pairs(lo.data(), hi.data(), static_cast<std::ptrdiff_t>(n), packed_.data());
  } else {
    oc_ = oc_path(shape, k);
    co_block_ = oc_ ? k.oc_co : k.co_block;
    const int ci = shape.in_channels, blocks = (co + co_block_ - 1) / co_block_;
    packed_.assign(static_cast<std::size_t>(blocks) * ci * taps * co_block_, 0.f);
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c)
        for (int t = 0; t < taps; ++t)
          packed_[((static_cast<std::size_t>(o / co_block_) * ci + c) * taps + t) * co_block_ +
                  o % co_block_] = weights[(static_cast<std::size_t>(o) * ci + c) * taps + t];
  }
  // Winograd weights (fp32 only: a bf16 layer's tiles over output channels beat fp32 Winograd on every 3x3
  // stride-1 layer of YOLO11n, 0.66-1.04x its time at two threads; bench/RESULTS.md).
  const KernelSet& kw = k.wino ? *k.wino : k;  // the Winograd path's own tiles
  if (!bf16_ && wino_shape(shape) && kw.wino_in[0]) {
    // Transformed at the first forward that takes each variant (PackedConv::wino_u): only the ones an input
    // size uses cost memory (F(6x4)'s U is 5.3x the 3x3 weights, F(4x4)'s 4x).
    wino_block_ = kw.co_block;
    wino_w_.assign(weights, weights + static_cast<std::size_t>(co) * shape.in_channels * 9);
    wino_ = std::make_unique<WinoWeights>();
  }
  bias_.assign(static_cast<std::size_t>((co + co_block_ - 1) / co_block_) * co_block_, 0.f);
  if (bias) std::copy(bias, bias + co, bias_.begin());
}

namespace {
// Depthwise 3x3, stride 1, padded by 1: read in place, no band split (KernelSet::dw3, dw3_flat). The band
// path split each channel's band into a buffer, ran it flat and copied its rows out: 3-7x ONNX Runtime's time
// on YOLO11n's head layers (0.28 vs 0.105 ms on 64 channels at 60 x 80); the rows take 0.15 ms on 80 channels
// at 60 x 80 where the band path took 0.22-0.28, 0.075-0.11 at 30 x 40 (0.10-0.22).
bool dw3_path(const ConvShape& s) {
  return s.depthwise() && s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 && s.stride_w == 1 &&
         s.pad_top == 1 && s.pad_left == 1 && s.pad_bottom == 1 && s.pad_right == 1;
}
// Which of the two: the flat channel where rows are short or vectors narrow (KernelSet::dw3_flat), else row
// by row (KernelSet::dw3). Alone, 2 threads (1 thread), ms: AVX-512 at 15 x 20 256 channels flat 0.037
// (0.056) where the band path took 0.107 (0.179); at 30 x 40 128 channels flat 0.052 (0.086), rows 0.067
// (0.114); at 60 x 80 64 channels rows 0.079 (0.133), flat 0.093 (0.179). AVX2: flat ahead at 15 x 20 and 30
// x 40 (0.043 vs 0.059, 0.060 vs 0.073), level at 60 x 80 (0.122 vs 0.117); SSE2 (4 lanes): flat ahead at
// every width (0.246 vs 0.328 at 60 x 80).
bool dw3_flat(int w, int lanes) {
  return w < 64 || lanes < 8;
}
}  // namespace

bool conv_fp32_pairs(const ConvShape& s, ConvIsa isa) {
  return isa == ConvIsa::Avx512 && conv_bf16_supported() && dw3_path(s);
}

namespace {
// Units of work of the band path: (band, group of output-channel blocks); few bands (the 15 x 20 and
// 30 x 40 levels) are split by blocks too so that every thread gets work.
int block_groups(const Geometry& g, int blocks) {
  const int target = 4 * std::max(1, cv::getNumThreads());
  return g.bands >= target ? 1 : std::min(blocks, (target + g.bands - 1) / g.bands);
}
}  // namespace

const std::vector<float>& PackedConv::wino_u(int variant) const {
  std::call_once(wino_->once[variant], [&] {
    // U = Gv g Gh^T per (output, input) channel in double, Gh (along rows, F(4, 3)) rows [1/4, 0, 0],
    // [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]; Gv (down the
    // columns) the same for F(4x4), F(6, 3)'s for F(6x4): rows [1, 0, 0], [-2/9, -2/9, -2/9], [-2/9, 2/9,
    // -2/9], [1/90, 1/45, 2/45], [1/90, -1/45, 2/45], [32/45, 16/45, 8/45], [32/45, -16/45, 8/45], [0, 0, 1].
    // Blocks of the Winograd tiles' width; position 6 i + j.
    static constexpr double G4[6][3] = {{0.25, 0, 0},
                                        {-1 / 6., -1 / 6., -1 / 6.},
                                        {-1 / 6., 1 / 6., -1 / 6.},
                                        {1 / 24., 1 / 12., 1 / 6.},
                                        {1 / 24., -1 / 12., 1 / 6.},
                                        {0, 0, 1}};
    static constexpr double G6[8][3] = {{1, 0, 0},
                                        {-2 / 9., -2 / 9., -2 / 9.},
                                        {-2 / 9., 2 / 9., -2 / 9.},
                                        {1 / 90., 1 / 45., 2 / 45.},
                                        {1 / 90., -1 / 45., 2 / 45.},
                                        {32 / 45., 16 / 45., 8 / 45.},
                                        {32 / 45., -16 / 45., 8 / 45.},
                                        {0, 0, 1}};
    const int co = shape_.out_channels, ci = shape_.in_channels, nb = (co + wino_block_ - 1) / wino_block_;
    const int rows = variant ? 8 : 6;
    auto& u = wino_->u[variant];
    u.assign(static_cast<std::size_t>(6 * rows) * nb * ci * wino_block_, 0.f);
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c) {
        const float* g = wino_w_.data() + (static_cast<std::size_t>(o) * ci + c) * 9;
        double t[8][3];
        for (int i = 0; i < rows; ++i) {
          const double* gv = variant ? G6[i] : G4[i];
          for (int j = 0; j < 3; ++j) t[i][j] = gv[0] * g[j] + gv[1] * g[3 + j] + gv[2] * g[6 + j];
        }
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < 6; ++j)
            u[((static_cast<std::size_t>(i * 6 + j) * nb + o / wino_block_) * ci + c) * wino_block_ +
              o % wino_block_] =
                static_cast<float>(t[i][0] * G4[j][0] + t[i][1] * G4[j][1] + t[i][2] * G4[j][2]);
      }
  });
  return wino_->u[variant];
}

bool PackedConv::winograd(int h, int w) const {
  // AITW_CONV=direct: no Winograd (before/after runs of the whole forward, a way back without a rebuild).
  static const bool direct = [] {
    const char* v = std::getenv("AITW_CONV");
    return v && std::string(v) == "direct";
  }();
  if (!wino_ || h <= 0 || w <= 0) return false;
  const int forced = g_wino_forced.load();
  if (forced < 0 && direct) return false;
  return forced >= 0 ? forced == 1 : winograd_pays(shape_, h, w, isa_);
}

// F(6x4, 3x3) against F(4x4, 3x3), both in one process (aitw_conv_bench --routes aitw,aitw_wino44), 2
// threads, Zen 4 VM, YOLOv8n's 32 3x3 stride-1 layers at 480 x 640 12.67 -> 11.92, 11.76 -> 10.99, 11.98
// -> 11.19 ms (64 -> 64 at 60 x 80 0.81-0.88x, 30 x 40 0.88-0.96x, 32 channels ~1.0x), YOLO11n's 28
// layers 6.42 -> 5.95, 5.68 -> 5.55, 6.29 -> 6.11; AVX2 (its 4 x 3 tiles) 21.07 -> 20.26 and 9.10 -> 8.89,
// SSE2 58.3 -> 53.8.
int PackedConv::winograd_rows(int h) {
  const int forced = g_wino_rows_forced.load();
  if (forced > 0) return forced;
  // F(6x4) where its tiles hold fewer positions (6 x 8 per 24 outputs against 6 x 6 per 16): not at heights
  // such as 15 or 20, where 6-row tiles waste more rows than they save (3 x 48 = 4 x 36).
  return (h + 5) / 6 * 48 < (h + 3) / 4 * 36 ? 6 : 4;
}

std::size_t PackedConv::workspace_floats(int h, int w) const {
  if (winograd(h, w)) return 0;  // per-thread buffers
  // Read in place (dw3, and bf16 tiles over output channels: per-thread buffers).
  if (dw3_path(shape_) || oc_) return 0;
  const Geometry g = geometry(shape_, h, w, kernels_for(isa_, bf16_).tile_px, bf16_);
  if (g.direct || g.shared) return g.band_floats;
  const int blocks = (shape_.out_channels + co_block_ - 1) / co_block_;
  return g.band_floats * stripes_for(g.bands * block_groups(g, blocks));
}

void PackedConv::forward(const float* in, int n, int h, int w, std::ptrdiff_t in_batch_stride, float* out,
                         std::ptrdiff_t out_batch_stride, ConvActivation act, float* workspace,
                         std::size_t workspace_size, const float* residual,
                         std::ptrdiff_t residual_batch_stride) const {
  const ConvInput one{in, in_batch_stride, shape_.in_channels};
  forward(&one, 1, n, h, w, out, out_batch_stride, act, workspace, workspace_size, residual,
          residual_batch_stride);
}

void PackedConv::forward(const ConvInput* inputs, int ninputs, int n, int h, int w, float* out,
                         std::ptrdiff_t out_batch_stride, ConvActivation act, float* workspace,
                         std::size_t workspace_size, const float* residual,
                         std::ptrdiff_t residual_batch_stride, const ConvUpscaledAddend* addend,
                         bool out_pairs, bool residual_pairs) const {
  if (ninputs < 1 || ninputs > kMaxConvInputs)
    throw std::invalid_argument("PackedConv::forward: " + std::to_string(ninputs) + " inputs, takes 1 to " +
                                std::to_string(kMaxConvInputs));
  int in_total = 0;
  for (int i = 0; i < ninputs; ++i) {
    if (inputs[i].channels <= 0 || !inputs[i].data)
      throw std::invalid_argument("PackedConv::forward: input " + std::to_string(i) + " is empty");
    in_total += inputs[i].channels;
  }
  if (in_total != shape_.in_channels)
    throw std::invalid_argument("PackedConv::forward: inputs of " + std::to_string(in_total) +
                                " channels in all, the convolution takes " +
                                std::to_string(shape_.in_channels));
  bool any_pairs = false;
  for (int i = 0, first = 0; i < ninputs; first += inputs[i++].channels) {
    if (!inputs[i].pairs) continue;
    any_pairs = true;
    if (first % 2 || (i + 1 < ninputs && inputs[i].channels % 2))
      throw std::invalid_argument("PackedConv::forward: input " + std::to_string(i) +
                                  " of channel pairs starts at channel " + std::to_string(first) + " with " +
                                  std::to_string(inputs[i].channels) +
                                  " channels: pairs start at an even channel and only the last input's count "
                                  "may be odd");
  }
  // An fp32 depthwise 3x3 (conv_fp32_pairs) widens its pair inputs and rounds its output into pairs with the
  // bf16 set's pack_pairs.
  const bool fp32_pairs = (any_pairs || out_pairs) && !bf16_ && conv_fp32_pairs(shape_, isa_);
  const auto refuse = [](const std::string& why) {
    throw std::invalid_argument("PackedConv::forward: channel pairs " + why);
  };
  if ((any_pairs || out_pairs) && !bf16_ && !fp32_pairs)
    refuse(std::string(any_pairs ? "in" : "out") +
           " take a bf16 convolution, or an fp32 depthwise 3x3 (stride 1, padding 1) on a CPU with "
           "AVX512_BF16; this one runs fp32");
  // (Pairs in with an addend: a neck's 1x1 after an upsampling reads them as any 1x1 does.)
  if (out_pairs && addend) refuse("out take no upscaled addend");
  const KernelSet& k = kernels_for(isa_, bf16_);
  if (residual_pairs && (!residual || !bf16_ || shape_.depthwise() || !k.add_pairs))
    refuse(std::string("as the residual take a residual and a bf16 convolution that is not depthwise; this "
                       "one ") +
           (!residual ? "has no residual"
            : bf16_   ? "is depthwise"
                      : "runs fp32"));
  const KernelSet* kpairs = fp32_pairs ? &kernels_for(ConvIsa::Avx512, true) : bf16_ ? &k : nullptr;
  const KernelSet& kw = k.wino ? *k.wino : k;  // the Winograd path's own tiles
  const Geometry g = geometry(shape_, h, w, k.tile_px, bf16_);
  const bool dw3 = dw3_path(shape_);
  const bool wino = winograd(h, w);
  const int wv = wino ? winograd_rows(h) == 6 : 0;  // F(4x4) or F(6x4)
  const WinoPlan wp = wino ? wino_plan(shape_.in_channels, h, w, kw, wv ? 6 : 4) : WinoPlan{};  // fp32 only
  const std::size_t needs = wino ? 0 : oc_ ? workspace_floats(h, w) : dw3 ? 0 : g.band_floats;
  if (workspace_size < needs)
    throw std::invalid_argument("PackedConv::forward: workspace of " + std::to_string(workspace_size) +
                                " floats, needs " + std::to_string(needs));
  if (addend) {
    const ConvShape& s = shape_;
    const bool one_by_one = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                            s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0 &&
                            s.groups == 1;
    const int f = addend->factor;
    // (The shared and band paths of such a layer have wq == ow today; the regions below assume it.)
    if (!one_by_one || residual || !addend->data || f < 1 || g.oh % f || g.ow % f ||
        (!g.direct && g.wq != g.ow))
      throw std::invalid_argument(
          "PackedConv::forward: an upscaled addend takes a 1x1 stride-1 unpadded convolution without a "
          "residual, on an output whose sides its factor divides");
  }
  if (g.oh <= 0 || g.ow <= 0) return;
  if (residual_pairs && !oc_ && g.shared && g.wq != g.ow) {
    // The residual's pairs where a unit's share is not whole output pixels (the path below; no YOLO layer):
    // widened into the calling thread's buffer first.
    thread_local std::vector<float> wide;
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(g.oh) * g.ow,
                         image = shape_.out_channels * plane;
    wide.resize(static_cast<std::size_t>(n * image));
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < shape_.out_channels; ++c) {
        const float* p = residual + b * residual_batch_stride + (c / 2) * plane;
        float* d = wide.data() + b * image + c * plane;
        for (std::ptrdiff_t i = 0; i < plane; ++i) {
          const auto u = std::bit_cast<std::uint32_t>(p[i]);
          d[i] = std::bit_cast<float>(c % 2 ? u & 0xffff0000u : u << 16);
        }
      }
    forward(inputs, ninputs, n, h, w, out, out_batch_stride, act, workspace, workspace_size, wide.data(),
            image, nullptr, out_pairs);
    return;
  }
  if (out_pairs && residual && !oc_ && g.shared && g.wq != g.ow) {
    // Pairs out where a unit's share of a small image is not whole output pixels (tiles across rows with
    // dropped columns: a padded 3x3 off the tiles over output channels; no YOLO layer): fp32 into the calling
    // thread's buffer first.
    thread_local std::vector<float> whole;
    const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(shape_.out_channels) * g.oh * g.ow;
    whole.resize(static_cast<std::size_t>(n * image));
    forward(inputs, ninputs, n, h, w, whole.data(), image, act, workspace, workspace_size, residual,
            residual_batch_stride);
    const int pairs = (shape_.out_channels + 1) / 2;
    const float* fp32 = whole.data();  // the calling thread's: the loop's threads have their own `whole`
    parallel_for(cv::Range(0, n * pairs), [&](const cv::Range& r) {
      for (int u = r.start; u < r.end; ++u) {
        const int b = u / pairs, c = 2 * (u % pairs);
        const float* src = fp32 + b * image + static_cast<std::ptrdiff_t>(c) * g.oh * g.ow;
        k.pack_pairs(src, c + 1 < shape_.out_channels ? src + g.oh * g.ow : nullptr,
                     static_cast<std::ptrdiff_t>(g.oh) * g.ow,
                     out + b * out_batch_stride + (c / 2) * g.oh * g.ow);
      }
    });
    return;
  }
  const int T = k.tile_px, ci = shape_.in_channels, co = shape_.out_channels, CB = co_block_;
  // Channels as the kernels read them: bf16 reads pairs. `slack`: the zeros a band buffer ends with.
  const int pc = bf16_ ? (ci + 1) / 2 : ci;
  const std::size_t slack = g.band_floats - static_cast<std::size_t>(ci) * g.channel;
  const std::ptrdiff_t out_plane = static_cast<std::ptrdiff_t>(g.oh) * g.ow;
  // With an addend the tiles leave the activation to the unit's pass over its share (after the addend).
  const int activation = static_cast<int>(addend ? ConvActivation::None : act);
  const bool dw = shape_.depthwise();
  const int ntaps = g.ntaps;
  const int nblk = (co + CB - 1) / CB;  // depthwise: one block per channel
  const conv_detail::TileFn* fns = ntaps == 1 ? k.tile_1 : ntaps == 9 ? k.tile_9 : k.tile_n;
  const int vectors = T / k.lanes;
  // Whole-image paths with large weights (1x1 with 256+ channels, 3x3 with 128+ at the small levels): each
  // block's weights kept across the unit's tiles. In a band, tiles outer measured better (the band is
  // already in L2; -5 to -10 % on the 128-channel 3x3 layers).
  const bool blocks_outer = !dw && (g.direct || g.shared) &&
                            static_cast<std::size_t>(ci) * ntaps * co * sizeof(float) > (256u << 10);

  // One tile of `rows` output channels from block `blk`, reading `src` (channel stride `stride`), at flat
  // position p0 of a band of `flat` pixels whose first output row is oy0. `res`: null, or the residual
  // at the position `dst` has in the output.
  // Image b's inputs: where each starts, and its channels (the direct path's kernels read them in place).
  const float* seg[kMaxConvInputs];
  int seg_channels[kMaxConvInputs];
  for (int i = 0; i < ninputs; ++i) seg_channels[i] = inputs[i].channels;
  // Input channel c of image b (the split paths copy channel by channel).
  const auto channel = [&](int c) {
    int i = 0;
    while (c >= seg_channels[i]) c -= seg_channels[i++];
    return seg[i] + static_cast<std::ptrdiff_t>(c) * h * w;
  };

  // Channel pair c (channels 2c and 2c + 1) of the image's inputs where an input holds pairs
  // (ConvInput::pairs), else null.
  const std::ptrdiff_t hw = static_cast<std::ptrdiff_t>(h) * w;
  const auto pair_plane = [&](int c) -> const float* {
    if (!any_pairs) return nullptr;
    int i = 0, cc = 2 * c;
    while (cc >= seg_channels[i]) cc -= seg_channels[i++];
    return inputs[i].pairs ? seg[i] + static_cast<std::ptrdiff_t>(cc / 2) * hw : nullptr;
  };
  // Channel pair c's pixels [at, at + len) into d: copied from an input of pairs, else rounded from the two
  // fp32 channels.
  const auto pair_into = [&](int c, std::ptrdiff_t at, std::ptrdiff_t len, float* d) {
    if (const float* p = pair_plane(c))
      std::memcpy(d, p + at, sizeof(float) * len);
    else
      k.pack_pairs(channel(2 * c) + at, 2 * c + 1 < ci ? channel(2 * c + 1) + at : nullptr, len, d);
  };
  // Channel pair c's phase planes of the band from output row row0 (split_pair).
  const auto pair_split = [&](int c, int row0, float* d) {
    if (const float* p = pair_plane(c))
      phase_split(shape_, g, k, p, h, w, row0, d);  // 32-bit words copied as they are: pairs stay pairs
    else
      split_pair(shape_, g, k, channel(2 * c), 2 * c + 1 < ci ? channel(2 * c + 1) : nullptr, h, w, row0, d);
  };
  // out_pairs with a residual (`via`): a unit's tiles write into its thread's buffer, output channels [c0,
  // c1) x output pixels [p0, p0 + plane), without the residual, which unit_out then adds (the same fp32 sum
  // as the tiles'; residual_pairs widened) and rounds into the output's pairs while it is in cache. A
  // residual of pairs with fp32 out: the tiles store their floats, then add_residual_pairs adds the unit's
  // share in place (still in cache; the same sum, act(conv) + skip).
  const bool via = residual && out_pairs;
  struct OutView {
    float* base;
    std::ptrdiff_t plane;
    int c0;
    std::ptrdiff_t p0;
  };
  // The view's pixels [from, from + len) (of its plane; default all); `res`: the image's residual or null.
  // (v.c0 is even: a block's first channel.)
  const auto unit_out = [&](const OutView& v, int c1, float* dst, const float* res, std::ptrdiff_t from = 0,
                            std::ptrdiff_t len = -1) {
    if (len < 0) len = v.plane;
    const auto at = [&](int c) { return v.base + (c - v.c0) * v.plane + from; };
    if (res && residual_pairs)
      for (int c = v.c0; c < c1; c += 2)
        k.add_pairs(at(c), c + 1 < c1 ? at(c + 1) : nullptr, res + (c / 2) * out_plane + v.p0 + from, len);
    else if (res)
      for (int c = v.c0; c < c1; ++c) {
        float* o = at(c);
        const float* r = res + c * out_plane + v.p0 + from;
        for (std::ptrdiff_t i = 0; i < len; ++i) o[i] += r[i];
      }
    for (int c = v.c0; c < c1; c += 2)
      k.pack_pairs(at(c), c + 1 < c1 ? at(c + 1) : nullptr, len, dst + (c / 2) * out_plane + v.p0 + from);
  };
  // Channels [c0, c1) (c0 even) x output pixels [p0, p0 + len) of the fp32 output `dst`: the residual's pairs
  // `res` added in place (residual_pairs without out_pairs; no-op otherwise).
  const auto add_residual_pairs = [&](float* dst, const float* res, int c0, int c1, std::ptrdiff_t p0,
                                      std::ptrdiff_t len) {
    if (!residual_pairs || out_pairs) return;
    for (int c = c0; c < c1; c += 2)
      k.add_pairs(dst + c * out_plane + p0, c + 1 < c1 ? dst + (c + 1) * out_plane + p0 : nullptr,
                  res + (c / 2) * out_plane + p0, len);
  };

  // `more`: with src = seg[0] on the direct path, the further inputs the kernel reads in place. `view`: null,
  // or where the tiles write instead of `dst` (out_pairs with a residual; `res` null). `pairs`: the output's
  // channel pairs written by the tile itself (TileJob::pairs_out), or from `tmp` by scatter (pairs); no
  // residual.
  auto run_tile = [&](const float* src, std::ptrdiff_t stride, std::ptrdiff_t p0, std::ptrdiff_t flat,
                      int oy0, int blk, float* dst, const float* res, float* tmp, int more = 0,
                      const OutView* view = nullptr, bool pairs = false) {
    const int rows = dw ? 1 : std::min(CB, co - blk * CB);
    const std::ptrdiff_t ox = p0 % g.wq;
    // The direct path (fp32 1x1 stride 1 unpadded) computes the output's own flat pixels, so a tile across
    // rows is in place too; before, such tiles went through `tmp` and scatter(): most tiles at widths 20 and
    // 40. YOLO11n's 45 1x1 layers, 2 threads, medians of 4 interleaved runs: 10.35 -> 9.70 ms, every layer
    // faster (0.87-0.88x at 15 x 20). Any band without dropped columns (g.wq == g.ow: bf16's 1x1 layers)
    // maps flat positions to the output's the same way: in place too, which with the pairs packed straight
    // from the input (below) took bf16's 1x1 layers from 5.18 to 4.60 ms (alone it measured no better).
    const bool in_place = rows == CB && (g.direct || g.wq == g.ow || ox + T <= g.ow) && p0 + T <= flat;
    const std::ptrdiff_t pix = (oy0 + p0 / g.wq) * g.ow + ox, at = blk * CB * out_plane + pix;
    float* const out_block = view    ? view->base + (blk * CB - view->c0) * view->plane
                             : pairs ? dst + blk * (CB / 2) * out_plane
                                     : dst + blk * CB * out_plane;
    const std::ptrdiff_t oplane = view ? view->plane : out_plane, origin = view ? view->p0 : 0;
    float* o = in_place ? out_block + pix - origin : tmp;
    const float* r = in_place && res ? res + at : nullptr;
    if (dw) {
      k.dw({(more ? channel(blk) : src + blk * stride) + p0, 1, g.taps.data(), ntaps,
            packed_.data() + blk * ntaps, bias_[blk], o, activation});
      if (r)
        for (int i = 0; i < T; ++i) o[i] += r[i];
    } else {
      const int nv = static_cast<int>(std::min<std::ptrdiff_t>(vectors, (flat - p0 + k.lanes - 1) / k.lanes));
      fns[nv - 1]({src + p0, stride, more ? seg_channels[0] : pc, more, seg + 1, seg_channels + 1, p0,
                   g.taps.data(), ntaps, packed_.data() + static_cast<std::size_t>(blk) * pc * ntaps * CB,
                   bias_.data() + blk * CB, o, in_place ? oplane : T, activation, r,
                   scale_.empty() ? nullptr : scale_.data() + blk * CB, pairs && in_place ? 1 : 0});
    }
    if (!in_place)
      scatter(tmp, rows, T, p0, flat, oy0, g, out_block, oplane, res ? res + blk * CB * out_plane : nullptr,
              origin, pairs ? kpairs : nullptr);
  };

  // Winograd F(4x4, 3x3) or F(6x4, 3x3) of one image (conv_internal.hpp, WinoInJob; the plan: wino_plan).
  auto wino_forward = [&](float* dst, const float* rdst) {
    const int WB = wino_block_, wnb = (co + WB - 1) / WB, L = kw.lanes, WT = kw.tile_px, th = wp.th,
              tw = wp.tw;
    const std::ptrdiff_t tbs = wp.tbs, xs = wp.xs;
    const int TH = wv ? 6 : 4, P = 6 * (TH + 2);  // tile rows, positions
    const std::vector<float>& wu = wino_u(wv);
    const std::size_t m_floats = static_cast<std::size_t>(P) * WB * WT, rows_floats = wp.rows_floats;
    static const float zeros[kMaxTileFloats] = {};  // the GEMM tiles' bias
    static const std::ptrdiff_t zero_tap = 0;
    // Per thread: the GEMM's sums of a block (36 x WB x WT), the output transform's rows (16 x WT), the input
    // transform's rows, the band's V.
    thread_local std::vector<float> scratch;
    auto scratch_for = [&](std::size_t v) {
      const std::size_t need = m_floats + 4 * TH * WT + L + rows_floats + v;
      if (scratch.size() < need) scratch.resize(need);
      return scratch.data();
    };
    // The GEMMs and output transform of channel block `blk` over the nt tiles from f0 of a V whose tile 0 is
    // the image's tile t_base.
    auto block = [&](const float* v, int f0, int nt, int t_base, int blk, float* s) {
      const conv_detail::TileFn fn = kw.tile_1[(nt + L - 1) / L - 1];
      const float* u = wu.data() + static_cast<std::size_t>(blk) * ci * WB;
      const std::size_t u_xi = static_cast<std::size_t>(wnb) * ci * WB;
      for (int xi = 0; xi < P; ++xi)
        fn({v + xi * xs + f0, tbs, ci, 0, nullptr, nullptr, 0, &zero_tap, 1, u + xi * u_xi, zeros,
            s + static_cast<std::size_t>(xi) * WB * WT, WT, 0, nullptr, nullptr, 0});
      const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(blk) * WB * out_plane;
      kw.wino_out[wv]({s, WT, WB, std::min(WB, co - blk * WB), nt, t_base + f0, h, w, tw,
                       bias_.data() + blk * WB, dst + at, out_plane, rdst ? rdst + at : nullptr, activation,
                       s + m_floats});
    };
    const int groups = std::min(wp.groups, wnb);
    parallel_for(cv::Range(0, wp.bands * groups), [&](const cv::Range& r) {
      float* s = scratch_for(wp.v_floats);
      float* rows = s + m_floats + 4 * TH * WT + L;
      float* v = rows + rows_floats;
      for (int u = r.start; u < r.end; ++u) {
        const int band = u / groups, grp = u % groups, b0 = grp * wnb / groups, b1 = (grp + 1) * wnb / groups;
        const int ty0 = band * th / wp.bands, ty1 = (band + 1) * th / wp.bands, nt = (ty1 - ty0) * (tw + 1);
        for (int c = 0; c < ci; ++c) kw.wino_in[wv]({channel(c), h, w, tw, ty0, ty1, v + c * tbs, xs, rows});
        for (int f0 = 0; f0 < nt; f0 += WT)
          for (int blk = b0; blk < b1; ++blk) block(v, f0, std::min(WT, nt - f0), ty0 * (tw + 1), blk, s);
      }
    });
  };

  for (int b = 0; b < n; ++b) {
    for (int i = 0; i < ninputs; ++i) seg[i] = inputs[i].data + b * inputs[i].batch_stride;
    float* dst = out + b * out_batch_stride;
    const float* rdst = residual ? residual + b * residual_batch_stride : nullptr;
    const float* rtile = residual_pairs ? nullptr : rdst;  // what the tiles add (fp32 only)
    const float* za = addend ? addend->data + b * addend->batch_stride : nullptr;
    // A unit's share of the output, its tiles written: the addend and the activation while it is in cache.
    auto finish_unit = [&](int blk0, int blk1, std::ptrdiff_t p0, std::ptrdiff_t p1) {
      if (za)
        k.up_add({dst, za, out_plane,
                  static_cast<std::ptrdiff_t>(g.oh / addend->factor) * (g.ow / addend->factor), g.ow,
                  addend->factor, blk0 * CB, std::min(co, blk1 * CB), p0, p1, static_cast<int>(act)});
    };
    if (wino) {
      wino_forward(dst, rdst);
      continue;
    }
    if (oc_) {
      // Units of (output row, block of oc_co channels), rows outer. Tiles of oc_px pixels from column 0, the
      // last one moved left to end at the last column (overlapping its neighbour: the same values written
      // twice); at stride 2 an odd width's last column (its tap column 2 is padding) and rows narrower than
      // a tile go pixel by pixel.
      const int S = shape_.stride_w, P = k.oc_px;
      const int fast = S == 2 && w % 2 ? g.ow - 1 : g.ow, tiles = fast >= P ? (fast + P - 1) / P : 0;
      const std::ptrdiff_t wblock = static_cast<std::ptrdiff_t>(pc) * 9 * CB;
      // Units [u0, u1) of (output row, block), rows outer, reading `in` (channel stride `plane`) whose row 0
      // is input row `iy0`.
      // `view`: as in run_tile.
      // `pairs`: the tiles write the output's channel pairs themselves (OcJob::pairs_out; no residual).
      auto units_out = [&](int u0, int u1, const float* in, std::ptrdiff_t plane, int channels, int more,
                           int iy0, const OutView* view = nullptr, bool pairs = false) {
        for (int u = u0; u < u1; ++u) {
          const int oy = u / nblk, blk = u % nblk;
          const std::ptrdiff_t pix = static_cast<std::ptrdiff_t>(oy) * g.ow,
                               row = static_cast<std::ptrdiff_t>(blk) * CB * out_plane + pix;
          float* const orow = view    ? view->base + (blk * CB - view->c0) * view->plane + pix - view->p0
                              : pairs ? dst + static_cast<std::ptrdiff_t>(blk) * (CB / 2) * out_plane + pix
                                      : dst + row;
          const std::ptrdiff_t iy = static_cast<std::ptrdiff_t>(S * oy - 1 - iy0) * w;
          // A last block of at most one vector of channels: the half-width tiles.
          const auto& tiles_for = co - blk * CB <= k.lanes && k.oc_half[0][0] ? k.oc_half : k.oc_tile;
          conv_detail::OcJob j{in,
                               plane,
                               channels,
                               more,
                               seg + 1,
                               seg_channels + 1,
                               0,
                               w,
                               std::max(0, 1 - S * oy),
                               std::min(3, h + 1 - S * oy),
                               0,
                               packed_.data() + blk * wblock,
                               bias_.data() + blk * CB,
                               nullptr,
                               view ? view->plane : out_plane,
                               std::min(CB, co - blk * CB),
                               activation,
                               nullptr,
                               scale_.empty() ? nullptr : scale_.data() + blk * CB,
                               pairs ? 1 : 0};
          for (int t = 0; t < tiles; ++t) {
            const int ox0 = std::min(t * P, fast - P);
            j.offset = iy + S * ox0 - 1;
            j.out = orow + ox0;
            j.residual = rtile && !view && !pairs ? rtile + row + ox0 : nullptr;
            const bool right = S == 1 && ox0 + P == g.ow;
            tiles_for[S - 1][(ox0 == 0 ? 1 : 0) + (right ? 2 : 0)](j);
          }
          for (int ox = tiles ? fast : 0; ox < g.ow; ++ox) {
            j.ix0 = S * ox - 1;
            j.offset = iy + j.ix0;
            j.out = orow + ox;
            j.residual = rtile && !view && !pairs ? rtile + row + ox : nullptr;
            k.oc_one(j);
          }
        }
      };
      if (bf16_) {
        // bf16: bands of output rows, each unit packing the channel pairs of its band's input rows (and their
        // halo) into its thread's buffer, then computing every block of those rows. The whole image's pairs
        // packed first, by a parallel loop of their own, into the workspace (one more pass over memory and
        // one more join): 0.3-0.5 ms more on YOLO11n's bf16 forward, 0.7 on YOLOv8n's (Zen 5 VM, 2 threads;
        // 8 -> 16 at 120 x 160 0.214 -> 0.158 ms, 16 -> 32 at 60 x 80 0.144 -> 0.098, YOLOv8n's 16 -> 16 pair
        // at 120 x 160 0.541 -> 0.421, model.3 0.370 -> 0.299).
        // One input of pairs is read where it is. With out_pairs each band's outputs go through the thread's
        // buffer and leave as pairs.
        const int bands = std::min(g.oh, 4 * std::max(1, cv::getNumThreads()));
        const bool read_in_place = ninputs == 1 && inputs[0].pairs;
        parallel_for(cv::Range(0, bands), [&](const cv::Range& r) {
          thread_local std::vector<float> buf, obuf;
          for (int band = r.start; band < r.end; ++band) {
            const int oy0 = band * g.oh / bands, oy1 = (band + 1) * g.oh / bands;
            const int iy0 = std::max(0, S * oy0 - 1), iy1 = std::min(h, S * (oy1 - 1) + 2);
            const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(iy1 - iy0) * w,
                                 at = static_cast<std::ptrdiff_t>(iy0) * w;
            const float* src = seg[0];
            std::ptrdiff_t src_plane = hw;
            int src_y0 = 0;
            if (!read_in_place) {
              if (buf.size() < static_cast<std::size_t>(pc * plane))
                buf.resize(static_cast<std::size_t>(pc * plane));
              for (int c = 0; c < pc; ++c) pair_into(c, at, plane, buf.data() + c * plane);
              src = buf.data();
              src_plane = plane;
              src_y0 = iy0;
            }
            if (!via) {
              units_out(oy0 * nblk, oy1 * nblk, src, src_plane, pc, 0, src_y0, nullptr, out_pairs);
              if (rdst)
                add_residual_pairs(dst, rdst, 0, co, static_cast<std::ptrdiff_t>(oy0) * g.ow,
                                   static_cast<std::ptrdiff_t>(oy1 - oy0) * g.ow);
              continue;
            }
            // With a residual: row by row through the thread's buffer, the residual added before the rounding
            // (a row of every channel stays in L1; a band's rows went through L2 and cost the producer more
            // than the halved writes saved).
            if (obuf.size() < static_cast<std::size_t>(co * g.ow))
              obuf.resize(static_cast<std::size_t>(co * g.ow));
            for (int oy = oy0; oy < oy1; ++oy) {
              const OutView v{obuf.data(), g.ow, 0, static_cast<std::ptrdiff_t>(oy) * g.ow};
              units_out(oy * nblk, (oy + 1) * nblk, src, src_plane, pc, 0, src_y0, &v);
              unit_out(v, co, dst, rdst);
            }
          }
        });
        continue;
      }
      // fp32: the inputs read in place.
      parallel_for(cv::Range(0, g.oh * nblk), [&](const cv::Range& r) {
        units_out(r.start, r.end, seg[0], static_cast<std::ptrdiff_t>(h) * w, seg_channels[0], ninputs - 1,
                  0);
      });
      continue;
    }
    if (dw3) {
      // Units of (channel, band of rows): a whole channel each unless there are few (few channels on a large
      // image are split by rows too). (Band-major units, each thread's share a band of rows of every channel,
      // measured no better in the forward and slower alone: 0.135 vs 0.079 ms on 64 channels at 60 x 80.)
      // fp32_pairs: units of channel pairs. The kernels widen a pair input's halves as they copy its rows
      // (Dw3Job::pair_half; exact); with out_pairs both channels' rows go through the thread's two planes and
      // are rounded into the output's pair plane (pack_pairs, what a bf16 reader would make of them).
      const bool flat = dw3_flat(w, k.lanes);
      const int units = fp32_pairs ? (ci + 1) / 2 : ci;
      const int bands = std::clamp((4 * std::max(1, cv::getNumThreads()) + units - 1) / units, 1, h);
      parallel_for(cv::Range(0, units * bands), [&](const cv::Range& r) {
        // flat: a padded copy of the channel, and the masks, which depend on the vector width too (their
        // halves are nr apart: a thread may run layers of several levels; tests force each in turn). Each
        // half: the pixels rounded up to whole vectors, and one vector more (a band that starts off a vector
        // boundary reads its last vector past the rounded end). Rows: three padded input rows, a few KB.
        thread_local std::vector<float> scratch, planes;
        thread_local std::vector<std::int32_t> masks;
        thread_local int masks_h = 0, masks_w = 0, masks_lanes = 0;
        const std::ptrdiff_t nr = ((hw + k.lanes - 1) / k.lanes + 1) * k.lanes;
        const std::ptrdiff_t row_floats =
            (static_cast<std::ptrdiff_t>(w + k.lanes - 1) / k.lanes + 1) * k.lanes;
        const std::size_t need = flat ? static_cast<std::size_t>(hw + 2 * (w + 1) + k.lanes)
                                      : static_cast<std::size_t>(3 * row_floats + k.lanes);
        if (scratch.size() < need) scratch.resize(need);
        if (flat && (masks_h != h || masks_w != w || masks_lanes != k.lanes)) {
          masks.assign(static_cast<std::size_t>(2 * nr), -1);
          for (std::ptrdiff_t p = 0; p < nr; ++p) {
            if (p % w == 0) masks[p] = 0;
            if (p % w == w - 1) masks[nr + p] = 0;
          }
          masks_h = h;
          masks_w = w;
          masks_lanes = k.lanes;
        }
        if (out_pairs && planes.size() < static_cast<std::size_t>(2 * hw))
          planes.resize(static_cast<std::size_t>(2 * hw));
        // Channel c's output rows [y0, y1) from its input plane `in` (half: Dw3Job::pair_half) into the plane
        // `o`.
        const auto run = [&](int c, const float* in, int half, float* o, const float* res, int y0, int y1) {
          const conv_detail::Dw3Job j{in,
                                      h,
                                      w,
                                      y0,
                                      y1,
                                      packed_.data() + c * 9,
                                      bias_[c],
                                      o,
                                      res,
                                      activation,
                                      scratch.data(),
                                      flat ? nr : row_floats,
                                      flat ? masks.data() : nullptr,
                                      half};
          (flat ? k.dw3_flat : k.dw3)(j);
        };
        for (int u = r.start; u < r.end; ++u) {
          const int band = u % bands, y0 = band * h / bands, y1 = (band + 1) * h / bands;
          if (!fp32_pairs) {
            const int c = u / bands;
            const std::ptrdiff_t at = c * out_plane;
            run(c, channel(c), -1, dst + at, rdst ? rdst + at : nullptr, y0, y1);
            continue;
          }
          const int p = u / bands, c0 = 2 * p, nc = std::min(2, ci - c0);
          const float* pp = pair_plane(p);
          float* o[2];
          for (int q = 0; q < nc; ++q) {
            const std::ptrdiff_t at = (c0 + q) * out_plane;
            o[q] = out_pairs ? planes.data() + q * hw : dst + at;
            run(c0 + q, pp ? pp : channel(c0 + q), pp ? q : -1, o[q], rdst ? rdst + at : nullptr, y0, y1);
          }
          if (out_pairs) {
            const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(y0) * w;
            kpairs->pack_pairs(o[0] + at, nc > 1 ? o[1] + at : nullptr,
                               static_cast<std::ptrdiff_t>(y1 - y0) * w, dst + p * out_plane + at);
          }
        }
      });
      continue;
    }
    if (g.direct || g.shared) {
      const std::ptrdiff_t flat = g.direct ? out_plane : static_cast<std::ptrdiff_t>(g.oh) * g.wq;
      const std::ptrdiff_t ntiles = (flat + T - 1) / T;
      const float* base = seg[0];
      int more = ninputs - 1;  // the direct path reads every input in place
      // The direct path and few_in_place (below) read their input in place but for the last partial tile,
      // whose pixels a copy zero-pads to a full tile (`tail`, channel by channel T apart).
      const float* tail = workspace;
      const int threads = std::max(1, cv::getNumThreads()), target = 8 * threads;
      const bool few = ntiles < target;
      // bf16 1x1 on a small image of many tiles (the 30 x 40 level): each unit packs its own tiles' channel
      // pairs into its thread's buffer, in the loop that computes them, instead of the whole image by a
      // parallel loop of its own first (as the tiles over output channels do by bands). Alternated runs, Zen
      // 5 VM, 2 threads: YOLO11n's model.6, model.13 and model.19 0.586 / 0.574 / 0.498 -> 0.542 / 0.545 /
      // 0.473 ms, YOLOv8n's model.12, model.18 and model.6 0.711 / 0.626 / 0.927 -> 0.655 / 0.590 / 0.892.
      // Fewer tiles (15 x 20) split blocks only: every unit would pack the whole image. One tap only: a
      // unit's tiles must read no rows below their own (an unpadded 3x3 takes this path too).
      const bool pairs_1x1 = g.shared && bf16_ && g.ntaps == 1 && g.planes == 1 && g.wq == w &&
                             g.channel == static_cast<std::ptrdiff_t>(h) * w;
      const bool unit_pack = pairs_1x1 && !few;
      // The same layers on fewer tiles (the 15 x 20 level) with one input of pairs read them where they are,
      // as unit_pack's units do, instead of a parallel loop copying every pair plane into the workspace
      // first; only a last partial tile reads a zero-padded copy of its pixels (`tail`: it would read past
      // the last plane). Zen 5 VM, 2 threads, YOLO11n's 20 convolutions at 15 x 20 alone (aitw_conv_bench
      // --routes aitw_bf16_pairs, three alternated runs) 1.02-1.11 -> 0.98-1.00 ms; 14 of the forward's ~115
      // parallel loops gone; forward 0.987 (15 alternated rounds, range 0.960-1.019).
      const bool few_in_place = pairs_1x1 && few && ninputs == 1 && inputs[0].pairs;
      const bool tail_copy = g.direct || few_in_place;
      if (tail_copy && flat % T) {
        const std::ptrdiff_t p0 = flat - flat % T;
        for (int c = 0; c < (few_in_place ? pc : ci); ++c) {
          const float* from = few_in_place ? seg[0] + c * hw : channel(c);
          float* t = workspace + static_cast<std::ptrdiff_t>(c) * T;
          std::copy(from + p0, from + flat, t);
          std::fill(t + (flat - p0), t + T, 0.f);
        }
      } else if (g.shared && !unit_pack) {
        parallel_for(cv::Range(0, pc), [&](const cv::Range& r) {
          for (int c = r.start; c < r.end; ++c) {
            // Unpadded stride 1 (bf16's 1x1 layers): the channel pair is its own phase plane, packed
            // straight from the input instead of copied twice first (split_pair).
            if (bf16_ && g.planes == 1 && g.wq == w && g.channel == static_cast<std::ptrdiff_t>(h) * w)
              pair_into(c, 0, g.channel, workspace + c * g.channel);
            else if (bf16_)
              pair_split(c, 0, workspace + c * g.channel);
            else
              phase_split(shape_, g, k, channel(c), h, w, 0, workspace + c * g.channel);
          }
        });
        std::fill(workspace + pc * g.channel, workspace + pc * g.channel + slack, 0.f);
        base = workspace;
        more = 0;
      }
      // Units of (tile range, block range). Many tiles split pixels only, each unit sweeping all blocks per
      // tile (the tile's input stays in L1). Fewer tiles than 8 per thread (the 15 x 20 level: 7 tiles of 48
      // pixels, the last of 12) split blocks only, two units per thread over every tile: equal shares. They
      // were split by tiles too, 7 x 2 units whose halves took 3.5 and 2.8 tiles' work. AVX-512, 2 threads,
      // Zen 5 VM, three alternated runs: 256 -> 256 at 15 x 20 0.127-0.137 -> 0.122-0.126 ms, 384 -> 256
      // 0.188-0.196 -> 0.174-0.179, 512 -> 256 0.248-0.266 -> 0.230-0.232 (AVX2's tiles: unchanged).
      const std::ptrdiff_t tgroups = few ? 1 : target;
      const int bgroups = few ? std::min(nblk, 2 * threads) : 1;
      // out_pairs with a residual: a unit's share goes through its buffer, whole output pixels (every tile,
      // or tiles without dropped columns; the others took the whole-output path above).
      parallel_for(cv::Range(0, static_cast<int>(tgroups * bgroups)), [&](const cv::Range& r) {
        float tmp[kMaxTileFloats];
        thread_local std::vector<float> obuf;
        for (int u = r.start; u < r.end; ++u) {
          const std::ptrdiff_t tg = u / bgroups, bg = u % bgroups;
          const std::ptrdiff_t t0 = tg * ntiles / tgroups, t1 = (tg + 1) * ntiles / tgroups;
          const int b0 = static_cast<int>(bg * nblk / bgroups),
                    b1 = static_cast<int>((bg + 1) * nblk / bgroups);
          const float* ubase = base;
          std::ptrdiff_t ustride = g.channel;
          if (unit_pack) {
            thread_local std::vector<float> buf;
            const std::ptrdiff_t px0 = t0 * T, px1 = std::min(flat, t1 * T), len = (t1 - t0) * T;
            if (ninputs == 1 && inputs[0].pairs && px1 - px0 == len) {
              ubase = seg[0];  // pairs read where they are (no tile past the plane's end)
              ustride = hw;
            } else {
              if (buf.size() < static_cast<std::size_t>(pc * len))
                buf.resize(static_cast<std::size_t>(pc * len));
              for (int c = 0; c < pc; ++c) {
                float* d = buf.data() + c * len;
                pair_into(c, px0, px1 - px0, d);
                std::fill(d + (px1 - px0), d + len, 0.f);
              }
              ubase = buf.data() - px0;
              ustride = len;
            }
          }
          // Pairs with a residual through the unit's buffer; without, the tiles store them.
          OutView v{nullptr, 0, b0 * CB, 0};
          const int c1 = std::min(co, b1 * CB);
          if (via) {
            const std::ptrdiff_t q0 = few ? 0 : t0 * T, q1 = few ? out_plane : std::min(flat, t1 * T);
            if (obuf.size() < static_cast<std::size_t>((c1 - v.c0) * (q1 - q0)))
              obuf.resize(static_cast<std::size_t>((c1 - v.c0) * (q1 - q0)));
            v = {obuf.data(), q1 - q0, b0 * CB, q0};
          }
          const OutView* view = via ? &v : nullptr;
          auto one = [&](std::ptrdiff_t t, int blk) {
            const std::ptrdiff_t p0 = t * T;
            if (tail_copy && p0 + T > flat)  // the tail's copy, read as if the channels were T apart
              run_tile(tail - p0, T, p0, flat, 0, blk, dst, view ? nullptr : rtile, tmp, 0, view,
                       out_pairs && !rdst);
            else
              run_tile(ubase, ustride, p0, flat, 0, blk, dst, view ? nullptr : rtile, tmp,
                       unit_pack ? 0 : more, view, out_pairs && !rdst);
          };
          if (blocks_outer) {
            for (int blk = b0; blk < b1; ++blk)
              for (std::ptrdiff_t t = t0; t < t1; ++t) one(t, blk);
          } else {
            for (std::ptrdiff_t t = t0; t < t1; ++t)
              for (int blk = b0; blk < b1; ++blk) one(t, blk);
          }
          finish_unit(b0, b1, t0 * T, std::min(flat, t1 * T));
          if (view) unit_out(v, c1, dst, rdst);
          if (rdst) {  // whole output pixels (g.wq == g.ow: the others widened the residual above)
            const std::ptrdiff_t q0 = few ? 0 : t0 * T, q1 = few ? out_plane : std::min(flat, t1 * T);
            add_residual_pairs(dst, rdst, b0 * CB, c1, q0, q1 - q0);
          }
        }
      });
      continue;
    }

    // Each stripe owns one band buffer; another thread may have called cv::setNumThreads since the
    // workspace was sized, so never more stripes than buffers.
    const int groups = block_groups(g, nblk), units = g.bands * groups;
    const bool one_by_one = shape_.kernel_h == 1 && shape_.kernel_w == 1 && shape_.stride_h == 1 &&
                            shape_.stride_w == 1 && shape_.pad_top == 0 && shape_.pad_left == 0 &&
                            shape_.pad_bottom == 0 && shape_.pad_right == 0;
    const int stripes = std::min(stripes_for(units), static_cast<int>(workspace_size / g.band_floats));
    parallel_for(cv::Range(0, stripes), [&](const cv::Range& r) {
      float tmp[kMaxTileFloats];
      for (int s = r.start; s < r.end; ++s) {
        float* buf = workspace + static_cast<std::size_t>(s) * g.band_floats;
        int split_band = -1, split_group = -1;
        for (int u = s * units / stripes; u < (s + 1) * units / stripes; ++u) {
          const int band = u / groups, grp = u % groups;
          const int b0 = grp * nblk / groups, b1 = (grp + 1) * nblk / groups;
          const int oy0 = band * g.band_rows, rows = std::min(g.band_rows, g.oh - oy0);
          const std::ptrdiff_t flat = static_cast<std::ptrdiff_t>(rows) * g.wq, ntiles = (flat + T - 1) / T;
          // A band of a bf16 1x1 layer whose one input is channel pairs: its tiles read them where they are
          // (channel stride h x w) instead of from a copy in the band's buffer, unless the band's last tile
          // would read past the plane (the image's last band, when its pixels are no whole tiles). YOLO11n,
          // 7 layers at 120 x 160 and 60 x 80 a forward; alternated forwards on the Zen 5 VM 0.971 (15
          // rounds, range 0.956-0.985), model.16.cv1 0.271 -> 0.224 ms, model.23.cv2.0.2 0.115 -> 0.081.
          // (Concat inputs of pairs only, where the tiles would read their further inputs in place too: none
          // in either model, where a Concat before a 1x1 band holds an fp32 part.)
          const bool band_in_place = bf16_ && one_by_one && !dw && ninputs == 1 && inputs[0].pairs &&
                                     static_cast<std::ptrdiff_t>(oy0) * w + ntiles * T <= hw;
          if (!band_in_place && (band != split_band || (dw && grp != split_group))) {
            // Depthwise units read only their own channels; the others read all of them.
            const int c0 = dw ? b0 : 0, c1 = dw ? b1 : pc;
            for (int c = c0; c < c1; ++c) {
              if (bf16_ && one_by_one) {
                // A band of an unpadded stride-1 1x1 layer: its input rows as they are, packed straight
                // into pairs (split_pair copies each channel first); rows past the image are zeros.
                const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(oy0) * w,
                                     len = static_cast<std::ptrdiff_t>(std::min(g.band_rows, h - oy0)) * w;
                float* d = buf + c * g.channel;
                pair_into(c, at, len, d);
                std::fill(d + len, d + g.channel, 0.f);
              } else if (bf16_)
                pair_split(c, oy0, buf + c * g.channel);
              else
                phase_split(shape_, g, k, channel(c), h, w, oy0, buf + c * g.channel);
            }
            std::fill(buf + pc * g.channel, buf + pc * g.channel + slack, 0.f);
            split_band = band;
            split_group = grp;
          }
          if (dw) {
            // A channel's whole band in one call into a flat buffer, then its rows out (per-tile calls
            // and scatters cost more than the 9 FMAs per vector they wrapped).
            float* flat_out = buf + g.band_floats - g.plane - T;
            for (int c = b0; c < b1; ++c) {
              k.dw({buf + c * g.channel, static_cast<int>(ntiles), g.taps.data(), ntaps,
                    packed_.data() + c * ntaps, bias_[c], flat_out, activation});
              for (int y = 0; y < rows; ++y) {
                const std::ptrdiff_t at = c * out_plane + static_cast<std::ptrdiff_t>(oy0 + y) * g.ow;
                if (rdst) {
                  for (int x = 0; x < g.ow; ++x) dst[at + x] = flat_out[y * g.wq + x] + rdst[at + x];
                } else {
                  std::memcpy(dst + at, flat_out + y * g.wq, sizeof(float) * g.ow);
                }
              }
            }
          } else {
            // `via`: the unit's channels x rows through the thread's buffer, out as pairs; else the tiles
            // store them.
            const bool via_buffer = via;
            OutView v{nullptr, static_cast<std::ptrdiff_t>(rows) * g.ow, b0 * CB,
                      static_cast<std::ptrdiff_t>(oy0) * g.ow};
            const int c1 = std::min(co, b1 * CB);
            if (via_buffer) {
              thread_local std::vector<float> obuf;
              if (obuf.size() < static_cast<std::size_t>((c1 - v.c0) * v.plane))
                obuf.resize(static_cast<std::size_t>((c1 - v.c0) * v.plane));
              v.base = obuf.data();
            }
            // Each row leaves as pairs once its tiles are written (still in L1).
            int packed = 0;
            for (std::ptrdiff_t t = 0; t < ntiles; ++t) {
              for (int blk = b0; blk < b1; ++blk)
                run_tile(band_in_place ? seg[0] + static_cast<std::ptrdiff_t>(oy0) * w : buf,
                         band_in_place ? hw : g.channel, t * T, flat, oy0, blk, dst,
                         via_buffer ? nullptr : rtile, tmp, 0, via_buffer ? &v : nullptr, out_pairs && !rdst);
              if (!via_buffer) continue;
              int done = packed;
              while (done < rows && static_cast<std::ptrdiff_t>(done) * g.wq + g.ow <= (t + 1) * T) ++done;
              if (t + 1 == ntiles) done = rows;
              if (done > packed)
                unit_out(v, c1, dst, rdst, static_cast<std::ptrdiff_t>(packed) * g.ow,
                         static_cast<std::ptrdiff_t>(done - packed) * g.ow);
              packed = done;
            }
            finish_unit(b0, b1, static_cast<std::ptrdiff_t>(oy0) * g.ow,
                        static_cast<std::ptrdiff_t>(oy0 + rows) * g.ow);
            if (rdst)
              add_residual_pairs(dst, rdst, b0 * CB, c1, static_cast<std::ptrdiff_t>(oy0) * g.ow,
                                 static_cast<std::ptrdiff_t>(rows) * g.ow);
          }
        }
      }
    });
  }
}

}  // namespace aitw::kernel
