#pragma once
// oneDNN (Debian libdnnl-dev 2.6, GNU OpenMP threading) as the second convolution route of aitw_conv_bench:
// fp32 direct convolution with SiLU as its swish post-op, primitive formats chosen by oneDNN (any).
#include <memory>

#include "aitw/bench/conv_shapes.hpp"

namespace aitw::bench {

class DnnlConv {
 public:
  virtual ~DnnlConv() = default;
  // NCHW in, NCHW out: reorders to and from oneDNN's blocked layout around the convolution (what a layer
  // between OpenCV layers would have to do).
  virtual void run_nchw() = 0;
  // The convolution alone, on input already in its blocked layout (activations kept blocked end to end).
  virtual void run_blocked() = 0;
  virtual const float* nchw_output() const = 0;
  virtual const char* impl_name() const = 0;  // oneDNN's implementation, e.g. "jit:avx512_core"
};

// `in`: the NCHW input (1 image), kept alive by the caller.
std::unique_ptr<DnnlConv> make_dnnl_conv(const ConvLayerCase& c, const float* in);
void dnnl_set_threads(int n);

}  // namespace aitw::bench
