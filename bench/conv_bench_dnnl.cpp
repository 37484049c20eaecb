#include "conv_bench_dnnl.hpp"

#include <omp.h>

#include <dnnl.hpp>

namespace aitw::bench {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

class DnnlConvImpl : public DnnlConv {
 public:
  DnnlConvImpl(const ConvLayerCase& c, const float* in) : eng_(dnnl::engine::kind::cpu, 0), strm_(eng_) {
    const auto& s = c.shape;
    const memory::dim n = 1, ci = s.in_channels, co = s.out_channels, g = s.groups;
    const memory::dims src_d{n, ci, c.h, c.w}, dst_d{n, co, s.out_h(c.h), s.out_w(c.w)};
    const memory::dims wei_d = g > 1 ? memory::dims{g, co / g, ci / g, s.kernel_h, s.kernel_w}
                                     : memory::dims{co, ci, s.kernel_h, s.kernel_w};
    const memory::desc src_any(src_d, dt::f32, tag::any), dst_any(dst_d, dt::f32, tag::any),
        wei_any(wei_d, dt::f32, tag::any), bias_md({co}, dt::f32, tag::a);
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, wei_any, bias_md,
        dst_any, {s.stride_h, s.stride_w}, {s.pad_top, s.pad_left}, {s.pad_bottom, s.pad_right});
    dnnl::post_ops po;
    if (c.silu) po.append_eltwise(1.f, dnnl::algorithm::eltwise_swish, 1.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(po);
    pd_ = dnnl::convolution_forward::primitive_desc(desc, attr, eng_);
    conv_ = dnnl::convolution_forward(pd_);

    src_nchw_ = memory({src_d, dt::f32, tag::nchw}, eng_, const_cast<float*>(in));
    dst_nchw_ = memory({dst_d, dt::f32, tag::nchw}, eng_);
    src_ = memory(pd_.src_desc(), eng_);
    dst_ = memory(pd_.dst_desc(), eng_);
    memory wei_plain({wei_d, dt::f32, g > 1 ? tag::goihw : tag::oihw}, eng_,
                     const_cast<float*>(c.weights.ptr<float>()));
    wei_ = memory(pd_.weights_desc(), eng_);
    dnnl::reorder(wei_plain, wei_).execute(strm_, wei_plain, wei_);
    bias_ = memory(bias_md, eng_);
    float* b = static_cast<float*>(bias_.get_data_handle());
    for (int o = 0; o < co; ++o) b[o] = c.bias.empty() ? 0.f : c.bias.ptr<float>()[o];
    in_reorder_ = dnnl::reorder(src_nchw_, src_);
    out_reorder_ = dnnl::reorder(dst_, dst_nchw_);
    in_reorder_.execute(strm_, src_nchw_, src_);
    strm_.wait();
  }

  void run_nchw() override {
    in_reorder_.execute(strm_, src_nchw_, src_);
    run_conv();
    out_reorder_.execute(strm_, dst_, dst_nchw_);
    strm_.wait();
  }
  void run_blocked() override {
    run_conv();
    strm_.wait();
  }
  const float* nchw_output() const override { return static_cast<const float*>(dst_nchw_.get_data_handle()); }
  const char* impl_name() const override { return pd_.impl_info_str(); }

 private:
  void run_conv() {
    conv_.execute(
        strm_,
        {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, wei_}, {DNNL_ARG_BIAS, bias_}, {DNNL_ARG_DST, dst_}});
  }
  dnnl::engine eng_;
  dnnl::stream strm_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward conv_;
  dnnl::reorder in_reorder_, out_reorder_;
  memory src_nchw_, dst_nchw_, src_, dst_, wei_, bias_;
};

}  // namespace

std::unique_ptr<DnnlConv> make_dnnl_conv(const ConvLayerCase& c, const float* in) {
  return std::make_unique<DnnlConvImpl>(c, in);
}

void dnnl_set_threads(int n) {
  omp_set_num_threads(n);
}

}  // namespace aitw::bench
