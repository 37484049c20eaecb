#pragma once
// aitw's custom OpenCV DNN layers, inserted by the model adapter's rewrite (op types below) and created by
// OpenCV's ONNX importer through cv::dnn::LayerFactory.
//  - AitwSiLU: x * sigmoid(x) in one vectorised pass, replacing the exported Sigmoid + Mul pair. As an
//    ActivationLayer it is also fused into the preceding convolution, which OpenCV cannot do with the
//    pair (the convolution output has two consumers).
//  - AitwAttention (see kernel/src/dnn_layers.cpp): YOLO11's q/k/v attention core.
//  - Convolution (kernel/conv_layer.hpp): aitw's convolution for Conv nodes the adapter marked.
//  - Resize: for Resize nodes the adapter marked (kResizeMark: nearest, asymmetric, floor), integer upscales
//    (YOLO's 2x upsampling in the neck) in one parallel pass over all planes; OpenCV 4.6's layer calls
//    cv::resize once per channel plane. Anything else goes to OpenCV's own layer, kept inside.
//  - Pooling: for MaxPool nodes the adapter marked (kMaxPoolMark: k x k, stride 1, padding k / 2, SPPF's),
//    a separable max (rows, then columns) over all planes at once; OpenCV 4.6's pools each window whole.
//  - AitwMaxPoolChain: SPPF's three such pools in a row, as one layer with three outputs.

#include <opencv2/dnn.hpp>

namespace aitw::kernel {

inline constexpr const char* kSiLUOpType = "AitwSiLU";
inline constexpr const char* kAttentionOpType = "AitwAttention";
inline constexpr const char* kResizeMark = "aitw_resize";
inline constexpr const char* kMaxPoolMark = "aitw_max_pool";  // the window size k
// SPPF's chain of same-size max pools (y1 = pool(x), y2 = pool(y1), ...) as one node with every pool's
// output (attributes kMaxPoolMark: the window k; "outputs": how many pools): each plane goes through the
// whole chain while it is in L1, in one parallel loop instead of one per pool.
inline constexpr const char* kMaxPoolChainOpType = "AitwMaxPoolChain";
// Set by the adapter's pass_bf16_pairs on an AitwMaxPoolChain whose input a convolution writes as bf16
// channel pairs and whose outputs only bf16 convolutions read: the chain reads and writes pairs
// (kConvPairsOutAttr's layout). The values of the pairs its readers would make from the fp32 chain (a zero's
// sign aside: the bf16 conversion turns a negative denormal into -0, which max may then keep over a +0).
inline constexpr const char* kPoolPairsAttr = "aitw_pairs";

// Registers the layers with cv::dnn::LayerFactory; idempotent and thread-safe. Call before reading a net
// that contains them.
void register_dnn_layers();

// Whether the net's Resize layer is aitw's (the adapter marked its node) rather than OpenCV's. (SPPF's pools
// become an AitwMaxPoolChain layer, whose type says it.)
bool is_aitw_resize(const cv::Ptr<cv::dnn::Layer>& layer);

// For the profile: how many bf16 channel-pair outputs `layer` writes when it is an AitwMaxPoolChain on pairs
// (kPoolPairsAttr), else 0.
int max_pool_chain_pair_outputs(const cv::Ptr<cv::dnn::Layer>& layer);

}  // namespace aitw::kernel
