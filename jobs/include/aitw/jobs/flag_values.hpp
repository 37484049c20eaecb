#pragma once
// Values as the `aitw` commands spell them on the command line. The CLI's validators are built on these
// (tools/commands/), so that a bad value is a usage error naming the flag and the value, and the job gets
// numbers. Each returns nullopt / false with `error` saying what is wrong, never throws.
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "aitw/pipeline/detector.hpp"

namespace aitw::jobs {

// --imgsz: "N" (the longer side: the smallest multiple-of-32 rectangle holding the frame) or "HxW" (exactly
// that input; "HXW" and "H,W" too), every size a positive multiple of 32 up to 8192. Sets cfg.imgsz (and
// clears cfg.fixed_input) or cfg.fixed_input; leaves `cfg` as it was on an error.
bool apply_imgsz(const std::string& spec, pipeline::DetectorConfig& cfg, std::string* error = nullptr);

// Two positive sizes "AxB" ("640x480"), in that order; `spelling` names them in the error ("WxH").
std::optional<std::pair<int, int>> parse_dimensions(const std::string& spec, const std::string& spelling,
                                                    std::string* error = nullptr);

// A duration: a number with the unit ms, s, m, h or d, seconds without one ("60s", "500ms", "2m", "1h",
// "1.5"); more than 0, at most 1e10 ms.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& spec,
                                                        std::string* error = nullptr);

// A label "k=v": a non-empty key, then the value (which may be empty or hold '=').
std::optional<std::pair<std::string, std::string>> parse_label(const std::string& spec,
                                                               std::string* error = nullptr);

// --precision: "fp32"; "bf16" (the convolutions' multiplies in bf16 where the CPU has AVX512_BF16, fp32
// elsewhere); "auto" = bf16 where the CPU has it and aitw's convolution runs, else fp32 (coco128 holds its
// accuracy gates in bf16 for both shared models: tests/coco128_accuracy_test.cpp).
std::optional<kernel::ConvPrecision> parse_precision(const std::string& spec, std::string* error = nullptr);

}  // namespace aitw::jobs
