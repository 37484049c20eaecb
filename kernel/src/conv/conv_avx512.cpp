// AVX-512 micro-kernels: 8 output channels x 3 zmm of pixels (24 accumulators of 32 registers; per input
// channel and tap 3 loads and 8 broadcasts feed 24 FMAs). Compiled for AVX-512 inside this file only and
// picked at run time (conv.cpp); the rest of the binary keeps the x86-64 baseline.
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx512f,fma")
namespace aitw::kernel::conv_detail {
namespace {

constexpr int kVecBytes = 64, kCoBlock = 8, kVectors = 3;
inline __attribute__((always_inline)) __m512 fma(__m512 a, __m512 b, __m512 c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline __attribute__((always_inline)) __m512 bcast(const float* p) {
  return _mm512_set1_ps(*p);
}
#include "conv_transpose16.hpp"
#define AITW_SILU_SCALEF  // SiLU with vrndscaleps / vscalefps (conv_microkernel.hpp)
#include "conv_microkernel.hpp"

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet set = make_kernel_set("avx512");
  return &set;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx512_kernels() {
  return nullptr;
}
}  // namespace aitw::kernel::conv_detail
#endif
