#pragma once
// Fused preprocessing: uint8 frame (HWC, BGR or RGB, any row stride) -> letterboxed float NCHW RGB input:
// pad 114, channel order, x1/255 and HWC->CHW in one vectorised, TBB-parallel pass; an exact 2x downscale
// (1280x720 -> 640x360) is fused into it (an AVX2/NEON kernel computing in registers the rounded 2x2 mean
// that cv::resize itself computes there, portable loops elsewhere: 0.043 ms, against 0.198 ms for
// cv::resize then our pass). Any other scaled frame is first resized with cv::resize INTER_LINEAR into the
// plan's buffer: OpenCV's fixed-point SIMD resize beat our gather-based bilinear (0.57 vs 0.41 ms at
// 1280x720, measured), and it keeps the result bit-identical to the OpenCV path.
// Replaces cv::resize + copyMakeBorder + blobFromImage(swapRB), which make three more full passes and
// allocate on every frame.
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
  std::vector<std::uint8_t> resized_;  // the scaled frame (HWC), empty when not needed
  bool half_ = false;                  // exact 2x downscale, fused into the conversion pass
};

// Writes 3 * dst_height * dst_width floats (planes R, G, B) to dst. `plan` must be prepared for the
// frame's geometry. Parallel over rows (TBB).
void preprocess_letterbox(const ImageView& src, PreprocessPlan& plan, float* dst);

namespace detail {

// The exact-2x kernel of one output row, exposed so that tests can run each implementation on any width:
// r, g, b get n floats each, the rounded 2x2 means x 1/255 of source rows s0 and s1 (2n pixels each).
enum class HalfRowKernel { Portable, Simd };
// Whether this build and CPU have the SIMD kernel (AVX2 on x86-64, NEON on aarch64); preprocess_letterbox
// uses it then, the portable loops otherwise.
bool has_simd_half_row();
// Throws std::invalid_argument for HalfRowKernel::Simd where has_simd_half_row() is false.
void half_row(HalfRowKernel kernel, const std::uint8_t* s0, const std::uint8_t* s1, int n, PixelOrder order,
              float* r, float* g, float* b);

}  // namespace detail

// Straightforward per-pixel float bilinear version, independent of OpenCV, kept as the reference the fast
// path is tested against (within 1/255: OpenCV's resize rounds to uint8 with fixed-point weights).
void preprocess_letterbox_reference(const ImageView& src, const LetterboxParams& lb, float* dst);

}  // namespace aitw::kernel
