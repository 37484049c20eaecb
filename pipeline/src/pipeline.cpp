#include "aitw/pipeline/pipeline.hpp"

#include "aitw/base/clock.hpp"
#include "aitw/base/log.hpp"
#include "aitw/model/lookup.hpp"

#include <tbb/flow_graph.h>
#include <tbb/global_control.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <thread>

namespace aitw::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(std::int64_t a_ns, std::int64_t b_ns) {
  return static_cast<double>(b_ns - a_ns) / 1e6;
}

}  // namespace

// What the header keeps private: the flow graph, its inference threads, the pooled jobs and the latest-wins
// slots, with the locks and the TBB limit that go with them.
struct Pipeline::Impl {
  struct Job;
  struct Graph;

  Impl(PipelineConfig config, ResultCallback on_result);
  ~Impl();
  void submit(FrameIn frame);
  void cancel(std::uint64_t tag);
  bool has_capacity() const;
  void wait_idle();
  void start(Job* job, FrameIn&& frame);
  void run_prepare(Job* job);
  void run_infer(Job* job, Detector& detector);
  void run_finish(Job* job);
  void deliver(FrameResult&& result);

  PipelineConfig config_;
  ResultCallback on_result_;
  std::vector<std::unique_ptr<Detector>> detectors_;
  std::vector<std::unique_ptr<Job>> jobs_;

  mutable std::mutex mutex_;
  std::mutex callback_mutex_;  // results are delivered one at a time
  std::condition_variable idle_;
  std::vector<Job*> free_jobs_;
  std::deque<FrameIn> parked_;  // at most one frame per tag, oldest-parked tag first
  int in_flight_ = 0;
  PipelineStats stats_;

  std::unique_ptr<tbb::global_control> parallelism_;
  std::unique_ptr<Graph> graph_;  // last: destroyed first, after the frames inside have finished
};

// Everything one frame needs on its way through the graph; pooled and reused.
struct Pipeline::Impl::Job {
  FrameIn frame;
  cv::Mat decoded;  // JPEG frames, decoded (reused when the size repeats)
  FrameWork work;
  FrameResult result;
  std::int64_t t_submit = 0, t_decoded = 0, t_prepared = 0, t_infer_start = 0, t_infer_end = 0;
};

// decode + the letterbox plan and NMS run as flow-graph tasks. Inference does not (and with it the
// preprocessing and the heads' decode, which use the network's own buffers: Detector::infer): a forward
// blocks for tens of milliseconds and parallelises itself over OpenCV's own TBB arena, so running it inside a
// graph task would pin the graph's worker (on 2 cores TBB has one) and leave OpenCV a single thread —
// measured: 62 ms forwards instead of 35-45, and the next frame's decode waiting behind the whole forward.
// The async_node hands each prepared frame to a dedicated thread per network and takes the result back.
struct Pipeline::Impl::Graph {
  using InferNode = tbb::flow::async_node<Job*, Job*>;
  tbb::flow::graph g;
  tbb::flow::function_node<Job*, Job*> prepare;
  InferNode infer;
  tbb::flow::function_node<Job*, tbb::flow::continue_msg> finish;

  // Inference threads: one per network, fed through one queue.
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<Job*, InferNode::gateway_type*>> queue;
  bool stopping = false;
  std::vector<std::thread> threads;

  Graph(Impl* p, int nets)
      : prepare(g, tbb::flow::unlimited,
                [p](Job* j) {
                  p->run_prepare(j);
                  return j;
                }),
        infer(g, tbb::flow::unlimited,
              [this](Job* j, InferNode::gateway_type& gw) {
                gw.reserve_wait();  // keeps wait_for_all() waiting while the job is outside the graph
                {
                  std::lock_guard<std::mutex> lock(m);
                  queue.emplace_back(j, &gw);
                }
                cv.notify_one();
              }),
        // Serial: results are delivered one at a time.
        finish(g, tbb::flow::serial, [p](Job* j) {
          p->run_finish(j);
          return tbb::flow::continue_msg();
        }) {
    tbb::flow::make_edge(prepare, infer);
    tbb::flow::make_edge(infer, finish);
    for (int i = 0; i < nets; ++i)
      threads.emplace_back([this, p, i] {
        for (;;) {
          std::pair<Job*, InferNode::gateway_type*> item;
          {
            std::unique_lock<std::mutex> lock(m);
            cv.wait(lock, [this] { return stopping || !queue.empty(); });
            if (queue.empty()) return;
            item = queue.front();
            queue.pop_front();
          }
          p->run_infer(item.first, *p->detectors_[i]);
          item.second->try_put(item.first);
          item.second->release_wait();
        }
      });
  }
  ~Graph() {
    {
      std::lock_guard<std::mutex> lock(m);
      stopping = true;
    }
    cv.notify_all();
    for (auto& t : threads) t.join();
  }
};

Pipeline::Impl::Impl(PipelineConfig config, ResultCallback on_result)
    : config_(std::move(config)), on_result_(std::move(on_result)) {
  if (config_.nets < 1) config_.nets = 1;
  if (config_.threads_per_net < 1) config_.threads_per_net = 1;
  if (config_.max_in_flight < 1) config_.max_in_flight = config_.nets + 1;
  // OpenCV DNN parallelises each forward over its own TBB arena of this size.
  cv::setNumThreads(config_.threads_per_net);
  config_.detector.threads = 0;  // already set, globally, above
  config_.detector.model_path = model::resolve_model_path(config_.detector.model_path);
  // Enough TBB workers for every network's forward (its own thread plus threads_per_net - 1 workers) and
  // one more for decode/preprocess/postprocess, which would otherwise queue behind a forward.
  parallelism_ = std::make_unique<tbb::global_control>(
      tbb::global_control::max_allowed_parallelism,
      static_cast<std::size_t>(config_.nets * config_.threads_per_net + 1));
  for (int i = 0; i < config_.nets; ++i) {
    detectors_.push_back(std::make_unique<Detector>(config_.detector));
    if (config_.warm_width > 0 && config_.warm_height > 0)
      detectors_.back()->warm_up(detectors_.back()->input_size_for(config_.warm_width, config_.warm_height));
  }
  for (int i = 0; i < config_.max_in_flight; ++i) {
    jobs_.push_back(std::make_unique<Job>());
    free_jobs_.push_back(jobs_.back().get());
  }
  graph_ = std::make_unique<Graph>(this, config_.nets);
}

Pipeline::Impl::~Impl() {
  wait_idle();
  graph_->g.wait_for_all();
}

Pipeline::Pipeline(PipelineConfig config, ResultCallback on_result)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(on_result))) {}

Pipeline::~Pipeline() = default;

void Pipeline::submit(FrameIn frame) {
  impl_->submit(std::move(frame));
}

void Pipeline::cancel(std::uint64_t tag) {
  impl_->cancel(tag);
}

bool Pipeline::has_capacity() const {
  return impl_->has_capacity();
}

void Pipeline::wait_idle() {
  impl_->wait_idle();
}

PipelineStats Pipeline::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  return impl_->stats_;
}

void Pipeline::reset_stats() {
  std::lock_guard<std::mutex> lock(impl_->mutex_);
  impl_->stats_ = PipelineStats{};
}

const Detector& Pipeline::detector() const {
  return *impl_->detectors_.front();
}

const PipelineConfig& Pipeline::config() const {
  return impl_->config_;
}

namespace {
// The result of a frame that never reached inference.
FrameResult not_processed(const FrameIn& f, const char* cause, const char* message) {
  FrameResult r;
  r.frame_id = f.frame_id;
  r.tag = f.tag;
  r.capture_ns = f.capture_ns;
  r.error = message;
  r.error_cause = cause;
  return r;
}
}  // namespace

void Pipeline::Impl::submit(FrameIn frame) {
  Job* job = nullptr;
  std::optional<FrameResult> replaced;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.offered;
    if (frame.capture_ns == 0) frame.capture_ns = now_ns();
    if (free_jobs_.empty()) {
      const auto same_tag =
          std::find_if(parked_.begin(), parked_.end(), [&](const FrameIn& f) { return f.tag == frame.tag; });
      if (same_tag !=
          parked_.end()) {  // latest wins: the parked frame is replaced, and told so, never silently
        ++stats_.dropped;
        replaced =
            not_processed(*same_tag, "dropped", "replaced by a newer frame before inference (latest wins)");
        *same_tag = std::move(frame);  // keeps the tag's turn
      } else {
        parked_.push_back(std::move(frame));
      }
    } else {
      job = free_jobs_.back();
      free_jobs_.pop_back();
      ++in_flight_;
    }
  }
  if (replaced) deliver(std::move(*replaced));
  if (job) start(job, std::move(frame));
}

void Pipeline::Impl::cancel(std::uint64_t tag) {
  std::optional<FrameResult> cancelled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it =
        std::find_if(parked_.begin(), parked_.end(), [&](const FrameIn& f) { return f.tag == tag; });
    if (it == parked_.end()) return;
    ++stats_.dropped;
    cancelled = not_processed(*it, "cancelled", "cancelled before inference (its sender went away)");
    parked_.erase(it);
    if (in_flight_ == 0 && parked_.empty()) idle_.notify_all();
  }
  deliver(std::move(*cancelled));
}

void Pipeline::Impl::deliver(FrameResult&& r) {
  if (!on_result_) return;
  std::lock_guard<std::mutex> lock(callback_mutex_);
  try {
    on_result_(std::move(r));
  } catch (const std::exception& e) {  // the job must still be recycled, or wait_idle() never returns
    log_error(std::string("pipeline: result callback threw: ") + e.what());
  } catch (...) {
    log_error("pipeline: result callback threw");
  }
}

bool Pipeline::Impl::has_capacity() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !free_jobs_.empty() && parked_.empty();
}

void Pipeline::Impl::start(Job* job, FrameIn&& frame) {
  job->frame = std::move(frame);
  job->t_submit = now_ns();
  job->result = FrameResult{};
  job->result.frame_id = job->frame.frame_id;
  job->result.tag = job->frame.tag;
  job->result.capture_ns = job->frame.capture_ns;
  job->result.width = job->frame.width;
  job->result.height = job->frame.height;
  graph_->prepare.try_put(job);
}

void Pipeline::Impl::run_prepare(Job* j) {
  FrameResult& r = j->result;
  kernel::ImageView view;
  if (auto error = decode_frame(j->frame, j->decoded, view)) {
    r.error_cause = std::move(error->cause);
    r.error = std::move(error->message);
    j->t_decoded = j->t_prepared = now_ns();
    return;
  }
  r.width = view.width;
  r.height = view.height;
  j->t_decoded = now_ns();
  try {
    detectors_.front()->prepare(view, j->work);
  } catch (const std::exception& e) {
    r.error_cause = "preprocess_failed";
    r.error = e.what();
    j->t_decoded = j->t_prepared = now_ns();
    return;
  }
  r.input = j->work.input;
  j->t_prepared = now_ns();
}

void Pipeline::Impl::run_infer(Job* j, Detector& det) {
  j->t_infer_start = now_ns();
  if (j->result.error.empty()) {
    try {
      det.infer(j->work, j->frame.post.get());
    } catch (const std::exception& e) {
      j->result.error_cause = "infer_failed";
      j->result.error = e.what();
    }
  }
  j->t_infer_end = now_ns();
}

void Pipeline::Impl::run_finish(Job* j) {
  FrameResult& r = j->result;
  if (r.error.empty()) {
    try {
      detectors_.front()->finish(j->work, r.detections, j->frame.post.get());
    } catch (const std::exception& e) {
      r.error_cause = "postprocess_failed";
      r.error = e.what();
    }
  }
  const std::int64_t t_done = now_ns();
  // The preprocessing runs in the inference stage, into the network's own input buffer (Detector::infer):
  // it counts as preprocessing, not inference.
  const double pre = j->work.preprocess_ms;
  r.ms = {ms_between(j->t_submit, j->t_decoded), ms_between(j->t_decoded, j->t_prepared) + pre,
          ms_between(j->t_prepared, j->t_infer_start), ms_between(j->t_infer_start, j->t_infer_end) - pre,
          ms_between(j->t_infer_end, t_done)};
  r.e2e_ms = ms_between(r.capture_ns, t_done);
  r.infer_start_ns = j->t_infer_start;
  r.infer_end_ns = j->t_infer_end;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (r.error.empty()) {
      ++stats_.processed;
      stats_.e2e.record(r.e2e_ms);
      stats_.decode.record(r.ms.decode);
      stats_.preprocess.record(r.ms.preprocess);
      stats_.queue.record(r.ms.queue);
      stats_.infer.record(r.ms.infer);
      stats_.postprocess.record(r.ms.postprocess);
    } else {
      ++stats_.errors;
      ++stats_.errors_by_cause[r.error_cause];
    }
  }
  deliver(std::move(r));

  // Recycle the job: straight onto the parked frame if there is one.
  std::optional<FrameIn> next;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!parked_.empty()) {
      next = std::move(parked_.front());
      parked_.pop_front();
    } else {
      free_jobs_.push_back(j);
      --in_flight_;
      if (in_flight_ == 0) idle_.notify_all();
    }
  }
  if (next) start(j, std::move(*next));
}

void Pipeline::Impl::wait_idle() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return in_flight_ == 0 && parked_.empty(); });
}

}  // namespace aitw::pipeline
