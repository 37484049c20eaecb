#pragma once
// Fused preprocessing: uint8 frame (HWC, BGR or RGB, any row stride) -> letterboxed float NCHW RGB input
// in one pass: bilinear resize (OpenCV INTER_LINEAR sample positions), pad 114, channel order, x1/255,
// HWC->CHW. Replaces cv::resize + copyMakeBorder + blobFromImage(swapRB), which touch every pixel 4-5 times
// and allocate on every frame.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aitw/kernel/letterbox.hpp"

namespace aitw::kernel {

enum class PixelOrder { BGR, RGB };

struct ImageView {
  const std::uint8_t* data = nullptr;
  int width = 0, height = 0;
  std::ptrdiff_t row_stride = 0;  // bytes between rows (>= 3 * width)
  PixelOrder order = PixelOrder::BGR;
};

// Resize coefficients for one geometry, owned by the caller and rebuilt only when the geometry changes.
class PreprocessPlan {
 public:
  // Returns true when it had to rebuild (a new frame or input size).
  bool prepare(const LetterboxParams& lb);
  const LetterboxParams& letterbox() const { return lb_; }

 private:
  friend void preprocess_letterbox(const ImageView&, PreprocessPlan&, float*);
  LetterboxParams lb_{};
  bool valid_ = false;
  std::vector<int> x0_, x1_;    // byte offsets of the left/right source pixel per output column
  std::vector<float> wx_;       // weight of the right pixel
  std::vector<int> y0_, y1_;    // source rows per output row of the resized region
  std::vector<float> wy_;
};

// Writes 3 * dst_height * dst_width floats (planes R, G, B) to dst. `plan` must be prepared for the
// frame's geometry. Parallel over rows (TBB).
void preprocess_letterbox(const ImageView& src, PreprocessPlan& plan, float* dst);

// Straightforward per-pixel version kept as the reference the fast path is tested against.
void preprocess_letterbox_reference(const ImageView& src, const LetterboxParams& lb, float* dst);

}  // namespace aitw::kernel
