// The portable micro-kernels, always built and always tested: 4 (NEON: 8) output channels x 3 vectors of 4
// floats in GCC vector types, which the baseline compiles to SSE2 on x86-64 and to NEON on aarch64 (with a
// fused multiply-add there). Any other compiler target gets the same code lane by lane.
#include "conv_internal.hpp"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace aitw::kernel::conv_detail {
namespace {

// NEON has 32 registers: 8 x 3 accumulators fit; SSE2 has 16: 4 x 3.
#if defined(__aarch64__)
constexpr int kVecBytes = 16, kCoBlock = 8, kVectors = 3;
#else
constexpr int kVecBytes = 16, kCoBlock = 4, kVectors = 3;
#endif
typedef float V4 __attribute__((vector_size(16)));
inline __attribute__((always_inline)) V4 fma(V4 a, V4 b, V4 c) {
#if defined(__aarch64__)
  return vfmaq_f32(c, a, b);
#else
  return a * b + c;
#endif
}
inline __attribute__((always_inline)) V4 bcast(const float* p) {
#if defined(__aarch64__)
  return vld1q_dup_f32(p);
#else
  return V4{} + *p;
#endif
}
#include "conv_microkernel.hpp"

}  // namespace

const KernelSet* portable_kernels() {
  static const KernelSet set = make_kernel_set("portable");
  return &set;
}

}  // namespace aitw::kernel::conv_detail
