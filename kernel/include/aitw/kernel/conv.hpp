#pragma once
// aitw's fp32 convolution: weights packed once into the layout of a register-blocked micro-kernel, 1x1 as a
// GEMM straight on NCHW (out[co][p] = sum_ci W[co][ci] * in[ci][p], no im2col), k x k (stride 1 or 2) as a
// direct convolution over a zero-padded copy of the input split into stride phases (so every tap is one
// contiguous vector load), depthwise k x k per channel; bias and the activation (SiLU with fast_math's
// polynomial, ReLU) applied in registers before the store. One micro-kernel per ISA (AVX-512, AVX2+FMA,
// portable: GCC vectors, NEON on aarch64), picked once at start-up; threads over pixel tiles and
// output-channel blocks with cv::parallel_for_ (OpenCV's pool, which the pipeline sizes).
// Why not OpenCV 4.6's: it im2rows even 1x1 convolutions, reduces dot products horizontally, has no AVX-512
// depthwise path and applies SiLU in a second pass (measured per layer in bench/RESULTS.md).
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace aitw::kernel {

enum class ConvIsa { Portable, Avx2, Avx512 };

const char* conv_isa_name(ConvIsa isa);
// The best level this CPU runs (AVX-512 needs avx512f, AVX2 needs avx2 and fma; x86-64 with GCC only).
ConvIsa conv_best_isa();
bool conv_isa_supported(ConvIsa isa);
// The level new PackedConvs use: the forced one (conv_force_isa: tests force each level they can run), else
// $AITW_CONV_ISA's (avx512, avx2 or portable; std::invalid_argument naming it when the CPU cannot run it or
// it names none), else conv_best_isa().
ConvIsa conv_default_isa();
void conv_force_isa(std::optional<ConvIsa> isa);

// Winograd F(4x4, 3x3) for the fp32 3x3 stride-1 padding-1 layers: forced on (true; where the layer's shape
// allows it), off (false), or chosen per layer and input size (nullopt, the default; PackedConv::winograd).
// For tests and before/after measurements.
void conv_force_winograd(std::optional<bool> on);
// The Winograd tiles' output rows, 4 or 6, forced (tests), or chosen by height (nullopt; winograd_rows).
void conv_force_winograd_rows(std::optional<int> rows);
// Whether this CPU's 512-bit FMAs do twice the work of its 256-bit ones per cycle (Zen 5, Intel with two
// 512-bit FMA ports), rather than the same (Zen 4 runs each as two 256-bit halves). It decides where
// Winograd pays on the AVX-512 kernels (winograd_pays): with half-width FMAs the multiplies it saves are
// worth twice as much. Measured once, by timing chains of 512- and 256-bit FMAs
// (conv_avx512_fma_width_ratio); $AITW_AVX512_FMA=full|half overrides it (std::invalid_argument naming the
// variable for any other value). True on CPUs without AVX-512, where it decides nothing.
bool conv_avx512_full_width();
// Where aitw's layers run their parallel loops: "aitw" (its loop pool, src/parallel.cpp: the default) or
// "opencv" (OpenCV's parallel backend, TBB), from $AITW_PARALLEL; std::invalid_argument naming the variable
// for any other value. The adapter's load log says which.
const char* parallel_loops();
// The time of a run of 512-bit FMAs over the same count of 256-bit ones (the best of several tries): ~1 where
// they are full width, ~2 where half; 0 without AVX-512. For conv_avx512_full_width and the logs.
double conv_avx512_fma_width_ratio();

enum class ConvActivation { None, ReLU, SiLU };

// fp32, or bf16 multiplies (weights and inputs rounded to bf16, products summed in fp32: AVX512_BF16's
// vdpbf16ps) where the CPU has them; see conv_bf16_supported.
enum class ConvPrecision { Fp32, Bf16 };
const char* conv_precision_name(ConvPrecision p);  // "fp32", "bf16"
// True when this CPU runs the bf16 kernels (AVX512_BF16; x86-64 GCC builds only).
bool conv_bf16_supported();

struct ConvShape {
  int in_channels = 0, out_channels = 0;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int groups = 1;
  int out_h(int h) const { return (h + pad_top + pad_bottom - kernel_h) / stride_h + 1; }
  int out_w(int w) const { return (w + pad_left + pad_right - kernel_w) / stride_w + 1; }
  bool depthwise() const { return groups > 1 && groups == in_channels && groups == out_channels; }
};

// Empty when aitw's kernels run `s`, else why not (the caller falls back to OpenCV's convolution).
std::string conv_unsupported_reason(const ConvShape& s);
// Whether bf16 is faster for this shape, as measured: every layer but the depthwise ones (9 taps per channel:
// no channel pairs to multiply). The 1x1 layers of 64 outputs or fewer stayed fp32 while their readers
// converted fp32 inputs (256->64 at 60x80 1.07 -> 1.29 ms in bf16); with pairs between the layers and the 1x1
// layers packing theirs straight from the input, bf16 wins there too (YOLO11n's bf16 forward 16.43 -> 15.61
// ms, YOLOv8n's 0.94x, 7 alternated rounds on a Zen 4 VM: 48->64 at 120x160 0.731 -> 0.562, 256->64 at 60x80
// 0.568 -> 0.385, 64->64 at 15x20 0.033 -> 0.026).
bool conv_bf16_pays(const ConvShape& s);
// Whether an fp32 convolution of this shape on kernels `isa` reads and writes bf16 channel pairs
// (PackedConv::forward's ConvInput::pairs and out_pairs): a depthwise 3x3, stride 1, padding 1 (the layers
// where bf16 does not pay, conv_bf16_pays) on the AVX-512 kernels of a CPU with AVX512_BF16. It widens a pair
// input's rows (exact: the input it computes on is the bf16 rounding of the fp32 one), and rounds its fp32
// output into pairs, bit for bit those its readers would make of the fp32 output.
bool conv_fp32_pairs(const ConvShape& s, ConvIsa isa);

// Per-output-channel affine folded into the weights (BatchNorm / Scale after the convolution).
struct ConvScaleShift {
  std::vector<float> scale, shift;  // each empty, of size 1 or of out_channels
};

// One of several tensors a convolution reads as its input channels, in order (a Concat's inputs read where
// they are, or a channel range of one tensor: a Split read in place): `channels` planes of h x w floats,
// contiguous, the first at `data` for image 0, each image `batch_stride` floats after the previous.
//
// `pairs`: the tensor holds bf16 channel pairs instead (NCHW2c, what a producer writing for bf16 consumers
// stores: forward's `out_pairs`): (channels + 1) / 2 planes of h x w 32-bit words, channel 2k's bf16 in the
// low half of plane k's words, channel 2k + 1's (0 past the last channel) in the high half. Only bf16
// convolutions read them, as they are (each would round its fp32 input to the same pairs first); a pairs
// input starts at an even channel of the layer's input and, unless it is the last input, has an even count.
struct ConvInput {
  const float* data = nullptr;
  std::ptrdiff_t batch_stride = 0;
  int channels = 0;
  bool pairs = false;
};
inline constexpr int kMaxConvInputs = 8;

// A term added to a 1x1 convolution's sums before the activation, at a lower resolution: output channel c at
// (y, x) gets data[c][y / factor][x / factor] (nearest upscaling), planes of (oh / factor) x (ow / factor)
// floats, contiguous, each image `batch_stride` floats after the previous. How a layer whose input is partly
// upscaled computes that part at the input's own size (W up(x) = up(W x); kConvUpscaleAttr).
struct ConvUpscaledAddend {
  const float* data = nullptr;
  std::ptrdiff_t batch_stride = 0;
  int factor = 1;
};

// The scale s such that each of the n weights is an integer in [-127, 127] times s, s = max |w| / 127 (to
// 1e-3 of an integer), or 0: an output channel's int8 grid (PackedConv::int8_grid_channels).
double conv_int8_grid_scale(const float* w, std::size_t n);

class PackedConv {
 public:
  // `weights`: [out_channels][in_channels / groups][kernel_h][kernel_w] (OpenCV's / ONNX's layout);
  // `bias`: out_channels values or null. Throws std::invalid_argument if conv_unsupported_reason(shape).
  // `precision` Bf16 takes effect with isa Avx512 on a CPU where conv_bf16_supported(), for convolutions
  // where conv_bf16_pays(); otherwise the convolution runs fp32 (precision() says which).
  // `grid_scales`: null, or per output channel the int8 grid its weights lie on (conv_int8_grid_scale of the
  // whole row; 0: none), for weights that are part of a row (a layer split by input: the part without the
  // channel's largest weight is on no grid of its own).
  PackedConv(const ConvShape& shape, const float* weights, const float* bias,
             ConvIsa isa = conv_default_isa(), ConvPrecision precision = ConvPrecision::Fp32,
             const double* grid_scales = nullptr);

  const ConvShape& shape() const { return shape_; }
  ConvIsa isa() const { return isa_; }
  ConvPrecision precision() const { return bf16_ ? ConvPrecision::Bf16 : ConvPrecision::Fp32; }
  // bf16: the output channels whose weights lie on an int8 grid (an integer in [-127, 127] times the
  // channel's max |weight| / 127, as the shared models' are: they come from Ultralytics' INT8 export). Their
  // integers are packed, exact in bf16, and the channel's scale is applied to the fp32 sum in the epilogue,
  // so only the activations are rounded. 0 in fp32.
  int int8_grid_channels() const { return int8_grid_channels_; }

  // Whether forward() on an h x w input runs Winograd (3x3 stride 1 padding 1, fp32): F(4x4, 3x3) takes 36
  // multiplies per 4 x 4 outputs and channel pair instead of 144, the transforms' cost paid per channel. By
  // default where it measured faster than the direct tiles (conv.cpp, winograd_pays).
  bool winograd(int h, int w) const;
  // The Winograd tiles' output rows at height h: 6 (F(6x4, 3x3): F(6, 3) down the columns, 48 multiplies per
  // 24 outputs and channel pair) where their 6 x 8 positions per tile column cover the image with fewer
  // multiplies than F(4x4, 3x3)'s 6 x 6 per 16, else 4; conv_force_winograd_rows overrides it.
  static int winograd_rows(int h);

  // Scratch floats forward() needs for an h x w input (the padded phase copy, or a tail tile).
  std::size_t workspace_floats(int h, int w) const;

  // in: n images of [in_channels][h][w], `in_batch_stride` floats apart; out: [out_channels][oh][ow] each,
  // `out_batch_stride` apart (a slice of a larger buffer, e.g. a Concat's, is fine). `workspace` holds
  // `workspace_size` floats, at least workspace_floats(h, w) as it was when sized (fewer threads work in it
  // if the thread count grew since; throws std::invalid_argument below one band). Threads with
  // cv::parallel_for_. `residual`: null, or n images shaped like the output (`residual_batch_stride`
  // floats apart) added after the activation in the output loop (a bottleneck's Add); it must not overlap
  // `out`.
  void forward(const float* in, int n, int h, int w, std::ptrdiff_t in_batch_stride, float* out,
               std::ptrdiff_t out_batch_stride, ConvActivation act, float* workspace,
               std::size_t workspace_size, const float* residual = nullptr,
               std::ptrdiff_t residual_batch_stride = 0) const;
  // The same over 1..kMaxConvInputs inputs concatenated along channels (their channels sum to
  // in_channels); the result is bit for bit the one over the concatenated tensor. Throws
  // std::invalid_argument on a count or channel mismatch. `addend`: null, or a low-resolution term added
  // before the activation (1x1 stride-1 unpadded layers without a residual, output sizes divisible by its
  // factor; else std::invalid_argument), in the output loop of each unit of work while its tiles are in
  // cache: forward(act None), then out += up(addend) (the sums bit for bit), then act (SiLU: the tiles' own,
  // within 1e-6 of fast_math's).
  // Inputs with ConvInput::pairs and `out_pairs` (the output written as bf16 channel pairs, ConvInput's
  // layout, in the first (out_channels + 1) / 2 planes of each image) take a bf16 convolution (precision()
  // Bf16) or an fp32 one where conv_fp32_pairs(shape(), isa()) (a depthwise 3x3), and `out_pairs` no
  // addend; else std::invalid_argument. The bf16 tiles round their outputs into pairs in registers (with a
  // residual: each unit its share, the residual added, while it is in cache; a small image whose tiles drop
  // columns: the whole output after it is computed), the depthwise layer each channel pair's rows after its
  // residual: the pairs are bit for bit pack_pairs of the fp32 output.
  // `residual_pairs`: the residual holds bf16 channel pairs (ConvInput's layout: (out_channels + 1) / 2
  // planes of oh x ow per image; an odd count's last high half is not read), widened exactly and added to
  // the fp32 sum where fp32 residual would be: the output is bit for bit the one with the fp32 residual of
  // the pairs' values. Takes a bf16 convolution that is not depthwise (else std::invalid_argument); each
  // unit's share goes through its thread's buffer, the residual added there (as with out_pairs).
  void forward(const ConvInput* inputs, int ninputs, int n, int h, int w, float* out,
               std::ptrdiff_t out_batch_stride, ConvActivation act, float* workspace,
               std::size_t workspace_size, const float* residual = nullptr,
               std::ptrdiff_t residual_batch_stride = 0, const ConvUpscaledAddend* addend = nullptr,
               bool out_pairs = false, bool residual_pairs = false) const;

 private:
  ConvShape shape_;
  ConvIsa isa_;
  bool bf16_ = false;
  bool oc_ = false;  // 3x3 padding 1 on the tiles over output channels (weights packed for them)
  int co_block_ = 1;
  // [co block][in channel][tap][co_block_] (depthwise: [channel][tap]); bf16: [co block][channel pair][tap]
  // [co_block_] bf16 pairs, each in a float's bits.
  std::vector<float> packed_;
  std::vector<float> bias_;  // out_channels rounded up to co_block_, zero-padded
  // Winograd: the 3x3 weights (empty where the shape has no Winograd path; the layer keeps its direct
  // weights too, for the input sizes where those win), and their transforms U = Gv g Gh^T, [positions][co
  // block][in channel][wino_block_], each built at the first forward that takes its variant ([0] F(4x4): 36
  // positions, [1] F(6x4): 48; wino_u).
  struct WinoWeights {
    std::once_flag once[2];
    std::vector<float> u[2];
  };
  std::vector<float> wino_w_;
  std::unique_ptr<WinoWeights> wino_;
  const std::vector<float>& wino_u(int variant) const;
  int wino_block_ = 0;
  // bf16 with int8-grid channels: each output channel's scale (1 for the others), like bias_; else empty.
  std::vector<float> scale_;
  int int8_grid_channels_ = 0;
};

}  // namespace aitw::kernel
