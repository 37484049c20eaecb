#pragma once
// Letterbox geometry: how a W×H frame is scaled and padded into the network input, and back.
// Follows Ultralytics' LetterBox / scale_boxes so boxes agree with the reference exports.
#include <cstdint>

namespace aitw::kernel {

struct InputSize {
  int height = 0;
  int width = 0;
  friend bool operator==(const InputSize&, const InputSize&) = default;
};

struct LetterboxParams {
  int src_width = 0, src_height = 0;          // the frame
  int dst_width = 0, dst_height = 0;          // the network input
  int resized_width = 0, resized_height = 0;  // the frame after scaling, before padding
  int pad_left = 0, pad_top = 0;              // where the scaled frame starts inside the input
  float scale = 1.f;                          // input pixels per frame pixel
};

// Centred letterbox of a src frame into dst (keeps the aspect ratio; pads with 114 elsewhere).
LetterboxParams letterbox_params(int src_width, int src_height, int dst_width, int dst_height);

// The smallest multiple-of-`stride` rectangle that holds the frame scaled so that its longer side is
// `long_side` (Ultralytics' rect inference): 640×480 at 640 → 480×640 with no padding.
InputSize auto_input_size(int src_width, int src_height, int long_side, int stride = 32);

// Maps a box from network-input pixels to frame pixels (no clipping).
inline void unletterbox_box(const LetterboxParams& lb, float& x1, float& y1, float& x2, float& y2) {
  const float inv = 1.f / lb.scale;
  x1 = (x1 - static_cast<float>(lb.pad_left)) * inv;
  x2 = (x2 - static_cast<float>(lb.pad_left)) * inv;
  y1 = (y1 - static_cast<float>(lb.pad_top)) * inv;
  y2 = (y2 - static_cast<float>(lb.pad_top)) * inv;
}

}  // namespace aitw::kernel
