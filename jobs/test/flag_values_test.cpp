// The spellings of flag values the CLI's validators are built on (tools/commands/).
#include "aitw/jobs/flag_values.hpp"
#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"

#include <gtest/gtest.h>

namespace aitw::jobs {
namespace {

TEST(Imgsz, LongerSideOrExactInput) {
  pipeline::DetectorConfig cfg;
  cfg.fixed_input = pipeline::InputSize{320, 320};
  ASSERT_TRUE(apply_imgsz("480", cfg));
  EXPECT_EQ(cfg.imgsz, 480);
  EXPECT_FALSE(cfg.fixed_input);
  for (const char* hw : {"640x480", "640X480", "640,480", "640 x 480"}) {
    SCOPED_TRACE(hw);
    pipeline::DetectorConfig c;
    ASSERT_TRUE(apply_imgsz(hw, c));
    ASSERT_TRUE(c.fixed_input);
    EXPECT_EQ(c.fixed_input->height, 640);
    EXPECT_EQ(c.fixed_input->width, 480);
  }
}

TEST(Imgsz, RefusedWithTheValueAndLeavesTheConfig) {
  for (const char* bad : {"630", "0", "8224", "99999999999", "64x99999999999", "abc", "640x", "-640", ""}) {
    SCOPED_TRACE(bad);
    pipeline::DetectorConfig cfg;
    std::string error;
    EXPECT_FALSE(apply_imgsz(bad, cfg, &error));
    EXPECT_NE(error.find(std::string("'") + bad + "'"), std::string::npos) << error;
    EXPECT_EQ(cfg.imgsz, 640);
    EXPECT_FALSE(cfg.fixed_input);
  }
}

TEST(Dimensions, TwoPositiveSizes) {
  const auto d = parse_dimensions("320x240", "WxH");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->first, 320);
  EXPECT_EQ(d->second, 240);
  for (const char* bad : {"12", "0x240", "320x-1", "320x240x2", "x240", "320x", "axb", "99999999999x1", ""}) {
    SCOPED_TRACE(bad);
    std::string error;
    EXPECT_FALSE(parse_dimensions(bad, "WxH", &error));
    EXPECT_NE(error.find("WxH"), std::string::npos) << error;
    EXPECT_NE(error.find(std::string("'") + bad + "'"), std::string::npos) << error;
  }
}

TEST(Duration, UnitsAndSecondsByDefault) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("60s"), milliseconds(60000));
  EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120000));
  EXPECT_EQ(parse_duration("1.5"), milliseconds(1500));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("30d"), milliseconds(30LL * 86400000));
  for (const char* bad : {"0", "0s", "-5s", "5x", "5 s", "s", "", "1e11s", "nan"}) {
    SCOPED_TRACE(bad);
    std::string error;
    EXPECT_FALSE(parse_duration(bad, &error));
    EXPECT_NE(error.find(std::string("'") + bad + "'"), std::string::npos) << error;
  }
}

TEST(Label, KeyAndValue) {
  const auto l = parse_label("site=gate-3=b");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->first, "site");
  EXPECT_EQ(l->second, "gate-3=b");
  EXPECT_EQ(parse_label("empty=")->second, "");
  std::string error;
  EXPECT_FALSE(parse_label("site", &error));
  EXPECT_NE(error.find("expected k=v, got 'site'"), std::string::npos) << error;
  EXPECT_FALSE(parse_label("=v"));
}

TEST(Precision, Fp32Bf16OrAutoByTheCpu) {
  EXPECT_EQ(parse_precision("fp32"), kernel::ConvPrecision::Fp32);
  EXPECT_EQ(parse_precision("bf16"), kernel::ConvPrecision::Bf16);
  const bool bf16 = kernel::conv_bf16_supported() && kernel::aitw_convolution_active();
  EXPECT_EQ(parse_precision("auto"), bf16 ? kernel::ConvPrecision::Bf16 : kernel::ConvPrecision::Fp32);
  std::string error;
  EXPECT_FALSE(parse_precision("fp16", &error));
  EXPECT_EQ(error, "'fp16' is not fp32, bf16 or auto");
  EXPECT_FALSE(parse_precision("BF16"));
}

}  // namespace
}  // namespace aitw::jobs
