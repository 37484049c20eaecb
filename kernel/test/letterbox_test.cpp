#include "aitw/kernel/letterbox.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace aitw::kernel {

TEST(Letterbox, PortraitIntoSquarePadsLeftAndRight) {
  // bus.jpg: 810x1080 -> scale 640/1080, 480x640 scaled, 80 px each side.
  const auto p = letterbox_params(810, 1080, 640, 640);
  EXPECT_FLOAT_EQ(p.scale, 640.f / 1080.f);
  EXPECT_EQ(p.resized_width, 480);
  EXPECT_EQ(p.resized_height, 640);
  EXPECT_EQ(p.pad_left, 80);
  EXPECT_EQ(p.pad_top, 0);
}

TEST(Letterbox, LandscapeIntoSquarePadsTopAndBottom) {
  // zidane.jpg: 1280x720 -> 640x360 scaled, 140 px above and below.
  const auto p = letterbox_params(1280, 720, 640, 640);
  EXPECT_EQ(p.resized_width, 640);
  EXPECT_EQ(p.resized_height, 360);
  EXPECT_EQ(p.pad_left, 0);
  EXPECT_EQ(p.pad_top, 140);
}

TEST(Letterbox, OddPaddingPutsExtraPixelBottomRight) {
  // 100x51 into 64x64: scale 0.64 -> 64x33 (32.64 rounds to 33), 31 px to split: 15 above, 16 below.
  const auto p = letterbox_params(100, 51, 64, 64);
  EXPECT_EQ(p.resized_height, 33);
  EXPECT_EQ(p.pad_top, 15);
  EXPECT_EQ(p.dst_height - p.resized_height - p.pad_top, 16);
}

TEST(Letterbox, IdentityWhenSizesMatch) {
  const auto p = letterbox_params(640, 480, 640, 480);
  EXPECT_FLOAT_EQ(p.scale, 1.f);
  EXPECT_EQ(p.resized_width, 640);
  EXPECT_EQ(p.resized_height, 480);
  EXPECT_EQ(p.pad_left, 0);
  EXPECT_EQ(p.pad_top, 0);
}

TEST(Letterbox, OnePixelFrame) {
  const auto p = letterbox_params(1, 1, 32, 32);
  EXPECT_EQ(p.resized_width, 32);
  EXPECT_EQ(p.resized_height, 32);
  EXPECT_EQ(p.pad_left, 0);
}

TEST(Letterbox, RejectsEmptySizes) {
  EXPECT_THROW(letterbox_params(0, 10, 32, 32), std::invalid_argument);
  EXPECT_THROW(letterbox_params(10, 10, 32, -1), std::invalid_argument);
}

TEST(Letterbox, UnletterboxInvertsTheMapping) {
  const auto p = letterbox_params(1280, 720, 640, 640);
  // A frame box (100,200)-(300,400) lands at scale 0.5 plus 140 px top padding.
  float x1 = 50, y1 = 240, x2 = 150, y2 = 340;
  unletterbox_box(p, x1, y1, x2, y2);
  EXPECT_FLOAT_EQ(x1, 100);
  EXPECT_FLOAT_EQ(y1, 200);
  EXPECT_FLOAT_EQ(x2, 300);
  EXPECT_FLOAT_EQ(y2, 400);
}

TEST(AutoInputSize, SmallestStrideRectangleHoldingTheFrame) {
  EXPECT_EQ(auto_input_size(640, 480, 640), (InputSize{480, 640}));    // camera frame: no padding
  EXPECT_EQ(auto_input_size(810, 1080, 640), (InputSize{640, 480}));   // bus.jpg
  EXPECT_EQ(auto_input_size(1280, 720, 640), (InputSize{384, 640}));   // 360 -> 384
  EXPECT_EQ(auto_input_size(1920, 1080, 320), (InputSize{192, 320}));  // 180 -> 192
  EXPECT_EQ(auto_input_size(1, 1, 640), (InputSize{640, 640}));
  EXPECT_EQ(auto_input_size(1000, 10, 640), (InputSize{32, 640}));  // 6.4 -> one stride row
}

}  // namespace aitw::kernel
