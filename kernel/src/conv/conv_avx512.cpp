// AVX-512 micro-kernels: 8 output channels x 3 zmm of pixels (24 accumulators of 32 registers; per input
// channel and tap 3 loads and 8 broadcasts feed 24 FMAs). Compiled for AVX-512 inside this file only and
// picked at run time (conv.cpp); the rest of the binary keeps the x86-64 baseline.
#include "conv_internal.hpp"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#include <algorithm>
#include <chrono>

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

// n rounds of 12 independent FMA chains (enough to fill two pipes of 4-6 cycles' latency), 512- or 256-bit;
// the sum keeps them live.
__attribute__((noinline)) float fma_chains_512(int n) {
  __m512 a[12];
  for (int k = 0; k < 12; ++k) a[k] = _mm512_set1_ps(1.f + 1e-3f * k);
  const __m512 m = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
  for (int i = 0; i < n; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) a[k] = _mm512_fmadd_ps(a[k], m, c);
  for (int k = 1; k < 12; ++k) a[0] = _mm512_add_ps(a[0], a[k]);
  float t[16];
  _mm512_storeu_ps(t, a[0]);  // (not _mm512_reduce_add_ps: GCC 12 warns in it, PR 105593)
  float sum = 0.f;
  for (float v : t) sum += v;
  return sum;
}
__attribute__((noinline)) float fma_chains_256(int n) {
  __m256 a[12];
  for (int k = 0; k < 12; ++k) a[k] = _mm256_set1_ps(1.f + 1e-3f * k);
  const __m256 m = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  for (int i = 0; i < n; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) a[k] = _mm256_fmadd_ps(a[k], m, c);
  for (int k = 1; k < 12; ++k) a[0] = _mm256_add_ps(a[0], a[k]);
  float t[8];
  _mm256_storeu_ps(t, a[0]);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet set = make_kernel_set("avx512");
  return &set;
}

double avx512_fma_width_ratio() {
  using clock = std::chrono::steady_clock;
  constexpr int kRounds = 4000;                       // 48 K FMAs: ~10-25 us each way
  volatile float sink = fma_chains_512(8 * kRounds);  // wakes the 512-bit units and the clock up first
  const auto best = [&](float (*f)(int)) {
    double t = 1e9;
    for (int r = 0; r < 9; ++r) {  // the best of nine: a try the scheduler interrupted is the slowest
      const auto t0 = clock::now();
      sink = f(kRounds);
      t = std::min(t, std::chrono::duration<double>(clock::now() - t0).count());
    }
    return t;
  };
  const double t512 = best(fma_chains_512), t256 = best(fma_chains_256);
  (void)sink;
  return t256 > 0 ? t512 / t256 : 0.;
}

}  // namespace aitw::kernel::conv_detail
#pragma GCC pop_options

#else
namespace aitw::kernel::conv_detail {
const KernelSet* avx512_kernels() {
  return nullptr;
}
double avx512_fma_width_ratio() {
  return 0.;
}
}  // namespace aitw::kernel::conv_detail
#endif
