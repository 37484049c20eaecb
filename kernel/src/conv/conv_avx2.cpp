// AVX2+FMA micro-kernels: 6 output channels x 2 ymm of pixels (12 accumulators, 2 loads and a broadcast
// of the 16 registers; MLAS's AVX2 SGEMM kernel uses the same 6 x 16 tile). Compiled for AVX2 inside this
// file only and picked at run time (conv.cpp).
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace aitw::kernel::conv_detail {
namespace {

constexpr int kVecBytes = 32, kCoBlock = 6, kVectors = 2;
inline __attribute__((always_inline)) __m256 fma(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline __attribute__((always_inline)) __m256 bcast(const float* p) {
  return _mm256_broadcast_ss(p);
}
#define AITW_SILU_MINMAX256  // the SiLU's clamp with vmaxps / vminps (conv_microkernel.hpp)
#include "conv_microkernel.hpp"

}  // namespace

const KernelSet* avx2_kernels() {
  static const KernelSet set = [] {
    KernelSet k = make_kernel_set("avx2");
    // No tiles over output channels: with 16 registers they hold 6 pixels x 2 vectors, and the broadcasts
    // outnumber the weight loads' reuse (3x3 stride 2 128 -> 128 at 60 x 80, 2 threads: 3.0 ms vs 2.26 on
    // the phase planes). SSE2 (also 16 registers, but 4 lanes against 8) wins with them: 6.5 vs 8.9 ms.
    for (int stride = 0; stride < 2; ++stride)
      for (int v = 0; v < 4; ++v) k.oc_tile[stride][v] = k.oc_half[stride][v] = nullptr;
    k.oc_one = nullptr;
    return k;
  }();
  return &set;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx2_kernels() {
  return nullptr;
}
}  // namespace aitw::kernel::conv_detail
#endif
