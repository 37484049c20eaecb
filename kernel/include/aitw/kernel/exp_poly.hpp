#pragma once
// aitw's scalar exp polynomial (Cephes expf: range reduction by ln 2 split in two, degree-6 polynomial),
// generic over the float type, behind fast_math.hpp's fast_exp (sigmoid, softmax, the AitwSiLU layer). The
// convolutions' fused SiLU has its own shorter one (kernel/src/conv/conv_microkernel.hpp). Static and
// without #include so that a file compiled for another ISA may include it.
namespace aitw::kernel::exp_detail {

// For x clamped to [-87, 88] (NaN takes the lower bound: the integer conversion of n would be undefined
// for it): returns p with exp(x) = p * 2^n, and n (an integer-valued F).
template <class F>
static inline __attribute__((always_inline)) F exp_reduced(F x, F& n) {
  x = x > -87.f ? x : F{} - 87.f;
  x = x < 88.f ? x : F{} + 88.f;
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  n = (x * 1.44269504088896341f + kMagic) - kMagic;
  F r = x - n * 0.693359375f;  // ln2 split in two for an exact reduction (Cephes C1, C2)
  r = r + n * 2.12194440e-4f;
  F y = F{} + 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  return y * r * r + r + 1.f;
}

}  // namespace aitw::kernel::exp_detail
