#pragma once
// Where a model reference (`--model`, Init.model) leads: a path, a registry reference, or a name found in
// the model folders.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aitw/model/error.hpp"

namespace aitw::model {

// Where models are looked for, in order: $AITW_MODEL_DIR, ./models, ../shared/models.
std::vector<std::string> model_search_dirs();
// Resolves --model / Init.model: an existing path, a reference the installed resolver knows (the
// registry: name or name@version), or a name (yolo11n, yolov8n.onnx) found in the search dirs.
// Throws ModelError listing where it looked and how to get a model.
std::string resolve_model_path(const std::string& spec, bool use_resolver = true);
// Installed by the application (tools/) so that this layer need not know the registry: returns a local
// path for `spec`, or nullopt to fall back to the search dirs. May throw ModelError (e.g. checksum).
void set_model_resolver(std::function<std::optional<std::string>(const std::string& spec)> resolver);

}  // namespace aitw::model
