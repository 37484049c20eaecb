#pragma once
// The engine that serve, replay and bench share: a tbb::flow::graph
//   submit -> [latest-wins admission] -> decode + preprocess -> infer (N networks) -> decode + NMS -> result
// with bounded in-flight frames, pooled per-frame buffers and per-stage latency histograms.
//
// Latest-wins: at most `max_in_flight` frames are inside the graph. A frame that arrives when it is full
// waits in a one-frame slot; a newer arrival replaces it and the replaced frame is counted as dropped, so
// the worker always starts on the freshest frame and latency stays bounded when input outpaces it.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "aitw/kernel/detection.hpp"
#include "aitw/pipeline/detector.hpp"
#include "aitw/pipeline/latency_histogram.hpp"

namespace aitw::pipeline {

enum class PixelFormat { RGB8, BGR8, JPEG };
const char* to_string(PixelFormat f);

struct FrameIn {
  std::uint64_t frame_id = 0;
  std::int64_t capture_ns = 0;  // steady_clock (CLOCK_MONOTONIC) nanoseconds; 0 = use the submit time
  PixelFormat format = PixelFormat::JPEG;
  int width = 0, height = 0;  // declared size; raw formats must match it exactly
  std::string data;
  std::uint64_t tag = 0;  // the caller's, echoed in the result (e.g. which session sent it)
  // This frame's thresholds and class filter; null = the detector's.
  std::shared_ptr<const PostOptions> post = nullptr;
};

// Frames above this many pixels are refused before anything is allocated for them: 8K UHD (7680x4320)
// fits. A JPEG's size is read from its header first, so a few hostile bytes declaring 65535x65535 cost
// nothing (OpenCV alone would allocate up to 3 GB for it).
inline constexpr std::int64_t kMaxFramePixels = std::int64_t{1} << 25;

// Why a frame's bytes do not make an image: `cause` is decode_failed, size_mismatch or too_large.
struct FrameDecodeError {
  std::string cause, message;
};
// The pipeline's first stage: a view of the frame's pixels. RGB8/BGR8 must hold exactly width*height*3
// bytes and are viewed in place; JPEG (only JPEG: other formats OpenCV could decode are refused) is
// checked against the declared size and `max_pixels` from its header, then decoded into `scratch`
// (reused when the size repeats). Never throws for bad bytes.
std::optional<FrameDecodeError> decode_frame(const FrameIn& frame, cv::Mat& scratch, kernel::ImageView& view,
                                             std::int64_t max_pixels = kMaxFramePixels);
// The width and height in a JPEG's start-of-frame header; nullopt when the bytes are not a JPEG with one.
std::optional<std::pair<int, int>> jpeg_dimensions(std::string_view bytes);

// Milliseconds spent in each stage of one frame.
struct StageMs {
  double decode = 0, preprocess = 0, queue = 0, infer = 0, postprocess = 0;
};

struct FrameResult {
  std::uint64_t frame_id = 0;
  std::int64_t capture_ns = 0;
  int width = 0, height = 0;
  InputSize input;
  std::vector<kernel::Detection> detections;
  StageMs ms;
  double e2e_ms = 0;  // capture -> result
  // When the forward ran (steady clock, ns): which frames' forwards overlapped, for traces and tests.
  std::int64_t infer_start_ns = 0, infer_end_ns = 0;
  std::string error;  // non-empty: the frame could not be processed (and why)
  // Short machine-readable cause: decode_failed, size_mismatch, ..., or "dropped" for a frame replaced
  // in the latest-wins slot.
  std::string error_cause;
  std::uint64_t tag = 0;  // FrameIn::tag, echoed
};

struct PipelineConfig {
  DetectorConfig detector;
  int nets = 1;             // network instances run concurrently
  int threads_per_net = 2;  // OpenCV DNN threads for each forward
  int max_in_flight = 0;    // frames inside the graph; 0 = nets + 1 (one frame decoded ahead)
  // Frame size to build the networks for before the first frame (0 = on the first frame).
  int warm_width = 0, warm_height = 0;
};

struct PipelineStats {
  std::uint64_t offered = 0;    // submit() calls
  std::uint64_t processed = 0;  // results without error
  std::uint64_t errors = 0;     // results with an error
  std::uint64_t dropped = 0;    // replaced in the latest-wins slot
  std::map<std::string, std::uint64_t> errors_by_cause;
  LatencyHistogram e2e, decode, preprocess, queue, infer, postprocess;
};

class Pipeline {
 public:
  using ResultCallback = std::function<void(FrameResult&&)>;
  // Loads the model into `nets` detectors; throws model::ModelError. Every submitted frame gets exactly one
  // callback — its result, or an error (cause "dropped") when a newer frame replaced it — one at a time,
  // on pipeline threads or inside submit().
  Pipeline(PipelineConfig config, ResultCallback on_result);
  ~Pipeline();  // waits for the frames inside to finish
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Never blocks: admits the frame, or parks it in its tag's latest-wins slot (replacing, and dropping, the
  // frame of the same tag parked there). Parked frames are admitted in the order their tags first parked
  // (FIFO across tags): callers sharing one pipeline (the server's sessions) get turns, none starves.
  void submit(FrameIn frame);
  // Withdraws the frame of `tag` waiting for its turn, if any (its caller went away): it gets its callback,
  // an error with cause "cancelled", and counts as dropped. Frames already inside finish as usual.
  void cancel(std::uint64_t tag);
  // True when a submit() now would be admitted straight away (for saturated-throughput feeding).
  bool has_capacity() const;
  // Blocks until every admitted or parked frame has produced its result.
  void wait_idle();

  PipelineStats stats() const;
  void reset_stats();
  const Detector& detector() const;
  const PipelineConfig& config() const;

 private:
  struct Impl;  // the flow graph, its inference threads, the job pool and the latest-wins slots
  std::unique_ptr<Impl> impl_;
};

}  // namespace aitw::pipeline
