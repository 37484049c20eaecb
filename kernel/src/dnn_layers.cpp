#include "aitw/kernel/dnn_layers.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <mutex>

#include <opencv2/dnn.hpp>
#include <opencv2/dnn/all_layers.hpp>
#include <opencv2/dnn/layer.details.hpp>

#include "aitw/kernel/conv.hpp"
#include "aitw/kernel/conv_layer.hpp"
#include "aitw/kernel/fast_math.hpp"
#include "parallel.hpp"
#include "simd_dispatch.hpp"

namespace aitw::kernel {
namespace {

using cv::dnn::MatShape;

// A layer's inputs and outputs as Mats (headers over OpenCV's blobs). Not for
// lambdas to capture as structured bindings: clang before 16 (the fuzz build's 14) refuses that.
std::pair<std::vector<cv::Mat>, std::vector<cv::Mat>> layer_mats(cv::InputArrayOfArrays inputs,
                                                                 cv::OutputArrayOfArrays outputs) {
  std::pair<std::vector<cv::Mat>, std::vector<cv::Mat>> m;
  inputs.getMatVector(m.first);
  outputs.getMatVector(m.second);
  return m;
}

// f(begin, end) over [0, n) in stripes of about `grain` items, on OpenCV's parallel backend (parallel.hpp):
// the TBB arena that cv::setNumThreads sizes and the convolutions run in. These layers called
// tbb::parallel_for, which runs in the calling thread's own arena: TBB's worker left OpenCV's arena for it
// and came back after, and the convolution after each such layer paid for it (YOLO11n at 480 x 640, 2
// threads, in the forward: SPPF's cv2 0.45 -> 0.36 ms, the 1x1 after each upsampling 0.53 -> 0.39 and 0.64 ->
// 0.48; forward -0.6 ms).
template <class F>
void parallel_range(std::ptrdiff_t n, std::ptrdiff_t grain, F&& f) {
  if (n <= 0) return;
  const std::ptrdiff_t stripes = (n + grain - 1) / grain;
  parallel_for(
      cv::Range(0, static_cast<int>(n)),
      [&](const cv::Range& r) {
        f(static_cast<std::ptrdiff_t>(r.start), static_cast<std::ptrdiff_t>(r.end));
      },
      static_cast<double>(stripes));
}

class SiLULayer : public cv::dnn::ActivationLayer {
 public:
  explicit SiLULayer(const cv::dnn::LayerParams& params) { setParamsFrom(params); }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<SiLULayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    outputs.assign(1, inputs[0]);
    return true;  // may run in place
  }

  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays) override {
    auto [in, out] = layer_mats(inputs_arr, outputs_arr);
    const float* src = in[0].ptr<float>();
    float* dst = out[0].ptr<float>();
    const std::size_t n = in[0].total();
    constexpr std::size_t kChunk = 1 << 15;
    parallel_range(static_cast<std::ptrdiff_t>((n + kChunk - 1) / kChunk), 1,
                   [&](std::ptrdiff_t c0, std::ptrdiff_t c1) {
                     for (std::size_t c = c0; c != static_cast<std::size_t>(c1); ++c) {
                       const std::size_t b = c * kChunk;
                       silu(src + b, dst + b, std::min(kChunk, n - b));
                     }
                   });
  }

  // Called by a convolution that fused this activation, on its output slice: channels [cn0, cn1), `len`
  // values each, planes `plane` floats apart.
  void forwardSlice(const float* src, float* dst, int len, size_t plane, int cn0, int cn1) const override {
    for (int c = cn0; c < cn1; ++c, src += plane, dst += plane) silu(src, dst, static_cast<std::size_t>(len));
  }
};

// --- attention --------------------------------------------------------------------------------------

typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));

// Unaligned loads and stores of a vector type (a type with a lowered alignment loses it as a template
// argument, and the compiler then emits aligned moves).
// (By reference: vectors passed or returned by value change the ABI outside the targets that have them.)
template <class V>
inline __attribute__((always_inline)) void loadu(V& v, const float* p) {
  __builtin_memcpy(&v, p, sizeof(V));
}
template <class V>
inline __attribute__((always_inline)) void storeu(float* p, const V& v) {
  __builtin_memcpy(p, &v, sizeof(V));
}

// Broadcasts are written `x - V{}`: x - (+0) is x for every x, -0 included, so GCC emits one broadcast (from
// memory where x is). `V{} + x` is not an identity (+0 + -0 is +0): a scalar add, then the broadcast, two
// dependent instructions in the tiles' inner loops. AitwAttention in YOLO11n's fp32 forward, 2 threads, Zen 5
// VM, 5 alternated rounds: AVX2 clones 0.452 -> 0.376 ms, AVX-512 0.293 -> 0.284.
//
// Register tiles for the two products of the attention: kR rows x kMV vectors of accumulators, one pass over
// the reduction, in a clone with FMA (8 lanes: 12 of AVX2's 16 registers; the rows' broadcasts and a vector
// of the other operand take the rest) or with AVX-512 (16 lanes, attention_*_512). They replaced AXPY loops
// that loaded and stored a row of scores per step of the reduction and an apply that loaded 8 vectors per
// broadcast; with the softmax's maximum and sum in vector lanes and v transposed in 32-wide strips
// (vt_index), AitwAttention in YOLO11n's forward at 480 x 640 (2 heads of 300 tokens, 2 threads, Zen 4 VM,
// three paired rounds) went 0.65-0.68 -> 0.42-0.50 ms. One thread, before: scores 0.21 ms, softmax 0.41
// (its exp 0.16), apply 0.44-0.53.
// scores[n + r][m + L v ...] = scale * sum_k q[k][n + r] * kk[k][m + L v ...], L = lanes of V.
template <class V, int kR, int kMV>
inline __attribute__((always_inline)) void scores_tile(const float* q, const float* kk, int kd, int N,
                                                       float scale, int n, int m, float* scores) {
  constexpr int L = sizeof(V) / sizeof(float);
  V acc[kR][kMV] = {};
  for (int k = 0; k < kd; ++k) {
    const float* qk = q + static_cast<std::ptrdiff_t>(k) * N + n;
    const float* kr = kk + static_cast<std::ptrdiff_t>(k) * N + m;
    V x[kMV];
#pragma GCC unroll 4
    for (int v = 0; v < kMV; ++v) loadu(x[v], kr + L * v);
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) {
      const V a = qk[r] - V{};
#pragma GCC unroll 4
      for (int v = 0; v < kMV; ++v) acc[r][v] += a * x[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kMV; ++v)
      storeu(scores + static_cast<std::ptrdiff_t>(n + r) * N + m + L * v, acc[r][v] * scale);
}

// Columns [m0, m1) of rows [n0, n1) in tiles of kR rows (then single rows) x kMV vectors of V; returns where
// the whole tiles end.
template <class V, int kR, int kMV>
inline __attribute__((always_inline)) int scores_columns(const float* q, const float* kk, int kd, int N,
                                                         float scale, int n0, int n1, int m0, float* scores) {
  constexpr int kCols = kMV * sizeof(V) / sizeof(float);
  const int m1 = m0 + (N - m0) / kCols * kCols;
  int n = n0;
  for (; n + kR <= n1; n += kR)
    for (int m = m0; m < m1; m += kCols) scores_tile<V, kR, kMV>(q, kk, kd, N, scale, n, m, scores);
  for (; n < n1; ++n)
    for (int m = m0; m < m1; m += kCols) scores_tile<V, 1, kMV>(q, kk, kd, N, scale, n, m, scores);
  return m1;
}

// The softmax of one row of scores, the row's maximum and sum in vector lanes: as scalar chains (the compiler
// keeps a float maximum and a double sum in order) they took more than the products, ~10 cycles a score.
template <class V>
inline __attribute__((always_inline)) void softmax_row(float* row, int N) {
  constexpr int L = sizeof(V) / sizeof(float);
  int m = 0;
  V vmx = row[0] - V{}, vsum = {};
  for (; m + L <= N; m += L) {
    V x;
    loadu(x, row + m);
    vmx = vmx > x ? vmx : x;
  }
  float mx = row[0];
  for (int i = 0; i < L; ++i) mx = std::max(mx, vmx[i]);
  for (; m < N; ++m) mx = std::max(mx, row[m]);
  for (m = 0; m < N; ++m) row[m] -= mx;
  exp_inplace(row, static_cast<std::size_t>(N));
  for (m = 0; m + L <= N; m += L) {
    V x;
    loadu(x, row + m);
    vsum += x;
  }
  double sum = 0;
  for (int i = 0; i < L; ++i) sum += vsum[i];
  for (; m < N; ++m) sum += row[m];
  const float inv = static_cast<float>(1.0 / sum);
  for (m = 0; m < N; ++m) row[m] *= inv;
}

// scores[n][m] = scale * sum_k q[k][n] * kk[k][m] for rows [n0, n1), then a softmax over each row. Tiles of
// kMV vectors of V, then single vectors of V and of 8 lanes (AVX-512: YOLO11n's 300 tokens are 4 tiles of 64
// columns, 2 vectors of 16 and one of 8; AVX2: 12 tiles of 24 and one vector of 8), then columns one by one
// (4).
template <class V, int kR, int kMV>
inline __attribute__((always_inline)) void attention_scores_t(const float* q, const float* kk, int kd, int N,
                                                              float scale, int n0, int n1, float* scores) {
  int m = scores_columns<V, kR, kMV>(q, kk, kd, N, scale, n0, n1, 0, scores);
  if (sizeof(V) > sizeof(V8)) m = scores_columns<V, kR, 1>(q, kk, kd, N, scale, n0, n1, m, scores);
  const int v_end = scores_columns<V8, 4, 1>(q, kk, kd, N, scale, n0, n1, m, scores);
  for (int n = n0; n < n1; ++n) {
    float* row = scores + static_cast<std::ptrdiff_t>(n) * N;
    for (int c = v_end; c < N; ++c) {
      float s = 0.f;
      for (int k = 0; k < kd; ++k)
        s += q[static_cast<std::ptrdiff_t>(k) * N + n] * kk[static_cast<std::ptrdiff_t>(k) * N + c];
      row[c] = s * scale;
    }
    softmax_row<V>(row, N);
  }
}

AITW_TARGET_CLONES_FMA void attention_scores(const float* q, const float* kk, int kd, int N, float scale,
                                             int n0, int n1, float* scores) {
  attention_scores_t<V8, 4, 3>(q, kk, kd, N, scale, n0, n1, scores);
}

// Where v[d][m] goes in vt, the transposed v: [hd / 32][N][32] when the head size is a multiple of 32 (each
// apply tile then streams its 32 dimensions of every token from one contiguous run), else [N][hd].
inline std::ptrdiff_t vt_index(int hd, int N, int m, int d) {
  if (hd % 32 == 0) return (static_cast<std::ptrdiff_t>(d / 32) * N + m) * 32 + d % 32;
  return static_cast<std::ptrdiff_t>(m) * hd + d;
}

// out[d0 + d][n + r] = sum_m p[n + r][m] * v[d0 + d][m] for d < 32 (vt as vt_index lays it out): kR columns
// of the output x the vectors of V that hold 32 head dimensions.
template <class V, int kR>
inline __attribute__((always_inline)) void apply_tile(const float* p, const float* vt, int N, int n, int d0,
                                                      float* out) {
  constexpr int L = sizeof(V) / sizeof(float), kV = 32 / L;
  V acc[kR][kV] = {};
  const float* prow[kR];
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r) prow[r] = p + static_cast<std::ptrdiff_t>(n + r) * N;
  for (int m = 0; m < N; ++m) {
    const float* vrow = vt + (static_cast<std::ptrdiff_t>(d0) * N + static_cast<std::ptrdiff_t>(m) * 32);
    V x[kV];
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) loadu(x[v], vrow + L * v);
#pragma GCC unroll 8
    for (int r = 0; r < kR; ++r) {
      const V a = prow[r][m] - V{};
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) acc[r][v] += a * x[v];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v)
      for (int i = 0; i < L; ++i) out[static_cast<std::ptrdiff_t>(d0 + L * v + i) * N + n + r] = acc[r][v][i];
}

// out[d][n] = sum_m v[d][m] * p[n][m] for columns [n0, n1), with vt = v transposed (vt_index).
template <class V, int kR>
inline __attribute__((always_inline)) void attention_apply_t(const float* p, const float* vt, int hd, int N,
                                                             int n0, int n1, float* acc, float* out) {
  if (hd % 32 == 0) {  // YOLO11's head size is 64
    for (int d0 = 0; d0 < hd; d0 += 32) {
      int n = n0;
      for (; n + kR <= n1; n += kR) apply_tile<V, kR>(p, vt, N, n, d0, out);
      for (; n < n1; ++n) apply_tile<V, 1>(p, vt, N, n, d0, out);
    }
    return;
  }
  for (int n = n0; n < n1; ++n) {
    std::fill(acc, acc + hd, 0.f);
    const float* prow = p + static_cast<std::ptrdiff_t>(n) * N;
    for (int m = 0; m < N; ++m) {
      const float a = prow[m];
      const float* vrow = vt + static_cast<std::ptrdiff_t>(m) * hd;
      for (int d = 0; d < hd; ++d) acc[d] += a * vrow[d];
    }
    for (int d = 0; d < hd; ++d) out[static_cast<std::ptrdiff_t>(d) * N + n] = acc[d];
  }
}

AITW_TARGET_CLONES_FMA void attention_apply(const float* p, const float* vt, int hd, int N, int n0, int n1,
                                            float* acc, float* out) {
  attention_apply_t<V8, 3>(p, vt, hd, N, n0, n1, acc, out);
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// AVX-512 (16 lanes, 32 registers): scores in tiles of 4 rows x 4 vectors, the apply in tiles of 8 rows x 2
// vectors (the 32-row units divide into both). Taken where the convolutions run AVX-512 (conv_default_isa:
// AITW_CONV_ISA=avx2 or a test's conv_force_isa picks the clones above on the same CPU). YOLO11n's
// AitwAttention in the forward, 2 threads, Zen 5 VM, medians of 5 alternated runs: 0.413 -> 0.263 ms (tiles
// of 4 x 3 and 6 rows: 0.272).
__attribute__((target("avx512f,fma"))) void attention_scores_512(const float* q, const float* kk, int kd,
                                                                 int N, float scale, int n0, int n1,
                                                                 float* scores) {
  attention_scores_t<V16, 4, 4>(q, kk, kd, N, scale, n0, n1, scores);
}
__attribute__((target("avx512f,fma"))) void attention_apply_512(const float* p, const float* vt, int hd,
                                                                int N, int n0, int n1, float* acc,
                                                                float* out) {
  attention_apply_t<V16, 8>(p, vt, hd, N, n0, n1, acc, out);
}
constexpr bool kHaveAttention512 = true;
#else
void attention_scores_512(const float*, const float*, int, int, float, int, int, float*) {}
void attention_apply_512(const float*, const float*, int, int, int, int, float*, float*) {}
constexpr bool kHaveAttention512 = false;
#endif

// Whether the attention takes the AVX-512 kernels: where the convolutions run AVX-512. Never throws: with
// AITW_CONV=opencv or on a CPU without AVX2 no convolution reads AITW_CONV_ISA at load, and a bad value must
// not fail every forward of the attention instead (it then takes the clones).
bool attention_isa_is_avx512() {
  try {
    return conv_default_isa() == ConvIsa::Avx512;
  } catch (const std::exception&) {
    return false;
  }
}

// YOLO11's Attention core, per head: out = v . softmax(scale * q^T k)^T, replacing the exported
// Transpose, MatMul, Mul, Softmax, Transpose, MatMul chain (OpenCV runs the two-input MatMuls as slow
// InnerProduct layers: ~5 ms of a 58 ms forward at 480x640). Inputs q, k [1, heads, kd, N], v [1, heads,
// hd, N]; output [1, heads, hd, N].
class AttentionLayer : public cv::dnn::Layer {
 public:
  explicit AttentionLayer(const cv::dnn::LayerParams& params) {
    setParamsFrom(params);
    scale_ = params.get<float>("scale", 1.f);
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<AttentionLayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    CV_Assert(inputs.size() == 3 && inputs[0].size() == 4 && inputs[0] == inputs[1] &&
              inputs[2].size() == 4 && inputs[2][1] == inputs[0][1] && inputs[2][3] == inputs[0][3]);
    outputs.assign(1, inputs[2]);
    return false;
  }

  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays) override {
    auto [in, out] = layer_mats(inputs_arr, outputs_arr);
    const int heads = in[0].size[1], kd = in[0].size[2], N = in[0].size[3], hd = in[2].size[2];
    scores_.resize(static_cast<std::size_t>(heads) * N * N);
    vt_.resize(static_cast<std::size_t>(heads) * N * hd);
    const std::ptrdiff_t qk_head = static_cast<std::ptrdiff_t>(kd) * N,
                         v_head = static_cast<std::ptrdiff_t>(hd) * N;
    const std::ptrdiff_t s_head = static_cast<std::ptrdiff_t>(N) * N;
    const float* q = in[0].ptr<float>();
    const float* k = in[1].ptr<float>();
    const float* v = in[2].ptr<float>();
    float* o = out[0].ptr<float>();
    constexpr int kRows = 32;
    const int blocks = (N + kRows - 1) / kRows;
    const bool wide = kHaveAttention512 && attention_isa_is_avx512();
    parallel_range(heads * blocks, 1, [&](std::ptrdiff_t t0, std::ptrdiff_t t1) {
      for (int t = static_cast<int>(t0); t != t1; ++t) {
        const int h = t / blocks, n0 = (t % blocks) * kRows, n1 = std::min(N, n0 + kRows);
        (wide ? attention_scores_512 : attention_scores)(q + h * qk_head, k + h * qk_head, kd, N, scale_, n0,
                                                         n1, scores_.data() + h * s_head);
        // The transposed v rows this block of the head owns.
        for (int m = n0; m < n1; ++m)
          for (int d = 0; d < hd; ++d) vt_[h * v_head + vt_index(hd, N, m, d)] = v[h * v_head + d * N + m];
      }
    });
    parallel_range(heads * blocks, 1, [&](std::ptrdiff_t t0, std::ptrdiff_t t1) {
      std::vector<float> acc(hd);
      for (int t = static_cast<int>(t0); t != t1; ++t) {
        const int h = t / blocks, n0 = (t % blocks) * kRows, n1 = std::min(N, n0 + kRows);
        (wide ? attention_apply_512 : attention_apply)(scores_.data() + h * s_head, vt_.data() + h * v_head,
                                                       hd, N, n0, n1, acc.data(), o + h * v_head);
      }
    });
  }

 private:
  float scale_ = 1.f;
  std::vector<float> scores_, vt_;  // reused across frames
};

// --- nearest-neighbour upscaling ---------------------------------------------------------------------

// out (h * fy rows of w * fx) = in (h x w), each value repeated fx times along its row and each row fy
// times: ONNX Resize with mode nearest, asymmetric coordinates and floor rounding, at integer factors.
AITW_TARGET_CLONES void upsample_nearest(const float* in, int h, int w, int fy, int fx, float* out) {
  const std::ptrdiff_t ow = static_cast<std::ptrdiff_t>(w) * fx;
  for (int y = 0; y < h; ++y, in += w) {
    float* row = out + static_cast<std::ptrdiff_t>(y) * fy * ow;
    if (fx == 2) {
      for (int x = 0; x < w; ++x) row[2 * x] = row[2 * x + 1] = in[x];
    } else {
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < fx; ++k) row[x * fx + k] = in[x];
    }
    for (int k = 1; k < fy; ++k) std::memcpy(row + k * ow, row, sizeof(float) * ow);
  }
}

// An aitw layer in front of OpenCV's own layer of the same type, which it keeps for the shapes, the
// parameters and finalize, and which runs every case that aitw's run() does not take (a second output such
// as max pooling's argmax, in-place, other shapes).
class OverOpenCvLayer : public cv::dnn::Layer {
 public:
  OverOpenCvLayer(const cv::dnn::LayerParams& params, cv::Ptr<cv::dnn::Layer> opencv)
      : opencv_(std::move(opencv)) {
    setParamsFrom(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int required,
                       std::vector<MatShape>& outputs, std::vector<MatShape>& internals) const override {
    return opencv_->getMemoryShapes(inputs, required, outputs, internals);
  }

  void finalize(cv::InputArrayOfArrays inputs, cv::OutputArrayOfArrays outputs) override {
    opencv_->finalize(inputs, outputs);
  }

  // aitw's forward when there is one input and one output, both 4-D, float and continuous, and run()
  // takes them; else OpenCV's.
  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays internals_arr) override {
    auto [in, out] = layer_mats(inputs_arr, outputs_arr);
    auto plain = [](const cv::Mat& m) { return m.dims == 4 && m.type() == CV_32F && m.isContinuous(); };
    if (in.size() != 1 || out.size() != 1 || !plain(in[0]) || !plain(out[0]) || in[0].data == out[0].data ||
        !run(in[0], out[0]))
      opencv_->forward(inputs_arr, outputs_arr, internals_arr);
  }

 protected:
  // Computes y from x, or returns false (before writing anything) to leave the case to OpenCV's layer.
  virtual bool run(const cv::Mat& x, cv::Mat& y) = 0;

 private:
  cv::Ptr<cv::dnn::Layer> opencv_;
};

// OpenCV 4.6's Resize layer calls cv::resize once per channel plane, and cv::resize runs a parallel loop of
// its own: YOLO11n's two 2x upsamplings (256 planes of 15 x 20, 128 of 30 x 40) took 1.9 ms at 2 threads,
// more than at 1. This layer keeps OpenCV's (shapes, parameters, finalize; it runs every resize that is not
// an integer upscale of a 4-D continuous blob) and upsamples all planes in one parallel loop.
class NearestResizeLayer : public OverOpenCvLayer {
 public:
  using OverOpenCvLayer::OverOpenCvLayer;

 protected:
  bool run(const cv::Mat& x, cv::Mat& y) override {
    const bool upscale = x.size[0] == y.size[0] && x.size[1] == y.size[1] && x.size[2] > 0 && x.size[3] > 0 &&
                         y.size[2] % x.size[2] == 0 && y.size[3] % x.size[3] == 0 &&
                         (y.size[2] != x.size[2] || y.size[3] != x.size[3]);
    if (!upscale) return false;
    const int h = x.size[2], w = x.size[3], fy = y.size[2] / h, fx = y.size[3] / w;
    const int planes = x.size[0] * x.size[1];
    const std::ptrdiff_t in_plane = static_cast<std::ptrdiff_t>(h) * w, out_plane = in_plane * fy * fx;
    const float* src = x.ptr<float>();
    float* dst = y.ptr<float>();
    // Tasks of at least ~16 K output floats: the 15 x 20 planes go 14 to a task.
    const int grain = static_cast<int>(std::max<std::ptrdiff_t>(1, (16 << 10) / out_plane));
    parallel_range(planes, grain, [&](std::ptrdiff_t p0, std::ptrdiff_t p1) {
      for (std::ptrdiff_t p = p0; p != p1; ++p)
        upsample_nearest(src + p * in_plane, h, w, fy, fx, dst + p * out_plane);
    });
    return true;
  }
};

// Row maxima over [x - r, x + r] clipped to the row; kR > 0: r known at compile time (the interior loop
// unrolls over the window and vectorises over x), else r.
template <int kR>
inline void row_max(const float* s, int w, int r, float* t) {
  if (kR > 0) r = kR;
  const int lo = std::min(r, w), hi = std::max(lo, w - r);
  for (int x = 0; x < lo; ++x) t[x] = *std::max_element(s, s + std::min(w, x + r + 1));
  for (int x = lo; x < hi; ++x) {
    float m = s[x - r];
    for (int k = -r + 1; k <= r; ++k) m = std::max(m, s[x + k]);
    t[x] = m;
  }
  for (int x = hi; x < w; ++x) t[x] = *std::max_element(s + std::max(0, x - r), s + w);
}

// o[i] = max of t[i], t[i + w], ..., t[i + rows * w] for i < kN.
template <int kN>
inline __attribute__((always_inline)) void column_max(const float* t, int w, int rows, float* o) {
  float m[kN];
  for (int i = 0; i < kN; ++i) m[i] = t[i];
  for (int k = 1; k <= rows; ++k) {
    const float* tk = t + static_cast<std::ptrdiff_t>(k) * w;
    for (int i = 0; i < kN; ++i) m[i] = std::max(m[i], tk[i]);
  }
  for (int i = 0; i < kN; ++i) o[i] = m[i];
}

// out = max over the k x k window centred on each pixel, clipped to the plane (the padding never wins):
// the row maxima into `tmp` (h x w), then the column maxima of those. Max is exact, so this is bit for bit
// what a whole-window pool gives. `out` may be `in`: the rows are all read before the first is written.
AITW_TARGET_CLONES void max_pool_same(const float* in, int h, int w, int r, float* tmp, float* out) {
  for (int y = 0; y < h; ++y) {
    const float* s = in + static_cast<std::ptrdiff_t>(y) * w;
    float* t = tmp + static_cast<std::ptrdiff_t>(y) * w;
    if (r == 2) {
      row_max<2>(s, w, r, t);  // SPPF's 5 x 5
    } else if (r == 1) {
      row_max<1>(s, w, r, t);
    } else {
      row_max<0>(s, w, r, t);
    }
  }
  // The column maxima in registers, strips of 16, 8 and 4 columns, each output stored once (why: the chain
  // layer's comment below).
  for (int y = 0; y < h; ++y) {
    const int y0 = std::max(0, y - r), y1 = std::min(h - 1, y + r);
    float* o = out + static_cast<std::ptrdiff_t>(y) * w;
    const float* t0 = tmp + static_cast<std::ptrdiff_t>(y0) * w;
    int x = 0;
    for (; x + 16 <= w; x += 16) column_max<16>(t0 + x, w, y1 - y0, o + x);
    if (x + 8 <= w) {
      column_max<8>(t0 + x, w, y1 - y0, o + x);
      x += 8;
    }
    if (x + 4 <= w) {
      column_max<4>(t0 + x, w, y1 - y0, o + x);
      x += 4;
    }
    for (; x < w; ++x) column_max<1>(t0 + x, w, y1 - y0, o + x);
  }
}

// OpenCV 4.6's max pooling takes the whole k x k window at every pixel (25 loads and compares for SPPF's
// 5 x 5), in SSE2 at best on Debian's baseline build: YOLO11n's three SPPF pools took ~0.9 ms at 2 threads.
// This layer keeps OpenCV's for shapes and for anything that is not a same-size 4-D float pool.
class MaxPoolSameLayer : public OverOpenCvLayer {
 public:
  MaxPoolSameLayer(const cv::dnn::LayerParams& params, cv::Ptr<cv::dnn::Layer> opencv, int k)
      : OverOpenCvLayer(params, std::move(opencv)), radius_(k / 2) {}

 protected:
  bool run(const cv::Mat& x, cv::Mat& y) override {
    if (!std::equal(x.size.p, x.size.p + 4, y.size.p)) return false;
    const int h = x.size[2], w = x.size[3], planes = x.size[0] * x.size[1];
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(h) * w;
    const float* src = x.ptr<float>();
    float* dst = y.ptr<float>();
    const int grain =
        static_cast<int>(std::max<std::ptrdiff_t>(1, (8 << 10) / std::max<std::ptrdiff_t>(1, plane)));
    parallel_range(planes, grain, [&](std::ptrdiff_t p0, std::ptrdiff_t p1) {
      thread_local std::vector<float> tmp;
      if (tmp.size() < static_cast<std::size_t>(plane)) tmp.resize(static_cast<std::size_t>(plane));
      for (std::ptrdiff_t p = p0; p != p1; ++p)
        max_pool_same(src + p * plane, h, w, radius_, tmp.data(), dst + p * plane);
    });
    return true;
  }

 private:
  int radius_;
};

// bf16 channel pairs (ConvInput::pairs: channel 2k in the low half of a 32-bit slot, 2k + 1 in the high
// half) widened to the two channels' floats, exactly; and back, exactly when the floats are bf16 values.
AITW_TARGET_CLONES void unpack_pairs(const float* pairs, std::ptrdiff_t n, float* lo, float* hi) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const auto u = std::bit_cast<std::uint32_t>(pairs[i]);
    lo[i] = std::bit_cast<float>(u << 16);
    hi[i] = std::bit_cast<float>(u & 0xffff0000u);
  }
}

AITW_TARGET_CLONES void pack_pairs(const float* lo, const float* hi, std::ptrdiff_t n, float* pairs) {
  for (std::ptrdiff_t i = 0; i < n; ++i)
    pairs[i] = std::bit_cast<float>((std::bit_cast<std::uint32_t>(hi[i]) & 0xffff0000u) |
                                    (std::bit_cast<std::uint32_t>(lo[i]) >> 16));
}

// kMaxPoolChainOpType: outputs[j] = pool(outputs[j - 1]), outputs[-1] = the input; every pool k x k, stride
// 1, padding k / 2 (MaxPoolSameLayer's), plane by plane through the whole chain: the input read once, one
// loop instead of one per pool. SPPF's three pools (128 planes of 15 x 20) in the 2-thread forward, Zen 5
// VM, medians of 5 alternated runs: YOLO11n fp32 0.25 -> 0.21 ms, bf16 0.163 -> 0.138, YOLOv8n bf16 0.143 ->
// 0.109. (Their row maxima over a padded row, every output the same 5 loads, measured no faster.) The column
// pass then copied each output row's first row maxima and reloaded it for every other row, and those loads
// waited on the copy's stores (perf: 64 % of the pool's samples on one store); with the maxima kept in
// registers, 7 alternated rounds on a Zen 5 VM: fp32 0.280 -> 0.121 ms, bf16 0.100 -> 0.087 (strips of 16
// alone, the 4 columns past them scalar: fp32 0.205 -> 0.137, bf16 0.093 -> 0.099).
//
// kPoolPairsAttr: the input and the outputs are bf16 channel pairs. Each pair plane is widened into its two
// channels' planes, both go through the chain, and each pool's planes are narrowed back into its output's
// pair plane. Max picks one of its inputs, so that is exact; and rounding to nearest is monotonic, so the
// pool of the rounded input is the rounding of the fp32 pool: the readers get the values they would have
// made (up to a zero's sign: a negative denormal rounds to -0, which max may keep over a +0).
class MaxPoolChainLayer : public cv::dnn::Layer {
 public:
  explicit MaxPoolChainLayer(const cv::dnn::LayerParams& params)
      : radius_(params.get<int>(kMaxPoolMark, 0) / 2),
        length_(params.get<int>("outputs", 0)),
        pairs_(params.get<int>(kPoolPairsAttr, 0) != 0) {
    setParamsFrom(params);
    const int k = params.get<int>(kMaxPoolMark, 0);
    if (k < 3 || k % 2 == 0 || k > 15 || length_ < 1 || length_ > 8)
      CV_Error(cv::Error::StsBadArg, "max pool chain '" + params.name + "': window " + std::to_string(k) +
                                         " and " + std::to_string(length_) +
                                         " outputs, expects an odd window from 3 to 15 and 1 to 8 outputs");
  }
  static cv::Ptr<cv::dnn::Layer> create(cv::dnn::LayerParams& params) {
    return cv::makePtr<MaxPoolChainLayer>(params);
  }

  bool getMemoryShapes(const std::vector<MatShape>& inputs, const int, std::vector<MatShape>& outputs,
                       std::vector<MatShape>&) const override {
    if (inputs.size() != 1 || inputs[0].size() != 4)
      CV_Error(cv::Error::StsBadSize, "max pool chain '" + name + "': takes one 4-D input");
    outputs.assign(static_cast<std::size_t>(length_), inputs[0]);
    return false;
  }

  void forward(cv::InputArrayOfArrays inputs_arr, cv::OutputArrayOfArrays outputs_arr,
               cv::OutputArrayOfArrays) override {
    auto mats = layer_mats(inputs_arr, outputs_arr);
    std::vector<cv::Mat>& out = mats.second;
    CV_Assert(mats.first.size() == 1 && out.size() == static_cast<std::size_t>(length_));
    const cv::Mat& x = mats.first[0];
    const auto plain = [&x](const cv::Mat& m) {
      return m.dims == 4 && m.type() == CV_32F && m.isContinuous() &&
             std::equal(m.size.p, m.size.p + 4, x.size.p);
    };
    CV_Assert(plain(x));
    for (const auto& o : out) CV_Assert(plain(o) && o.data != x.data);
    const int h = x.size[2], w = x.size[3], planes = x.size[0] * x.size[1];
    const std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(h) * w;
    const int grain = static_cast<int>(
        std::max<std::ptrdiff_t>(1, (8 << 10) / std::max<std::ptrdiff_t>(1, plane * length_)));
    if (pairs_) {
      // Per image, the first (channels + 1) / 2 planes of the blob hold the pairs.
      const int per_image = (x.size[1] + 1) / 2;
      const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(x.step[0] / sizeof(float));
      parallel_range(static_cast<std::ptrdiff_t>(x.size[0]) * per_image, std::max(1, grain / 2),
                     [&](std::ptrdiff_t p0, std::ptrdiff_t p1) {
                       thread_local std::vector<float> buf;
                       if (buf.size() < static_cast<std::size_t>(3 * plane))
                         buf.resize(static_cast<std::size_t>(3 * plane));
                       float *const tmp = buf.data(), *const lo = tmp + plane, *const hi = lo + plane;
                       for (std::ptrdiff_t p = p0; p != p1; ++p) {
                         const std::ptrdiff_t at = p / per_image * image + p % per_image * plane;
                         unpack_pairs(x.ptr<float>() + at, plane, lo, hi);
                         for (auto& o : out) {
                           max_pool_same(lo, h, w, radius_, tmp, lo);  // in place: `in` is read first
                           max_pool_same(hi, h, w, radius_, tmp, hi);
                           pack_pairs(lo, hi, plane, o.ptr<float>() + at);
                         }
                       }
                     });
      return;
    }
    parallel_range(planes, grain, [&](std::ptrdiff_t p0, std::ptrdiff_t p1) {
      thread_local std::vector<float> tmp;
      if (tmp.size() < static_cast<std::size_t>(plane)) tmp.resize(static_cast<std::size_t>(plane));
      for (std::ptrdiff_t p = p0; p != p1; ++p) {
        const float* src = x.ptr<float>() + p * plane;
        for (auto& o : out) {
          float* dst = o.ptr<float>() + p * plane;
          max_pool_same(src, h, w, radius_, tmp.data(), dst);
          src = dst;
        }
      }
    });
  }

  bool on_pairs() const { return pairs_; }
  int length() const { return length_; }

 private:
  int radius_, length_;
  bool pairs_;  // kPoolPairsAttr
};

cv::Ptr<cv::dnn::Layer> create_pooling_layer(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::Layer> opencv = cv::dnn::PoolingLayer::create(params);
  const int k = params.get<int>(kMaxPoolMark, 0);
  if (k < 3 || k % 2 == 0 || cv::toLowerCase(params.get<cv::String>("pool", "max")) != "max") return opencv;
  return cv::makePtr<MaxPoolSameLayer>(params, opencv, k);
}

cv::Ptr<cv::dnn::Layer> create_resize_layer(cv::dnn::LayerParams& params) {
  cv::Ptr<cv::dnn::Layer> opencv = cv::dnn::ResizeLayer::create(params);
  if (!params.has(kResizeMark) || params.get<cv::String>("interpolation", "") != "nearest" ||
      params.get<bool>("align_corners", false) || params.get<bool>("half_pixel_centers", false))
    return opencv;
  return cv::makePtr<NearestResizeLayer>(params, opencv);
}

}  // namespace

void register_dnn_layers() {
  static std::once_flag once;
  std::call_once(once, [] {
    cv::dnn::LayerFactory::registerLayer(kSiLUOpType, SiLULayer::create);
    cv::dnn::LayerFactory::registerLayer(kAttentionOpType, AttentionLayer::create);
    cv::dnn::LayerFactory::registerLayer(kMaxPoolChainOpType, MaxPoolChainLayer::create);
    // Every net read after this gets create_convolution_layer for its convolutions; it hands back OpenCV's
    // own layer unless the adapter marked the node (see conv_layer.hpp).
    cv::dnn::LayerFactory::registerLayer("Convolution", create_convolution_layer);
    // Likewise for Resize and Pooling: OpenCV's own layers unless the adapter marked the node.
    cv::dnn::LayerFactory::registerLayer("Resize", create_resize_layer);
    cv::dnn::LayerFactory::registerLayer("Pooling", create_pooling_layer);
  });
}

bool is_aitw_resize(const cv::Ptr<cv::dnn::Layer>& layer) {
  return !layer.dynamicCast<NearestResizeLayer>().empty();
}

int max_pool_chain_pair_outputs(const cv::Ptr<cv::dnn::Layer>& layer) {
  const auto chain = layer.dynamicCast<MaxPoolChainLayer>();
  return chain && chain->on_pairs() ? chain->length() : 0;
}

}  // namespace aitw::kernel
