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

// n rounds of 12 independent FMA chains (enough to fill two pipes of 4-6 cycles' latency) on vectors of type
// W (__m512 or __m256, GCC vectors of floats), `fma` their multiply-add; the sum keeps them live.
template <class W, class Fma>
__attribute__((noinline)) float fma_chains(int n, Fma fma) {
  W a[12];
  for (int k = 0; k < 12; ++k) a[k] = W{} + (1.f + 1e-3f * k);
  const W m = W{} + 0.9999f, c = W{} + 1e-4f;
  for (int i = 0; i < n; ++i)
#pragma GCC unroll 12
    for (int k = 0; k < 12; ++k) a[k] = fma(a[k], m, c);
  for (int k = 1; k < 12; ++k) a[0] += a[k];
  float sum = 0.f;
  for (std::size_t i = 0; i < sizeof(W) / sizeof(float); ++i) sum += a[0][i];
  return sum;
}
// (Function objects, not lambdas: a lambda's conversion to a function pointer returns a vector by value
// under the baseline ABI, which GCC warns about.)
struct Fma512 {
  __attribute__((always_inline)) __m512 operator()(__m512 a, __m512 b, __m512 c) const {
    return _mm512_fmadd_ps(a, b, c);
  }
};
struct Fma256 {
  __attribute__((always_inline)) __m256 operator()(__m256 a, __m256 b, __m256 c) const {
    return _mm256_fmadd_ps(a, b, c);
  }
};
float fma_chains_512(int n) {
  return fma_chains<__m512>(n, Fma512{});
}
float fma_chains_256(int n) {
  return fma_chains<__m256>(n, Fma256{});
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
