#pragma once
#include <stdexcept>

namespace aitw::model {

// Every problem with a model file or reference: the message names the file (or reference) and what was not
// found.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace aitw::model
