#pragma once
// Between the convolution driver (conv.cpp, portable code) and the per-ISA micro-kernels (conv_avx512.cpp,
// conv_avx2.cpp, conv_portable.cpp). Plain data only: the ISA files are compiled for their ISA, so nothing
// here may have an inline function body that the linker could pick for baseline callers.
#include <cstddef>
#include <cstdint>
#include <utility>  // std::integer_sequence, for the Winograd shuffles (conv_winograd_kernels.hpp)

namespace aitw::kernel::conv_detail {

// One register tile: co_block output channels x tile_px pixels of the flat (padded-width) output.
struct TileJob {
  const float* in;            // input at the tile's first pixel, channel 0
  std::ptrdiff_t in_channel;  // floats between input channels
  int channels;               // input channels summed from `in`
  // Further inputs whose channels follow (a 1x1 convolution reading a Concat's inputs in place): at pixel
  // 0, the tile reads them at more_in[i] + more_offset; the weights run on across them.
  int more;
  const float* const* more_in;
  const int* more_channels;
  std::ptrdiff_t more_offset;
  const std::ptrdiff_t* taps;  // offset of each tap from the pixel (phase plane included)
  int ntaps;
  const float* weights;        // packed [channel][tap][co_block]
  const float* bias;           // co_block values
  float* out;                  // co_block rows of tile_px floats
  std::ptrdiff_t out_channel;  // floats between output rows
  int activation;              // ConvActivation
  const float* residual;       // null, or added after the activation (same layout as out)
  // bf16 tiles: null, or co_block values: the sum starts at 0 and becomes sum * scale + bias (int8-grid
  // weights packed as their integers).
  const float* scale;
  // bf16 tiles: nonzero to write the outputs as bf16 channel pairs
  // (ConvInput::pairs' layout): `out` is the block's first pair plane at the tile's first pixel,
  // `out_channel` the floats between pair planes (all co_block channels are written: a whole block);
  // `residual` null.
  int pairs_out;
};

// Depthwise: one channel, `tiles` consecutive tiles of tile_px pixels (flat in and out).
struct DwJob {
  const float* in;
  int tiles;
  const std::ptrdiff_t* taps;
  int ntaps;
  const float* weights;  // ntaps values
  float bias;
  float* out;
  int activation;
};

// Depthwise 3x3, stride 1, padding 1 on every side: output rows [y0, y1) of one channel of h x w, read in
// place from NCHW (no band split) and written as NCHW rows, the residual (same layout as out, or null) added
// after the activation. Each input row is copied once into a ring of three zero-padded rows of `row_floats`
// (a zero, w values, zeros up to a whole vector past the last full one: (ceil(w / lanes) + 1) * lanes), which
// the nine taps read as aligned vectors and shifts of them; `rows`: 3 * row_floats + lanes floats of
// scratch, any alignment.
//
// The flat variant (KernelSet::dw3_flat, rows too narrow for vectors along them: 15 x 20 is a vector and a
// quarter a row) runs the channel's rows [y0, y1) as one flat sequence of pixels instead: `rows` takes the
// rows y0 - 1 .. y1 at their places in a copy of the channel that has w + 1 zeros before it and w + 1 + lanes
// after it (h * w + 2 * (w + 1) + lanes floats, any alignment), so that every tap reads inside it, and the
// taps that would wrap around a row's ends (column -1 is the row above's last pixel in the flat sequence,
// column w the next row's first) are cleared with `masks`: [0, n) all bits set except at column 0, [n, 2 n)
// except at column w - 1, n = `row_floats`: h * w rounded up to whole vectors plus one vector (a band that
// starts off a vector boundary reads its last vector past the rounded end).
struct Dw3Job {
  const float* in;
  int h, w, y0, y1;
  const float* weights;  // 9 values, row-major
  float bias;
  float* out;
  const float* residual;
  int activation;
  float* rows;
  std::ptrdiff_t row_floats;
  const std::int32_t* masks;  // dw3_flat only
  // -1: `in` is the channel's floats; 0 or 1: `in` is its pair plane (ConvInput::pairs), the channel the low
  // (0) or high (1) bf16 of each word, widened as the rows are copied.
  int pair_half = -1;
};

// 3x3, stride 1 or 2, padding 1, vectorised over output channels (KernelSet::oc_tile): `oc_px` consecutive
// output pixels of one row (1 for oc_one) x oc_co output channels, each pixel's taps broadcast from the NCHW
// input in place; no band copy, no phase split. `in` (and each more_in) + `offset` is where pixel 0's
// top-left tap reads: input row stride * oy - 1, column stride * ox - 1 (may lie outside the image: only
// taps inside it are read). Tap rows [ky0, ky1) are inside the image; the tiles' edge variants skip column
// -1 (pixel 0) and column w (the last pixel, stride 1); oc_one checks every column against `w`.
struct OcJob {
  const float* in;
  std::ptrdiff_t plane;  // floats per input channel
  int channels;
  int more;  // further inputs whose channels follow (a Concat read in place), as in TileJob
  const float* const* more_in;
  const int* more_channels;
  std::ptrdiff_t offset;
  int w;  // input row length
  int ky0, ky1;
  int ix0;                     // oc_one: input column of tap column 0
  const float* weights;        // [channel][9][oc_co]
  const float* bias;           // oc_co values
  float* out;                  // output channel 0 of the block at the tile's first pixel
  std::ptrdiff_t out_channel;  // floats between output channels
  int rows;                    // output channels of the block that exist (the last block may be partial)
  int activation;
  const float* residual;  // null, or like out
  // bf16 tiles (KernelSet::pairs): `in` is channel pairs (one bf16 pair per pixel, `channels` counts pairs,
  // `more` is 0) and `scale` null or oc_co values, as in TileJob.
  const float* scale;
  // bf16 tiles: nonzero to write the outputs as bf16 channel pairs (ConvInput::pairs' layout): `out` is the
  // block's first pair plane at the tile's first pixel, `out_channel` the floats between pair planes, `rows`
  // still counts channels (the last pair of an odd count gets 0 in its high half); `residual` null.
  int pairs_out;
};

// Winograd F(4x4, 3x3) and F(6x4, 3x3) for 3x3 stride-1 padding-1 convolutions (fp32): each kTH x 4 block of
// outputs (kTH = 4 or 6 rows; "tile" (ty, tx) covers output rows kTH ty .. kTH ty + kTH - 1, columns 4 tx ..
// 4 tx + 3; th x tw tiles cover the image) from the (kTH + 2) x 6 input block around it. Tiles are counted
// flat with a dummy tile closing each tile row: tile (ty, tx) is number ty * (tw + 1) + tx, so that a vector
// of consecutive tiles runs across tile rows (the dummy's values are computed and dropped). The input
// transform V = Bv^T d Bh turns each tile's block of each input channel into 6 (kTH + 2) values, one per
// position xi; then for every xi a GEMM over the input channels, M[xi] = U[xi] V[xi] (U = Gv g Gh^T: the
// weights transformed and packed at the first forward), runs on the 1x1 tiles (KernelSet::tile_1); the
// output transform Y = Av^T M Ah turns each tile's sums of each output channel into its 4 kTH outputs, with
// the bias, activation and residual, written into NCHW.
//
// One input channel's tile rows [ty0, ty1) into V: position xi of flat tile t (counted from tile (ty0, 0))
// at v + xi * xi_stride + t. The last vector may write up to lanes - 1 floats past the band's
// (ty1 - ty0) * (tw + 1) tiles. `rows`: (kTH + 2) (wp + trs) floats of scratch, wp = 4 (tw + 1) + 2 lanes,
// trs = 4 (ty1 - ty0) (tw + 1) + 6 lanes (kTH + 2 zero-padded input rows, as many flat rows of their column
// transforms).
struct WinoInJob {
  const float* in;  // the channel's h x w plane
  int h, w, tw, ty0, ty1;
  float* v;
  std::ptrdiff_t xi_stride;
  float* rows;
};
// The outputs of `rows` output channels x `nt` tiles (flat indices t0 .. t0 + nt - 1 of the image, dummies
// included and skipped) from the GEMM's sums: m[(xi * co_block + r) * m_stride + t], r < rows, t < nt rounded
// up to whole vectors.
struct WinoOutJob {
  const float* m;
  int m_stride, co_block, rows, nt, t0;
  int h, w, tw;
  const float* bias;           // rows values
  float* out;                  // output channel 0 of the block, an h x w plane
  std::ptrdiff_t out_channel;  // floats between output channels
  const float* residual;       // null, or like out
  int activation;
  float* y;  // scratch: 4 kTH m_stride + lanes floats (a row's last vector reads past its tiles)
};

// A unit's share of a 1x1 layer's output whose tiles ran without the activation (PackedConv::forward with
// a ConvUpscaledAddend): channels [c0, c1), flat pixels [p0, p1) of planes `w` wide, each gets the addend's
// plane upscaled `f` times by nearest neighbour, then the activation.
struct UpAddJob {
  float* out;                           // channel 0's plane
  const float* z;                       // channel 0's low plane ((h / f) x (w / f))
  std::ptrdiff_t out_plane, low_plane;  // floats per output / low plane
  int w, f, c0, c1;
  std::ptrdiff_t p0, p1;
  int activation;
};

using TileFn = void (*)(const TileJob&);
using OcFn = void (*)(const OcJob&);
using DwFn = void (*)(const DwJob&);
using Dw3Fn = void (*)(const Dw3Job&);
using WinoInFn = void (*)(const WinoInJob&);
using WinoOutFn = void (*)(const WinoOutJob&);
using Stride2Fn = void (*)(const float* src, int n, int avail, float* dst);
// dst[i] = the bf16 of a[i] in its low half, of b[i] (0 when b is null) in its high half, i < n: a channel
// pair of the bf16 kernels' input. Round to nearest even (vcvtneps2bf16).
using PackPairsFn = void (*)(const float* a, const float* b, std::ptrdiff_t n, float* dst);
using UpAddFn = void (*)(const UpAddJob&);
// a[i] += the float of pairs[i]'s low half, b[i] (b not null) += its high half's, i < n: a residual of bf16
// channel pairs (pack_pairs' layout) added to two channels' fp32 sums, each widening exact.
using AddPairsFn = void (*)(float* a, float* b, const float* pairs, std::ptrdiff_t n);

struct KernelSet {
  const char* name;
  int co_block;  // output channels per tile
  int tile_px;   // pixels per tile (vectors x lanes)
  int lanes;     // floats per vector
  // [v - 1]: tiles of v vectors (v <= tile_px / lanes), for a band's last, partial tile.
  TileFn tile_1[3];  // ntaps == 1 (1x1: a GEMM on NCHW)
  TileFn tile_9[3];  // ntaps == 9 (3x3)
  TileFn tile_n[3];  // any ntaps
  DwFn dw;
  Dw3Fn dw3;
  Dw3Fn dw3_flat;
  Stride2Fn stride2;  // dst[k] = src[2k], k < n, reading src[0, avail)
  // The bf16 set: the tiles read channel pairs (`in`: one float-sized bf16 pair per pixel and pair,
  // `channels` counts pairs; `weights`: packed [pair][tap][co_block] pairs) and pack_pairs builds them; its
  // oc tiles too (OcJob.in: the whole input as pair planes).
  bool pairs;
  PackPairsFn pack_pairs;
  // 3x3 padding 1 over output channels (OcJob): oc_tile[stride - 1][left + 2 * right], tiles of oc_px pixels,
  // `left` when pixel 0 is on column 0, `right` when the last pixel is on column w - 1 (stride 1); oc_one one
  // pixel, anywhere. Null where the level has none.
  OcFn oc_tile[2][4];
  OcFn oc_one;
  int oc_px, oc_co;
  // The same tiles over half the channels (one vector: lanes channels), for a last block of at most `lanes`
  // channels (80 = 32 + 32 + 16: the full tile computed 32 there, a sixth of the layer's multiply-adds
  // wasted; YOLOv8n's six 3x3 head layers with 80 outputs, Zen 4 VM, 2 threads: 7.9-9.8 -> 6.6-7.6 ms in
  // six paired rounds) and for layers of exactly `lanes` channels at stride 1. Null where the level has none.
  OcFn oc_half[2][4];
  // Winograd transforms (WinoInJob, WinoOutJob): [0] F(4x4, 3x3), [1] F(6x4, 3x3) (tiles of 6 output rows x
  // 4 columns: F(6, 3) down the columns, F(4, 3) along the rows); the GEMMs run on tile_1.
  WinoInFn wino_in[2];
  WinoOutFn wino_out[2];
  // The set whose tiles (co_block, tile_px, tile_1) and transforms the Winograd path runs on: null for this
  // one. AVX2 runs it on 4 x 3 tiles (conv_avx2_wino.cpp).
  const KernelSet* wino;
  UpAddFn up_add;
  AddPairsFn add_pairs;  // the bf16 set's (PackedConv::forward's residual_pairs); null in the others
};

// Null when the level is not compiled in (not x86-64 GCC).
const KernelSet* avx512_kernels();
const KernelSet* avx2_kernels();
// AVX2's Winograd tiles: 4 output channels x 3 ymm of pixels (null when not compiled in).
const KernelSet* avx2_wino_kernels();
const KernelSet* portable_kernels();
// AVX512_BF16 (vdpbf16ps): null when not compiled in; the caller checks the CPU.
const KernelSet* avx512bf16_kernels();
// conv_avx512_fma_width_ratio's measurement (conv_avx512.cpp); 0 when not compiled in. The caller checks the
// CPU.
double avx512_fma_width_ratio();

}  // namespace aitw::kernel::conv_detail
