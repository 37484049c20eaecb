#pragma once
// Where a model reference (`--model`, Init.model) leads. An explicit path is used as is. A bare name
// (`yolo11n`, `yolov8n.onnx`, `det@2`) is looked up, in this order, in
//   1. the folders the application installed (set_model_dirs: `--model-dir`),
//   2. $AITW_MODEL_DIR,
//   3. $XDG_DATA_HOME/aitw/models (default ~/.local/share/aitw/models),
//   4. the registry resolver the application installed (set_model_resolver).
// Never relative to the working directory: what a worker loads must not depend on where it was started.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "aitw/model/error.hpp"

namespace aitw::model {

// False for a bare name: [A-Za-z0-9][A-Za-z0-9._-]{0,127}, optionally @VERSION (1 to 12 digits); true for
// anything else. A bare name has no '/' and does not start with '.', so it can only name a file inside the
// folder it is looked up in: this is the one rule the CLI, the worker's --model-dir confinement and the
// registry's references share.
bool is_model_path(const std::string& ref);

// The application's model folders (`--model-dir`, repeatable), searched before any other; process-wide.
void set_model_dirs(std::vector<std::string> dirs);
// The folders a bare name is looked up in, in order (1-3 above; the ones that are not set are left out).
std::vector<std::string> model_search_dirs();

// Resolves a model reference to a file: an existing path, NAME.onnx (NAME for `yolov8n.onnx`) in the first
// folder that has it, else what the resolver returns (skipped when `use_resolver` is false). Throws
// ModelError listing every place it looked and how to get a model.
std::string resolve_model_path(const std::string& ref, bool use_resolver = true);
// Installed by the application (tools/) so that this layer need not know the registry: returns a local
// path for `ref`, or nullopt when the registry does not have it. May throw ModelError (e.g. checksum).
void set_model_resolver(std::function<std::optional<std::string>(const std::string& ref)> resolver);
// Whether one is installed (a registry is configured).
bool has_model_resolver();

}  // namespace aitw::model
