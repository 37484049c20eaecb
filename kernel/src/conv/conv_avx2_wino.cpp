// AVX2+FMA micro-kernels on 4 output channels x 3 ymm of pixels (12 accumulators, 3 loads and 4 broadcasts
// per input channel where conv_avx2.cpp's 6 x 2 tiles take 2 and 6), for the Winograd path's GEMMs and
// transforms only (KernelSet::wino of the AVX2 set). Both in one process (bench, a build with both tile
// shapes as routes), YOLO11n at 480 x 640 on a Zen 4 VM: the 28 Winograd layers 9.07 -> 8.44 ms at 2 threads,
// 15.27 -> 14.30 at one; the 1x1 layers went the other way (13.18 -> 13.85 ms: 6 x 2 stays theirs).
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace aitw::kernel::conv_detail {
namespace {

constexpr int kVecBytes = 32, kCoBlock = 4, kVectors = 3;
inline __attribute__((always_inline)) __m256 fma(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline __attribute__((always_inline)) __m256 bcast(const float* p) {
  return _mm256_broadcast_ss(p);
}
#define AITW_SILU_MINMAX256  // the SiLU's clamp with vmaxps / vminps (conv_microkernel.hpp)
#include "conv_microkernel.hpp"

}  // namespace

const KernelSet* avx2_wino_kernels() {
  static const KernelSet set = make_kernel_set("avx2-winograd");
  return &set;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx2_wino_kernels() {
  return nullptr;
}
}  // namespace aitw::kernel::conv_detail
#endif
