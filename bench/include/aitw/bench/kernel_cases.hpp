#pragma once
// Kernel-vs-OpenCV comparisons shared by `aitw bench kernels` and the Google Benchmark binary, so both
// measure exactly the same work. Each case runs ours and the usual OpenCV code on the same inputs.
#include <functional>
#include <memory>
#include <string>

#include <vector>
#include "aitw/base/defaults.hpp"
#include "aitw/kernel/conv.hpp"

namespace aitw::bench {

struct KernelCase {
  std::string name;      // e.g. "preprocess_640x480_fresh"
  std::string baseline;  // what the baseline is, for the table
  std::function<void()> ours;
  std::function<void()> opencv;
};

// Builds every case; real head outputs come from running the models in `shared_dir`/models on the sample
// images (throws std::runtime_error naming a missing file).
std::vector<KernelCase> make_kernel_cases(const std::string& shared_dir);

struct KernelResult {
  std::string name, baseline;
  double ours_ms = 0, baseline_ms = 0;  // medians over repetitions of the per-call mean
  double speedup = 0;  // median over repetitions of baseline / ours measured in the same repetition
  int repetitions = 0;
};

// Each repetition times ours and the baseline back to back (alternating which goes first), enough calls
// each for ~`min_ms` of work, so that the ratio of one repetition sees the same machine state.
std::vector<KernelResult> run_kernel_cases(const std::vector<KernelCase>& cases, int repetitions,
                                           double min_ms = 50,
                                           const std::function<void(const KernelResult&)>& on_result = {});

}  // namespace aitw::bench

namespace aitw::bench {

struct BenchKernelsOptions {
  std::string shared_dir;  // the folder with models/ and datasets/ (--shared, or $AITW_SHARED_DIR)
  int repetitions = 9;
  std::string json_path;  // empty = no JSON file
  std::string gate;       // "preprocess_640x480_fresh>=5,decode_nms>=5": every kernel whose name starts with
                          // the prefix must reach that speedup
};

// `aitw bench kernels`: prints the table, writes {"kernels": [{"name", "ours_ms", "baseline_ms", "speedup"}]}
// and checks the gate. Returns 0, 1 when a gate fails, 2 on a usage or setup error.
int run_bench_kernels(const BenchKernelsOptions& options, std::ostream& out);

}  // namespace aitw::bench

namespace aitw::bench {

struct BenchLayersOptions {
  std::string model{kDefaultModel};  // path or name (model search dirs)
  int height = 480, width = 640;
  bool opencv_layers = false;  // the rewritten graph with OpenCV's own layers instead of aitw's
  kernel::ConvPrecision precision = kernel::ConvPrecision::Fp32;  // of aitw's convolutions
  int repetitions = 20;
  int threads = 0;        // OpenCV threads for the forward; 0 = OpenCV's default
  std::string json_path;  // also write the figures as JSON here
  // Rounds on demand (bench/peer/run.sh): after the warm-up print {"ready": true}, then for each line read
  // from stdin run `repetitions` forwards and print {"round", "forward_ms_median"} as one JSON line; at the
  // end of stdin, the report covers every round (the text report is left out: `out` carries JSON lines only).
  bool stdin_rounds = false;
};

// `aitw bench layers`: per-layer-type forward time from cv::dnn::Net::getPerfProfile (mean over
// repetitions), the slowest layers, the total, and the wall time of each whole forward (median: what
// bench/peer/run.sh compares with ONNX Runtime). Returns 0, or 2 on a model error.
int run_bench_layers(const BenchLayersOptions& options, std::ostream& out);

}  // namespace aitw::bench
