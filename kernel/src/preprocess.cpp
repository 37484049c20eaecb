#include "aitw/kernel/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <opencv2/imgproc.hpp>

#include "simd_dispatch.hpp"

// The exact-2x path has an explicit-SIMD kernel (below) where the portable loops leave most of the speed:
// AVX2 on x86-64 with GCC (compiled for AVX2 inside this file and picked at run time, the binary still
// targets the x86-64 baseline; off with AITW_NO_TARGET_CLONES), NEON on aarch64 (the baseline there).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(AITW_NO_TARGET_CLONES)
#define AITW_HALF_SIMD 32  // vector bytes
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__GNUC__)
#define AITW_HALF_SIMD 16
#include <arm_neon.h>
#endif

namespace aitw::kernel {
namespace {

constexpr float kScale = 1.f / 255.f;
// 114 * scale, as blobFromImage computes the padded pixels (114.f / 255.f differs by one ulp).
constexpr float kPad = 114.f * kScale;

// OpenCV INTER_LINEAR source coordinate for output index d: half-pixel centres, clamped at the borders.
void source_coord(int d, double scale, int src_size, int& s0, int& s1, float& w) {
  const float f = static_cast<float>((d + 0.5) * scale - 0.5);
  int s = static_cast<int>(std::floor(f));
  float frac = f - static_cast<float>(s);
  if (s < 0) {
    s = 0;
    frac = 0.f;
  }
  if (s >= src_size - 1) {
    s = src_size - 1;
    frac = 0.f;
  }
  s0 = s;
  s1 = std::min(s + 1, src_size - 1);
  w = frac;
}

void check(const ImageView& src, const LetterboxParams& lb) {
  if (!src.data || src.width <= 0 || src.height <= 0 || src.row_stride < 3 * src.width)
    throw std::invalid_argument("preprocess: empty frame or row stride < 3 * width");
  if (src.width != lb.src_width || src.height != lb.src_height)
    throw std::invalid_argument("preprocess: frame size does not match the letterbox geometry");
}

// One output row: deinterleave, reorder, scale. The channel order is a template parameter so that the
// compiler sees a fixed stride-3 pattern and vectorises it (it does not with a runtime channel offset).
template <int kRed>
inline __attribute__((always_inline)) void convert_row_impl(const std::uint8_t* __restrict s, int n,
                                                            float* __restrict r, float* __restrict g,
                                                            float* __restrict b) {
  for (int x = 0; x < n; ++x) {
    r[x] = static_cast<float>(s[3 * x + kRed]) * kScale;
    g[x] = static_cast<float>(s[3 * x + 1]) * kScale;
    b[x] = static_cast<float>(s[3 * x + 2 - kRed]) * kScale;
  }
}
AITW_TARGET_CLONES void convert_row_bgr(const std::uint8_t* s, int n, float* r, float* g, float* b) {
  convert_row_impl<2>(s, n, r, g, b);
}
AITW_TARGET_CLONES void convert_row_rgb(const std::uint8_t* s, int n, float* r, float* g, float* b) {
  convert_row_impl<0>(s, n, r, g, b);
}

// One output row from source rows s0, s1 at exactly half the size: the rounded 2x2 mean, which is what
// cv::resize computes for an exact 2x INTER_LINEAR downscale (it switches to its INTER_AREA fast path).
// Portable version (the SIMD kernel below is used where there is one): passes over L1-resident rows, each a
// pattern the compiler vectorises (a direct stride-6 loop is not): stride-3 byte deinterleave of both rows
// into planes, then per plane stride-2 pair sums of both rows.
template <int kRed>
inline __attribute__((always_inline)) void half_row_impl(const std::uint8_t* __restrict s0,
                                                         const std::uint8_t* __restrict s1, int n,
                                                         std::uint8_t* __restrict planes, float* __restrict r,
                                                         float* __restrict g, float* __restrict b) {
  // planes: R0 G0 B0 (row s0) then R1 G1 B1 (row s1), 2n bytes each.
  const int w = 2 * n;
  std::uint8_t* p[6];
  for (int k = 0; k < 6; ++k) p[k] = planes + static_cast<std::ptrdiff_t>(k) * w;
  for (int x = 0; x < w; ++x) {
    p[0][x] = s0[3 * x + kRed];
    p[1][x] = s0[3 * x + 1];
    p[2][x] = s0[3 * x + 2 - kRed];
  }
  for (int x = 0; x < w; ++x) {
    p[3][x] = s1[3 * x + kRed];
    p[4][x] = s1[3 * x + 1];
    p[5][x] = s1[3 * x + 2 - kRed];
  }
  float* out[3] = {r, g, b};
  for (int c = 0; c < 3; ++c) {
    const std::uint8_t* __restrict a = p[c];
    const std::uint8_t* __restrict d = p[c + 3];
    float* __restrict o = out[c];
    for (int x = 0; x < n; ++x)
      o[x] = static_cast<float>((a[2 * x] + a[2 * x + 1] + d[2 * x] + d[2 * x + 1] + 2) >> 2) * kScale;
  }
}
AITW_TARGET_CLONES void half_row_bgr(const std::uint8_t* s0, const std::uint8_t* s1, int n,
                                     std::uint8_t* planes, float* r, float* g, float* b) {
  half_row_impl<2>(s0, s1, n, planes, r, g, b);
}
AITW_TARGET_CLONES void half_row_rgb(const std::uint8_t* s0, const std::uint8_t* s1, int n,
                                     std::uint8_t* planes, float* r, float* g, float* b) {
  half_row_impl<0>(s0, s1, n, planes, r, g, b);
}

#ifdef AITW_HALF_SIMD
// Explicit-SIMD exact-2x kernel, written with GCC vector extensions (shuffles with constant masks, which GCC
// lowers to vpshufb/vpunpck* on AVX2 and tbl/zip on NEON) plus two ISA helpers: pair sums and the rounding
// shift. The portable loops above spend their time in the stride-3 deinterleave and in passes through L1;
// here everything stays in registers and no step is a full deinterleave:
//  - a "window" is 16 bytes loaded at a multiple of 12: four source pixels (12 bytes, two output pixels) and
//    4 bytes ignored. One byte shuffle per window and row groups it as [R R R R | G G G G | B B B B | - - -
//    -] (pixels p0..p3 of each channel), so that adjacent byte pairs are the horizontal pairs of one channel.
//  - pair sums to uint16 (pmaddubsw / uaddlp) of both rows, added: the 2x2 sums [R R G G B B - -] of the
//    window's two output pixels. Rounded (s + 2) >> 2 (pmulhrsw by 2^13 / urshr #2): exact, s <= 1020.
//  - a block of kPx output pixels (16 on AVX2, 8 on NEON) takes four windows per 16-byte lane, interleaved
//    (unpack 16 and 64 bits) so that each 32-bit element holds output pixels (i, i + kPx/2) of one channel;
//    `& 0xffff` and `>> 16` then give kPx/2 consecutive pixels each, already in order for the float stores:
//    no widening shuffles. On AVX2 lane 0 takes output pixels 0-3 and 8-11, lane 1 4-7 and 12-15, so each
//    lane loads its windows separately (two 16-byte loads). (Regrouping windows with blends instead of the
//    unpacks, and AVX-512, were measured or estimated at no gain: the loop is bound by its op count; with
//    the rows in L1 a frame's worth takes ~0.063 ms of the ~0.08 ms it takes from memory, 1 thread.)
//  - the row's last block is loaded 4 bytes earlier (its last window's ignored bytes would be past the row):
//    no read outside the frame, any width (narrower than a block: through a zero-padded copy).
// The result is the portable kernel's, bit for bit: same integer sum and rounding, same float multiply.
// 1280x720 -> 384x640 input, 2 threads: 0.100 -> 0.043 ms; 1 thread: 0.19 -> 0.082 ms (bench/RESULTS.md).
#ifdef __x86_64__
#pragma GCC push_options
#pragma GCC target("avx2")
#endif
namespace simd {

constexpr int kBytes = AITW_HALF_SIMD;
constexpr int kLanes = kBytes / 16;
constexpr int kPx = 8 * kLanes;  // output pixels per block
typedef std::uint8_t u8v __attribute__((vector_size(kBytes)));
typedef std::uint16_t u16v __attribute__((vector_size(kBytes)));
typedef std::uint32_t u32v __attribute__((vector_size(kBytes)));
typedef std::int32_t i32v __attribute__((vector_size(kBytes)));
typedef std::uint64_t u64v __attribute__((vector_size(kBytes)));
typedef float f32v __attribute__((vector_size(kBytes)));

#define AITW_SIMD_INLINE inline __attribute__((always_inline))

// Lane l (16 bytes) of the result from p + 24 * l: the same window index in lane 1 is two windows further.
// (Two broadcast loads and a blend: 3 % faster than a load and vinserti128, which takes a shuffle slot.)
AITW_SIMD_INLINE u8v load_window(const std::uint8_t* p) {
#ifdef __x86_64__
  const __m256i lane0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i lane1 =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 24)));
  return (u8v)_mm256_blend_epi32(lane0, lane1, 0xF0);
#else
  return (u8v)vld1q_u8(p);
#endif
}

// Per 16-bit element: sum of its two bytes in a plus the same in c.
AITW_SIMD_INLINE u16v pair_sums(u8v a, u8v c) {
#ifdef __x86_64__
  const __m256i ones = _mm256_set1_epi8(1);
  return (u16v)_mm256_add_epi16(_mm256_maddubs_epi16((__m256i)a, ones),
                                _mm256_maddubs_epi16((__m256i)c, ones));
#else
  return (u16v)vpadalq_u8(vpaddlq_u8((uint8x16_t)a), (uint8x16_t)c);
#endif
}

// (s + 2) >> 2 per 16-bit element, for s <= 1020.
AITW_SIMD_INLINE u16v round_quarter(u16v s) {
#ifdef __x86_64__
  return (u16v)_mm256_mulhrs_epi16((__m256i)s, _mm256_set1_epi16(1 << 13));
#else
  return (u16v)vrshrq_n_u16((uint16x8_t)s, 2);
#endif
}

// The window's bytes grouped by channel, output order R, G, B: source byte kRed is red; the window starts
// kOff bytes into each lane.
template <int kRed, int kOff = 0>
AITW_SIMD_INLINE u8v group_channels(u8v v) {
  constexpr int R = kOff + kRed, G = kOff + 1, B = kOff + 2 - kRed;
#ifdef __x86_64__
  return __builtin_shufflevector(v, v, R, R + 3, R + 6, R + 9, G, G + 3, G + 6, G + 9, B, B + 3, B + 6, B + 9,
                                 12, 13, 14, 15, 16 + R, 19 + R, 22 + R, 25 + R, 16 + G, 19 + G, 22 + G,
                                 25 + G, 16 + B, 19 + B, 22 + B, 25 + B, 28, 29, 30, 31);
#else
  return __builtin_shufflevector(v, v, R, R + 3, R + 6, R + 9, G, G + 3, G + 6, G + 9, B, B + 3, B + 6, B + 9,
                                 12, 13, 14, 15);
#endif
}

// Rounded 2x2 sums [R R G G B B - -] (16-bit) of window w: output pixels 2w, 2w + 1 (lane 1: 2w + 4, 2w + 5).
// kBack: loaded from 4 bytes earlier (the row's last window, whose 4 ignored bytes would lie past the row).
template <int kRed, bool kBack = false>
AITW_SIMD_INLINE u16v window_sums(const std::uint8_t* a, const std::uint8_t* c, int w) {
  if constexpr (kBack) {
    const u8v sa = group_channels<kRed, 4>(load_window(a + 12 * w - 4));
    const u8v sc = group_channels<kRed, 4>(load_window(c + 12 * w - 4));
    return pair_sums(sa, sc);
  } else {
    return pair_sums(group_channels<kRed>(load_window(a + 12 * w)),
                     group_channels<kRed>(load_window(c + 12 * w)));
  }
}

// 16-bit elements (i, i + kPx/2) in each 32-bit element -> floats x 1/255 at o[0..kPx).
AITW_SIMD_INLINE void store_plane(u16v s, float* o) {
  const u32v q = (u32v)round_quarter(s);
  const f32v lo = __builtin_convertvector((i32v)(q & 0xffff), f32v) * kScale;
  const f32v hi = __builtin_convertvector((i32v)(q >> 16), f32v) * kScale;
  std::memcpy(o, &lo, sizeof lo);
  std::memcpy(o + kPx / 2, &hi, sizeof hi);
}

// kPx output pixels from a = s0 + 6x, c = s1 + 6x; reads bytes [0, 6 * kPx + 4) of both, or [0, 6 * kPx)
// with kLast.
template <int kRed, bool kLast = false>
AITW_SIMD_INLINE void half_block(const std::uint8_t* a, const std::uint8_t* c, float* r, float* g, float* b) {
  // Windows of the low halves (output pixels 0..kPx/2) and of the high halves (kPx/2..kPx); D holds the last.
  const u16v A = window_sums<kRed>(a, c, 0), B = window_sums<kRed>(a, c, 1);
  const u16v C = window_sums<kRed>(a, c, kPx / 4), D = window_sums<kRed, kLast>(a, c, kPx / 4 + 1);
#ifdef __x86_64__
  // [R0 R8 R1 R9 G0 G8 G1 G9] and [R2 R10 R3 R11 G2 G10 G3 G11] per lane (lane 1: +4), then B likewise.
  const u16v rg0 = __builtin_shufflevector(A, C, 0, 16, 1, 17, 2, 18, 3, 19, 8, 24, 9, 25, 10, 26, 11, 27);
  const u16v rg1 = __builtin_shufflevector(B, D, 0, 16, 1, 17, 2, 18, 3, 19, 8, 24, 9, 25, 10, 26, 11, 27);
  const u16v b0 = __builtin_shufflevector(A, C, 4, 20, 5, 21, 6, 22, 7, 23, 12, 28, 13, 29, 14, 30, 15, 31);
  const u16v b1 = __builtin_shufflevector(B, D, 4, 20, 5, 21, 6, 22, 7, 23, 12, 28, 13, 29, 14, 30, 15, 31);
  store_plane((u16v)__builtin_shufflevector((u64v)rg0, (u64v)rg1, 0, 4, 2, 6), r);
  store_plane((u16v)__builtin_shufflevector((u64v)rg0, (u64v)rg1, 1, 5, 3, 7), g);
  store_plane((u16v)__builtin_shufflevector((u64v)b0, (u64v)b1, 0, 4, 2, 6), b);
#else
  const u16v rg0 = __builtin_shufflevector(A, C, 0, 8, 1, 9, 2, 10, 3, 11);
  const u16v rg1 = __builtin_shufflevector(B, D, 0, 8, 1, 9, 2, 10, 3, 11);
  const u16v b0 = __builtin_shufflevector(A, C, 4, 12, 5, 13, 6, 14, 7, 15);
  const u16v b1 = __builtin_shufflevector(B, D, 4, 12, 5, 13, 6, 14, 7, 15);
  store_plane((u16v)__builtin_shufflevector((u64v)rg0, (u64v)rg1, 0, 2), r);
  store_plane((u16v)__builtin_shufflevector((u64v)rg0, (u64v)rg1, 1, 3), g);
  store_plane((u16v)__builtin_shufflevector((u64v)b0, (u64v)b1, 0, 2), b);
#endif
}

template <int kRed>
void half_row(const std::uint8_t* __restrict s0, const std::uint8_t* __restrict s1, int n,
              float* __restrict r, float* __restrict g, float* __restrict b) {
  int x = 0;
  for (; x + kPx < n; x += kPx) half_block<kRed>(s0 + 6 * x, s1 + 6 * x, r + x, g + x, b + x);
  if (n >= kPx) {
    // The last kPx pixels (overlapping the previous block: the same values again), without reading past the
    // row.
    x = n - kPx;
    half_block<kRed, true>(s0 + 6 * x, s1 + 6 * x, r + x, g + x, b + x);
    return;
  }
  // A row narrower than a block: one block on zero-padded copies.
  alignas(32) std::uint8_t ta[6 * kPx] = {}, tc[6 * kPx] = {};
  alignas(32) float tr[kPx], tg[kPx], tb[kPx];
  std::memcpy(ta, s0, static_cast<std::size_t>(6 * n));
  std::memcpy(tc, s1, static_cast<std::size_t>(6 * n));
  half_block<kRed, true>(ta, tc, tr, tg, tb);
  std::memcpy(r, tr, sizeof(float) * static_cast<std::size_t>(n));
  std::memcpy(g, tg, sizeof(float) * static_cast<std::size_t>(n));
  std::memcpy(b, tb, sizeof(float) * static_cast<std::size_t>(n));
}

#undef AITW_SIMD_INLINE
}  // namespace simd
#ifdef __x86_64__
#pragma GCC pop_options
#endif
#endif  // AITW_HALF_SIMD

bool simd_half_row_available() {
#if defined(AITW_HALF_SIMD) && defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
#elif defined(AITW_HALF_SIMD)
  return true;
#else
  return false;
#endif
}

// The exact-2x row kernel: the SIMD one when `simd` (callers check simd_half_row_available), else the
// portable loops with their per-thread row scratch.
void half_row_any(bool simd, const std::uint8_t* s0, const std::uint8_t* s1, int n, PixelOrder order,
                  float* r, float* g, float* b) {
#ifdef AITW_HALF_SIMD
  if (simd) {
    (order == PixelOrder::BGR ? simd::half_row<2> : simd::half_row<0>)(s0, s1, n, r, g, b);
    return;
  }
#else
  (void)simd;
#endif
  // Used only inside this row (no nested parallelism in between).
  thread_local std::vector<std::uint8_t> scratch;
  scratch.resize(static_cast<std::size_t>(12) * n);
  (order == PixelOrder::BGR ? half_row_bgr : half_row_rgb)(s0, s1, n, scratch.data(), r, g, b);
}

}  // namespace

bool PreprocessPlan::prepare(const LetterboxParams& lb) {
  if (valid_ && lb.src_width == lb_.src_width && lb.src_height == lb_.src_height &&
      lb.dst_width == lb_.dst_width && lb.dst_height == lb_.dst_height &&
      lb.resized_width == lb_.resized_width && lb.resized_height == lb_.resized_height &&
      lb.pad_left == lb_.pad_left && lb.pad_top == lb_.pad_top)
    return false;
  lb_ = lb;
  const bool scaled = lb.resized_width != lb.src_width || lb.resized_height != lb.src_height;
  half_ = lb.src_width == 2 * lb.resized_width && lb.src_height == 2 * lb.resized_height;
  resized_.assign(scaled && !half_ ? static_cast<std::size_t>(lb.resized_width) * lb.resized_height * 3 : 0,
                  0);
  valid_ = true;
  return true;
}

void preprocess_letterbox(const ImageView& src, PreprocessPlan& plan, float* dst) {
  const LetterboxParams& lb = plan.lb_;
  if (!plan.valid_) throw std::invalid_argument("preprocess: plan not prepared");
  check(src, lb);
  const int W = lb.dst_width, H = lb.dst_height, n = lb.resized_width;
  const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(W) * H;

  // A scaled frame goes through cv::resize first (INTER_LINEAR, fixed-point SIMD: faster than any
  // gather-based bilinear here, measured) into the plan's buffer; the pad/convert/CHW pass below is ours.
  const std::uint8_t* rows = src.data;
  std::ptrdiff_t stride = src.row_stride;
  if (!plan.resized_.empty()) {
    const cv::Mat in(src.height, src.width, CV_8UC3, const_cast<std::uint8_t*>(src.data),
                     static_cast<std::size_t>(src.row_stride));
    cv::Mat out(lb.resized_height, lb.resized_width, CV_8UC3, plan.resized_.data());
    cv::resize(in, out, out.size(), 0, 0, cv::INTER_LINEAR);
    rows = plan.resized_.data();
    stride = static_cast<std::ptrdiff_t>(lb.resized_width) * 3;
  }
  const auto convert = src.order == PixelOrder::BGR ? convert_row_bgr : convert_row_rgb;
  const bool simd = plan.half_ && simd_half_row_available();

  auto do_rows = [&](int y_begin, int y_end) {
    for (int y = y_begin; y < y_end; ++y) {
      float* r = dst + static_cast<std::ptrdiff_t>(y) * W;
      float* g = r + plane;
      float* b = g + plane;
      const int ry = y - lb.pad_top;
      if (ry < 0 || ry >= lb.resized_height) {
        std::fill(r, r + W, kPad);
        std::fill(g, g + W, kPad);
        std::fill(b, b + W, kPad);
        continue;
      }
      for (float* p : {r, g, b}) {
        std::fill(p, p + lb.pad_left, kPad);
        std::fill(p + lb.pad_left + n, p + W, kPad);
      }
      if (plan.half_) {
        const std::uint8_t* s0 = src.data + static_cast<std::ptrdiff_t>(2 * ry) * src.row_stride;
        half_row_any(simd, s0, s0 + src.row_stride, n, src.order, r + lb.pad_left, g + lb.pad_left,
                     b + lb.pad_left);
      } else {
        convert(rows + static_cast<std::ptrdiff_t>(ry) * stride, n, r + lb.pad_left, g + lb.pad_left,
                b + lb.pad_left);
      }
    }
  };
  // ~40 rows per task: enough work to amortise TBB's scheduling, enough tasks to balance 2-8 cores.
  tbb::parallel_for(tbb::blocked_range<int>(0, H, 40),
                    [&](const tbb::blocked_range<int>& rg) { do_rows(rg.begin(), rg.end()); });
}

namespace detail {

bool has_simd_half_row() {
  return simd_half_row_available();
}

void half_row(HalfRowKernel kernel, const std::uint8_t* s0, const std::uint8_t* s1, int n, PixelOrder order,
              float* r, float* g, float* b) {
  const bool simd = kernel == HalfRowKernel::Simd;
  if (simd && !simd_half_row_available()) throw std::invalid_argument("half_row: no SIMD kernel here");
  if (n > 0) half_row_any(simd, s0, s1, n, order, r, g, b);
}

}  // namespace detail

void preprocess_letterbox_reference(const ImageView& src, const LetterboxParams& lb, float* dst) {
  check(src, lb);
  const int W = lb.dst_width, H = lb.dst_height;
  const double sx = static_cast<double>(lb.src_width) / lb.resized_width;
  const double sy = static_cast<double>(lb.src_height) / lb.resized_height;
  for (int c = 0; c < 3; ++c) {
    const int sc = src.order == PixelOrder::BGR ? 2 - c : c;
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x) {
        const int rx = x - lb.pad_left, ry = y - lb.pad_top;
        float v = kPad;
        if (rx >= 0 && rx < lb.resized_width && ry >= 0 && ry < lb.resized_height) {
          int xa, xb, ya, yb;
          float wx, wy;
          source_coord(rx, sx, lb.src_width, xa, xb, wx);
          source_coord(ry, sy, lb.src_height, ya, yb, wy);
          auto px = [&](int xx, int yy) {
            return static_cast<float>(
                src.data[static_cast<std::ptrdiff_t>(yy) * src.row_stride + 3 * xx + sc]);
          };
          const float top = px(xa, ya) * (1 - wx) + px(xb, ya) * wx;
          const float bot = px(xa, yb) * (1 - wx) + px(xb, yb) * wx;
          v = (top * (1 - wy) + bot * wy) * kScale;
        }
        dst[(static_cast<std::ptrdiff_t>(c) * H + y) * W + x] = v;
      }
  }
}

}  // namespace aitw::kernel
