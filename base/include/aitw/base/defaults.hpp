#pragma once
// Product defaults that more than one command or library needs.
#include <string_view>

namespace aitw {

// The model used when none is named (detect, serve's Init without a model, replay, bench).
inline constexpr std::string_view kDefaultModel = "yolo11n";

}  // namespace aitw
