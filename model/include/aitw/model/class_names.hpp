#pragma once
// Class names of a model: Ultralytics' `names` metadata, or a names file beside the model.
#include <string>
#include <vector>

namespace aitw::model {

// Parses Ultralytics' `names` metadata, a Python dict literal: {0: 'person', 1: 'bicycle', ...}. Empty when
// the ids are not 0..n-1.
std::vector<std::string> parse_names_dict(const std::string& text);
// Reads a names file: one class name per line. Empty when it cannot be read.
std::vector<std::string> read_names_file(const std::string& path);
// The names file (coco80.names) beside the model, else in the model folders (lookup.hpp), or "".
std::string find_names_file(const std::string& model_path);

}  // namespace aitw::model
