// aitw_wino_bf16_probe [--model yolo11n]: what a bf16 Winograd F(2x2, 3x3) would do to the accuracy of the
// model's 3x3 stride-1 layers, before building one. Per layer (real shape and weights at 480 x 640, inputs
// drawn as SiLU outputs of N(0, 1.5) values), the relative rms and max errors against an fp64 convolution of
// the fp32 inputs: of the bf16 direct tiles aitw runs (inputs rounded to bf16 as their producer's pairs are;
// the int8-grid weights exact; fp32 sums) and of F(2x2, 3x3) with its transformed weights U = G g G^T and
// transformed inputs V = B^T d B both rounded to bf16 (what vdpbf16ps would multiply), fp32 sums and output
// transform. Output tiles sampled every 7th in each direction. Figures: bench/RESULTS.md (2026-12-06).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "aitw/bench/conv_shapes.hpp"

namespace {
float bf16(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fff + ((u >> 16) & 1);
  u &= 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string model = argc > 2 && std::string(argv[1]) == "--model" ? argv[2] : "yolo11n";
  const auto layers = aitw::bench::extract_conv_layers(model, 480, 640);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.5f);
  double worst_d = 0, worst_w = 0;
  for (const auto& L : layers) {
    const auto& s = L.shape;
    if (s.kernel_h != 3 || s.stride_h != 1 || s.depthwise()) continue;
    const int ci = s.in_channels, co = s.out_channels, h = L.h, w = L.w;
    std::vector<float> x(static_cast<std::size_t>(ci) * h * w), xb(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float z = nd(rng);
      x[i] = z / (1.f + std::exp(-z));  // SiLU outputs (fp32: the reference's input)
      xb[i] = bf16(x[i]);               // as the producer rounded them to pairs
    }
    const float* wt = L.weights.ptr<float>();
    // Weights: aitw packs the int8-grid weights exactly (their integers, the scale with the bias): exact
    // here.
    auto X = [&](int c, int y, int xx) -> float {
      return (y < 0 || y >= h || xx < 0 || xx >= w) ? 0.f : x[(static_cast<std::size_t>(c) * h + y) * w + xx];
    };
    auto XB = [&](int c, int y, int xx) -> float {
      return (y < 0 || y >= h || xx < 0 || xx >= w) ? 0.f
                                                    : xb[(static_cast<std::size_t>(c) * h + y) * w + xx];
    };
    // Winograd weights U = G g G^T per (o, c), rounded to bf16.
    std::vector<float> U(static_cast<std::size_t>(co) * ci * 16);
    const double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
    for (int o = 0; o < co; ++o)
      for (int c = 0; c < ci; ++c) {
        const float* g = wt + (static_cast<std::size_t>(o) * ci + c) * 9;
        double t[4][3];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 3; ++j) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            U[((static_cast<std::size_t>(o) * ci + c) * 4 + i) * 4 + j] =
                bf16(static_cast<float>(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]));
      }
    double maxref = 0, e2d = 0, e2w = 0, emd = 0, emw = 0, r2 = 0;
    long cnt = 0;
    // A sample of 2x2 output tiles (every 7th tile in each direction) to keep the probe short.
    for (int ty = 0; ty + 1 < h; ty += 14)
      for (int tx = 0; tx + 1 < w; tx += 14) {
        // V per channel: B^T d B, d the 4x4 input patch from (ty-1, tx-1), rounded to bf16.
        std::vector<float> V(static_cast<std::size_t>(ci) * 16);
        for (int c = 0; c < ci; ++c) {
          float d[4][4];
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) d[i][j] = XB(c, ty - 1 + i, tx - 1 + j);
          float t[4][4];
          for (int j = 0; j < 4; ++j) {
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
          }
          for (int i = 0; i < 4; ++i) {
            V[c * 16 + i * 4 + 0] = bf16(t[i][0] - t[i][2]);
            V[c * 16 + i * 4 + 1] = bf16(t[i][1] + t[i][2]);
            V[c * 16 + i * 4 + 2] = bf16(t[i][2] - t[i][1]);
            V[c * 16 + i * 4 + 3] = bf16(t[i][1] - t[i][3]);
          }
        }
        for (int o = 0; o < co; ++o) {
          float M[16] = {};
          for (int c = 0; c < ci; ++c)
            for (int k = 0; k < 16; ++k)
              M[k] += U[(static_cast<std::size_t>(o) * ci + c) * 16 + k] * V[c * 16 + k];
          float t[2][4];
          for (int j = 0; j < 4; ++j) {
            t[0][j] = M[0 * 4 + j] + M[1 * 4 + j] + M[2 * 4 + j];
            t[1][j] = M[1 * 4 + j] - M[2 * 4 + j] - M[3 * 4 + j];
          }
          float yw[2][2];
          for (int i = 0; i < 2; ++i) {
            yw[i][0] = t[i][0] + t[i][1] + t[i][2];
            yw[i][1] = t[i][1] - t[i][2] - t[i][3];
          }
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx) {
              const int y = ty + dy, xx = tx + dx;
              double ref = 0;
              float dir = 0;
              for (int c = 0; c < ci; ++c)
                for (int ky = 0; ky < 3; ++ky)
                  for (int kx = 0; kx < 3; ++kx) {
                    const float g = wt[((static_cast<std::size_t>(o) * ci + c) * 3 + ky) * 3 + kx];
                    ref += static_cast<double>(g) * X(c, y - 1 + ky, xx - 1 + kx);
                    dir += g * XB(c, y - 1 + ky, xx - 1 + kx);
                  }
              maxref = std::max(maxref, std::fabs(ref));
              r2 += ref * ref;
              e2d += (dir - ref) * (dir - ref);
              e2w += (yw[dy][dx] - ref) * (yw[dy][dx] - ref);
              emd = std::max(emd, std::fabs(dir - ref));
              emw = std::max(emw, std::fabs(yw[dy][dx] - ref));
              ++cnt;
            }
        }
      }
    const double rms = std::sqrt(r2 / cnt);
    std::printf(
        "%-55s %3d->%3d %3dx%3d  rel rms: direct %.2e wino %.2e (x%.0f)  max/max|ref|: direct %.2e wino "
        "%.2e\n",
        L.name.c_str(), ci, co, h, w, std::sqrt(e2d / cnt) / rms, std::sqrt(e2w / cnt) / rms,
        std::sqrt(e2w / e2d), emd / maxref, emw / maxref);
    worst_d = std::max(worst_d, emd / maxref);
    worst_w = std::max(worst_w, emw / maxref);
  }
  std::printf("worst max/max|ref|: direct %.2e, winograd F(2x2) bf16 %.2e\n", worst_d, worst_w);
}
