#include "aitw/kernel/fast_math.hpp"

#include "simd_dispatch.hpp"

namespace aitw::kernel {

AITW_TARGET_CLONES void exp_inplace(float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] = fast_exp(x[i]);
}

AITW_TARGET_CLONES void silu(const float* in, float* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] / (1.f + fast_exp(-in[i]));
}

}  // namespace aitw::kernel
