#pragma once
// The parsed stock graph behind an OnnxModel, shared by the loader (onnx_model.cpp) and the adapter
// (adapter.cpp). Private to model/.
#include <string>

#include "aitw/model/onnx_model.hpp"
#include "onnx.pb.h"

namespace aitw::model {

struct OnnxModel::Impl {
  aitw::onnx::ModelProto model;  // as parsed: adapt() rewrites a copy for each input size
  std::string input_name;        // the image input
};

}  // namespace aitw::model
