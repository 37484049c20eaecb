#include "aitw/kernel/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

namespace aitw::kernel {
namespace {

constexpr float kPad = 114.f / 255.f;
constexpr float kScale = 1.f / 255.f;

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

inline void fill(float* p, int n, float v) { std::fill(p, p + n, v); }

}  // namespace

bool PreprocessPlan::prepare(const LetterboxParams& lb) {
  if (valid_ && lb.src_width == lb_.src_width && lb.src_height == lb_.src_height && lb.dst_width == lb_.dst_width &&
      lb.dst_height == lb_.dst_height && lb.resized_width == lb_.resized_width &&
      lb.resized_height == lb_.resized_height && lb.pad_left == lb_.pad_left && lb.pad_top == lb_.pad_top)
    return false;
  lb_ = lb;
  const double sx = static_cast<double>(lb.src_width) / lb.resized_width;
  const double sy = static_cast<double>(lb.src_height) / lb.resized_height;
  x0_.resize(lb.resized_width);
  x1_.resize(lb.resized_width);
  wx_.resize(lb.resized_width);
  for (int x = 0; x < lb.resized_width; ++x) {
    int a, b;
    source_coord(x, sx, lb.src_width, a, b, wx_[x]);
    x0_[x] = 3 * a;
    x1_[x] = 3 * b;
  }
  y0_.resize(lb.resized_height);
  y1_.resize(lb.resized_height);
  wy_.resize(lb.resized_height);
  for (int y = 0; y < lb.resized_height; ++y) source_coord(y, sy, lb.src_height, y0_[y], y1_[y], wy_[y]);
  valid_ = true;
  return true;
}

void preprocess_letterbox(const ImageView& src, PreprocessPlan& plan, float* dst) {
  const LetterboxParams& lb = plan.lb_;
  if (!plan.valid_) throw std::invalid_argument("preprocess: plan not prepared");
  check(src, lb);
  const int W = lb.dst_width, H = lb.dst_height;
  const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(W) * H;
  // Output plane 0 is R: with a BGR frame it comes from byte 2 of each pixel.
  const int c_r = src.order == PixelOrder::BGR ? 2 : 0, c_b = 2 - c_r;
  const bool same_size = lb.resized_width == lb.src_width && lb.resized_height == lb.src_height;
  const int right = W - lb.resized_width - lb.pad_left;

  auto do_rows = [&](int y_begin, int y_end) {
    for (int y = y_begin; y < y_end; ++y) {
      float* r = dst + static_cast<std::ptrdiff_t>(y) * W;
      float* g = r + plane;
      float* b = g + plane;
      const int ry = y - lb.pad_top;
      if (ry < 0 || ry >= lb.resized_height) {
        fill(r, W, kPad);
        fill(g, W, kPad);
        fill(b, W, kPad);
        continue;
      }
      fill(r, lb.pad_left, kPad);
      fill(g, lb.pad_left, kPad);
      fill(b, lb.pad_left, kPad);
      fill(r + lb.pad_left + lb.resized_width, right, kPad);
      fill(g + lb.pad_left + lb.resized_width, right, kPad);
      fill(b + lb.pad_left + lb.resized_width, right, kPad);
      r += lb.pad_left;
      g += lb.pad_left;
      b += lb.pad_left;
      const int n = lb.resized_width;
      if (same_size) {
        const std::uint8_t* s = src.data + static_cast<std::ptrdiff_t>(ry) * src.row_stride;
        for (int x = 0; x < n; ++x) {
          r[x] = static_cast<float>(s[3 * x + c_r]) * kScale;
          g[x] = static_cast<float>(s[3 * x + 1]) * kScale;
          b[x] = static_cast<float>(s[3 * x + c_b]) * kScale;
        }
        continue;
      }
      const std::uint8_t* s0 = src.data + static_cast<std::ptrdiff_t>(plan.y0_[ry]) * src.row_stride;
      const std::uint8_t* s1 = src.data + static_cast<std::ptrdiff_t>(plan.y1_[ry]) * src.row_stride;
      const float wy = plan.wy_[ry];
      const int* x0 = plan.x0_.data();
      const int* x1 = plan.x1_.data();
      const float* wx = plan.wx_.data();
      auto lerp = [&](int xa, int xb, float w, int c) {
        const float t = static_cast<float>(s0[xa + c]) + (static_cast<float>(s0[xb + c]) - s0[xa + c]) * w;
        const float u = static_cast<float>(s1[xa + c]) + (static_cast<float>(s1[xb + c]) - s1[xa + c]) * w;
        return (t + (u - t) * wy) * kScale;
      };
      for (int x = 0; x < n; ++x) {
        r[x] = lerp(x0[x], x1[x], wx[x], c_r);
        g[x] = lerp(x0[x], x1[x], wx[x], 1);
        b[x] = lerp(x0[x], x1[x], wx[x], c_b);
      }
    }
  };
  // ~40 rows per task: enough work to amortise TBB's scheduling, enough tasks to balance 2-8 cores.
  tbb::parallel_for(tbb::blocked_range<int>(0, H, 40),
                    [&](const tbb::blocked_range<int>& rg) { do_rows(rg.begin(), rg.end()); });
}

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
            return static_cast<float>(src.data[static_cast<std::ptrdiff_t>(yy) * src.row_stride + 3 * xx + sc]);
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
