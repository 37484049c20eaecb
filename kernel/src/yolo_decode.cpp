#include "aitw/kernel/yolo_decode.hpp"

#include "aitw/kernel/fast_math.hpp"
#include "simd_dispatch.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <Eigen/Core>

namespace aitw::kernel {
namespace {

float sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}

// The threshold in logit space: sigmoid(x) > conf  <=>  x > log(conf / (1 - conf)).
float logit(float conf) {
  if (conf <= 0.f) return -std::numeric_limits<float>::infinity();
  if (conf >= 1.f) return std::numeric_limits<float>::infinity();
  return std::log(conf / (1.f - conf));
}

// Expected bin index under the softmax of reg_max logits spaced `step` floats apart.
float dfl_side(const float* bins, std::ptrdiff_t step, int reg_max) {
  float m = bins[0];
  for (int b = 1; b < reg_max; ++b) m = std::max(m, bins[b * step]);
  float sum = 0.f, weighted = 0.f;
  for (int b = 0; b < reg_max; ++b) {
    const float e = std::exp(bins[b * step] - m);
    sum += e;
    weighted += e * static_cast<float>(b);
  }
  return weighted / sum;
}

// Best class logit and its class for cells [begin, end), channel-major: each pass streams one contiguous
// plane, so the loop vectorises. The class index is blended through a mask rather than `better ? c :
// bc[i]`: GCC 12 if-converts that select only inside a target_clones function, so on aarch64 (and x86
// without clones) the ternary form stayed scalar ("control flow in loop"); the mask form is NEON there.
AITW_TARGET_CLONES void best_class_logit(const float* cls, int hw, int num_classes, const std::uint8_t* mask,
                                         int begin, int end, float* bl, int* bc) {
  std::fill(bl + begin, bl + end, -std::numeric_limits<float>::infinity());
  std::fill(bc + begin, bc + end, -1);
  for (int c = 0; c < num_classes; ++c) {
    if (mask && !mask[c]) continue;
    const float* plane = cls + static_cast<std::ptrdiff_t>(c) * hw;
    for (int i = begin; i < end; ++i) {
      const float v = plane[i];
      const float b = bl[i];
      const int better = -static_cast<int>(v > b);  // all ones or zero
      bl[i] = v > b ? v : b;
      bc[i] = (bc[i] & ~better) | (c & better);
    }
  }
}

void validate(const HeadLevelView& level, const HeadLayout& layout) {
  if (!level.data || level.height <= 0 || level.width <= 0 || level.stride <= 0 || layout.reg_max <= 0 ||
      layout.num_classes <= 0)
    throw std::invalid_argument("decode_yolo_level: empty level or layout");
}

void emit(const HeadLevelView& level, const HeadLayout& layout, const LetterboxParams& lb, int cell,
          float score, int class_id, std::vector<Detection>& out) {
  const std::ptrdiff_t hw = static_cast<std::ptrdiff_t>(level.height) * level.width;
  const float* p = level.data + cell;
  const float l = dfl_side(p, hw, layout.reg_max);
  const float t = dfl_side(p + layout.reg_max * hw, hw, layout.reg_max);
  const float r = dfl_side(p + 2 * layout.reg_max * hw, hw, layout.reg_max);
  const float b = dfl_side(p + 3 * layout.reg_max * hw, hw, layout.reg_max);
  const float s = static_cast<float>(level.stride);
  const float cx = (static_cast<float>(cell % level.width) + 0.5f) * s;
  const float cy = (static_cast<float>(cell / level.width) + 0.5f) * s;
  Detection d{cx - l * s, cy - t * s, cx + r * s, cy + b * s, score, class_id};
  unletterbox_box(lb, d.x1, d.y1, d.x2, d.y2);
  out.push_back(d);
}

}  // namespace

std::size_t decode_yolo_level_reference(const HeadLevelView& level, const HeadLayout& layout,
                                        const DecodeParams& params, const LetterboxParams& lb,
                                        std::vector<Detection>& out) {
  validate(level, layout);
  const std::size_t before = out.size();
  const int hw = level.height * level.width;
  const float* cls = level.data + static_cast<std::ptrdiff_t>(4 * layout.reg_max) * hw;
  for (int cell = 0; cell < hw; ++cell) {
    int best = -1;
    float best_score = -1.f;
    for (int c = 0; c < layout.num_classes; ++c) {
      if (params.class_mask && !params.class_mask[c]) continue;
      const float score = sigmoid(cls[static_cast<std::ptrdiff_t>(c) * hw + cell]);
      if (params.multi_label) {
        if (score > params.conf_threshold) emit(level, layout, lb, cell, score, c, out);
      } else if (score > best_score) {
        best_score = score;
        best = c;
      }
    }
    if (!params.multi_label && best >= 0 && best_score > params.conf_threshold)
      emit(level, layout, lb, cell, best_score, best, out);
  }
  return out.size() - before;
}

std::size_t decode_yolo_level(const HeadLevelView& level, const HeadLayout& layout,
                              const DecodeParams& params, const LetterboxParams& lb,
                              std::vector<Detection>& out) {
  validate(level, layout);
  const std::size_t before = out.size();
  const int hw = level.height * level.width;
  const int reg = layout.reg_max;
  const float thr = logit(params.conf_threshold);
  const float* cls = level.data + static_cast<std::ptrdiff_t>(4 * reg) * hw;

  // 1. Best class logit per cell; cells are split across threads when the level is large enough to pay.
  thread_local std::vector<float> best_logit;
  thread_local std::vector<int> best_class;
  best_logit.resize(hw);
  best_class.resize(hw);
  float* bl = best_logit.data();
  int* bc = best_class.data();
  auto class_max = [&](int begin, int end) {
    best_class_logit(cls, hw, layout.num_classes, params.class_mask, begin, end, bl, bc);
  };
  // Isolated: while this thread waits for the loop, TBB must not hand it an outer task that decodes
  // another level, which would reuse this thread's thread_local buffers underneath us.
  if (hw >= 2048)
    tbb::this_task_arena::isolate([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, hw, 1024),
                        [&](const tbb::blocked_range<int>& r) { class_max(r.begin(), r.end()); });
    });
  else
    class_max(0, hw);

  // 2. Survivors: (cell, class, logit), in cell order.
  struct Survivor {
    int cell, class_id;
    float logit;
  };
  thread_local std::vector<Survivor> survivors;
  survivors.clear();
  for (int cell = 0; cell < hw; ++cell) {
    if (!(bl[cell] > thr)) continue;
    if (!params.multi_label) {
      survivors.push_back({cell, bc[cell], bl[cell]});
      continue;
    }
    for (int c = 0; c < layout.num_classes; ++c) {
      if (params.class_mask && !params.class_mask[c]) continue;
      const float x = cls[static_cast<std::ptrdiff_t>(c) * hw + cell];
      if (x > thr) survivors.push_back({cell, c, x});
    }
  }
  if (survivors.empty()) return 0;

  // 3. DFL for all survivors at once. The gather walks plane by plane (survivors are in cell order, so
  //    each plane is read forward) into a [4*reg_max, n] block; every step after it is a vectorised
  //    operation along the survivors (Eigen SIMD: SSE/AVX on x86-64, NEON on aarch64).
  using Block = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  thread_local Block bins;
  thread_local Block dist;
  const int n = static_cast<int>(survivors.size());
  bins.resize(4 * reg, n);
  dist.resize(4, n);
  for (int j = 0; j < 4 * reg; ++j) {
    const float* plane = level.data + static_cast<std::ptrdiff_t>(j) * hw;
    float* row = &bins(j, 0);
    for (int k = 0; k < n; ++k) row[k] = plane[survivors[k].cell];
  }
  // Row-wise passes only: each row is n contiguous floats, so max, subtract, exp and the sums all
  // vectorise along the survivors (Eigen's colwise() reductions on a row-major block walk columns and
  // do not). exp is fast_exp: Eigen's SSE2 exp is barely faster than scalar expf.
  thread_local Eigen::ArrayXf m, sum, acc;
  m.resize(n);
  sum.resize(n);
  acc.resize(n);
  using Row = Eigen::Map<Eigen::ArrayXf>;
  for (int side = 0; side < 4; ++side) {
    float* base = &bins(side * reg, 0);
    auto row = [&](int r) { return Row(base + static_cast<std::ptrdiff_t>(r) * n, n); };
    m = row(0);
    for (int r = 1; r < reg; ++r) m = m.max(row(r));
    for (int r = 0; r < reg; ++r) row(r) -= m;
    exp_inplace(base, static_cast<std::size_t>(reg) * n);
    sum.setZero();
    acc.setZero();
    for (int r = 0; r < reg; ++r) {
      sum += row(r);
      acc += static_cast<float>(r) * row(r);
    }
    dist.row(side) = (acc / sum).transpose();
  }

  const float s = static_cast<float>(level.stride);
  for (int k = 0; k < n; ++k) {
    const Survivor& v = survivors[k];
    const float cx = (static_cast<float>(v.cell % level.width) + 0.5f) * s;
    const float cy = (static_cast<float>(v.cell / level.width) + 0.5f) * s;
    Detection d{cx - dist(0, k) * s, cy - dist(1, k) * s, cx + dist(2, k) * s,
                cy + dist(3, k) * s, sigmoid(v.logit),    v.class_id};
    unletterbox_box(lb, d.x1, d.y1, d.x2, d.y2);
    out.push_back(d);
  }
  return out.size() - before;
}

}  // namespace aitw::kernel
