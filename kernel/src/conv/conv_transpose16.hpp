// The 16 x 16 float transpose of the AVX-512 tiles over output channels (conv_microkernel.hpp's oc_store),
// shared by the AVX-512 ISA files (conv_avx512.cpp, conv_avx512bf16.cpp). Included inside their anonymous
// namespace after the target ISA is on, like conv_microkernel.hpp, and for the same reason: no include here.
// r[k] lane p <- r[p] lane k: the 3x3 tiles over output channels store their 16-channel vectors as rows of
// pixels (oc_store). Unpacks of floats, then of pairs, then two rounds of 128-bit lane shuffles (vunpcklps,
// vunpcklpd, vshuff32x4); written as generic shuffles because GCC 12's intrinsics for them warn of an
// uninitialised pass-through operand (GCC PR 105593).
#define AITW_OC_TRANSPOSE
typedef float V16 __attribute__((vector_size(64)));
inline __attribute__((always_inline)) void transpose16(V16 (&r)[16]) {
  V16 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12,
                                       28, 13, 29);
    t[2 * i + 1] = __builtin_shufflevector(r[2 * i], r[2 * i + 1], 2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11, 27,
                                           14, 30, 15, 31);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12,
                                       13, 28, 29);
    r[4 * i + 1] = __builtin_shufflevector(t[4 * i], t[4 * i + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27,
                                           14, 15, 30, 31);
    r[4 * i + 2] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24,
                                           25, 12, 13, 28, 29);
    r[4 * i + 3] = __builtin_shufflevector(t[4 * i + 1], t[4 * i + 3], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26,
                                           27, 14, 15, 30, 31);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = __builtin_shufflevector(r[i], r[i + 4], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    t[i + 4] =
        __builtin_shufflevector(r[i], r[i + 4], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    t[i + 8] = __builtin_shufflevector(r[i + 8], r[i + 12], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25,
                                       26, 27);
    t[i + 12] = __builtin_shufflevector(r[i + 8], r[i + 12], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28,
                                        29, 30, 31);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    r[i] = __builtin_shufflevector(t[i], t[i + 8], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27);
    r[i + 8] =
        __builtin_shufflevector(t[i], t[i + 8], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  }
}
inline __attribute__((always_inline)) void oc_transpose(V16 (&r)[16]) {
  transpose16(r);
}
// kNP floats of v to d (masked), plus as many of res (null: none).
template <int kNP>
inline __attribute__((always_inline)) void oc_put(float* d, const float* res, V16 v) {
  const __mmask16 m = static_cast<__mmask16>((1u << kNP) - 1);
  if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
  _mm512_mask_storeu_ps(d, m, v);
}
