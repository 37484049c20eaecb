#include "aitw/pipeline/pipeline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace aitw::pipeline {
namespace {

const std::string kShared = AITW_SHARED_DIR;

cv::Mat camera_frame() {
  cv::Mat bus = cv::imread(kShared + "/datasets/images/bus.jpg"), f;
  cv::resize(bus(cv::Rect(0, 200, 810, 608)), f, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
  return f;
}

FrameIn jpeg_frame(const cv::Mat& bgr, std::uint64_t id) {
  std::vector<std::uint8_t> buf;
  cv::imencode(".jpg", bgr, buf);
  return {id, 0, PixelFormat::JPEG, bgr.cols, bgr.rows, std::string(buf.begin(), buf.end())};
}

FrameIn raw_frame(const cv::Mat& bgr, std::uint64_t id, PixelFormat fmt) {
  cv::Mat m = bgr;
  if (fmt == PixelFormat::RGB8) cv::cvtColor(bgr, m, cv::COLOR_BGR2RGB);
  return {id, 0, fmt, m.cols, m.rows, std::string(reinterpret_cast<const char*>(m.data), m.total() * 3)};
}

PipelineConfig config(int in_flight = 0) {
  PipelineConfig c;
  c.detector.model_path = kShared + "/models/yolo11n.onnx";
  c.max_in_flight = in_flight;
  c.warm_width = 640;
  c.warm_height = 480;
  return c;
}

struct Collector {
  std::mutex m;
  std::vector<FrameResult> results;
  Pipeline::ResultCallback callback() {
    return [this](FrameResult&& r) {
      std::lock_guard<std::mutex> lock(m);
      results.push_back(std::move(r));
    };
  }
};

std::multiset<int> classes(const FrameResult& r) {
  std::multiset<int> s;
  for (const auto& d : r.detections) s.insert(d.class_id);
  return s;
}

}  // namespace

TEST(Pipeline, SameDetectionsForJpegRgbAndBgrFrames) {
  Collector c;
  const cv::Mat frame = camera_frame();
  {
    Pipeline p(config(), c.callback());
    p.submit(raw_frame(frame, 1, PixelFormat::BGR8));
    p.wait_idle();
    p.submit(raw_frame(frame, 2, PixelFormat::RGB8));
    p.wait_idle();
    p.submit(jpeg_frame(frame, 3));
    p.wait_idle();
    const auto s = p.stats();
    EXPECT_EQ(s.offered, 3u);
    EXPECT_EQ(s.processed, 3u);
    EXPECT_EQ(s.dropped, 0u);
    EXPECT_EQ(s.e2e.count(), 3u);
  }
  ASSERT_EQ(c.results.size(), 3u);
  std::sort(c.results.begin(), c.results.end(), [](auto& a, auto& b) { return a.frame_id < b.frame_id; });
  const auto ref = classes(c.results[0]);
  EXPECT_GE(ref.count(0), 3u);  // persons in the crop of bus.jpg
  EXPECT_EQ(classes(c.results[1]), ref);
  EXPECT_EQ(classes(c.results[2]), ref);  // JPEG re-encoding moves boxes a little, not the classes
  for (std::size_t i = 0; i < c.results[0].detections.size(); ++i) {
    EXPECT_FLOAT_EQ(c.results[1].detections[i].x1, c.results[0].detections[i].x1);  // RGB == BGR exactly
  }
  for (const auto& r : c.results) {
    EXPECT_TRUE(r.error.empty()) << r.error;
    EXPECT_EQ(r.input, (InputSize{480, 640}));
    EXPECT_GT(r.ms.infer, 0);
    EXPECT_GE(r.e2e_ms, r.ms.infer);
  }
}

TEST(Pipeline, LatestWinsCountsEveryReplacedFrame) {
  Collector c;
  const FrameIn f = jpeg_frame(camera_frame(), 0);
  Pipeline p(config(2), c.callback());
  for (std::uint64_t id = 1; id <= 20; ++id) {
    FrameIn copy = f;
    copy.frame_id = id;
    p.submit(std::move(copy));  // far faster than inference: the graph fills, then the slot churns
  }
  p.wait_idle();
  const auto s = p.stats();
  EXPECT_EQ(s.offered, 20u);
  EXPECT_EQ(s.processed + s.errors + s.dropped, s.offered);  // nothing lost from the stats
  EXPECT_EQ(c.results.size(), s.offered);                    // ... nor from the caller: one callback each
  EXPECT_EQ(std::count_if(c.results.begin(), c.results.end(), [](auto& r) { return r.error_cause == "dropped"; }),
            static_cast<long>(s.dropped));
  EXPECT_GE(s.dropped, 15u);
  // The freshest frame always survives.
  EXPECT_TRUE(std::any_of(c.results.begin(), c.results.end(),
                          [](auto& r) { return r.frame_id == 20 && r.error.empty(); }));
}

TEST(Pipeline, BadFramesGetAnErrorAndOthersCarryOn) {
  Collector c;
  const cv::Mat frame = camera_frame();
  Pipeline p(config(), c.callback());
  p.submit({1, 0, PixelFormat::JPEG, 640, 480, "definitely not a jpeg"});
  p.wait_idle();
  p.submit({2, 0, PixelFormat::RGB8, 640, 480, std::string(1000, '\0')});
  p.wait_idle();
  p.submit({3, 0, PixelFormat::BGR8, 0, 0, ""});
  p.wait_idle();
  FrameIn wrong_size = jpeg_frame(frame, 4);
  wrong_size.width = 320;
  p.submit(std::move(wrong_size));
  p.wait_idle();
  p.submit(jpeg_frame(frame, 5));
  p.wait_idle();
  const auto s = p.stats();
  EXPECT_EQ(s.errors, 4u);
  EXPECT_EQ(s.processed, 1u);
  EXPECT_EQ(s.errors_by_cause.at("decode_failed"), 1u);
  EXPECT_EQ(s.errors_by_cause.at("size_mismatch"), 3u);
  ASSERT_EQ(c.results.size(), 5u);
  EXPECT_NE(c.results[1].error.find("1000 bytes"), std::string::npos) << c.results[1].error;
  EXPECT_TRUE(c.results[4].error.empty());
  EXPECT_FALSE(c.results[4].detections.empty());
}

TEST(Pipeline, TwoNetworksRunConcurrently) {
  Collector c;
  PipelineConfig cfg = config();
  cfg.nets = 2;
  cfg.threads_per_net = 1;
  const FrameIn f = jpeg_frame(camera_frame(), 0);
  Pipeline p(cfg, c.callback());
  for (std::uint64_t id = 1; id <= 6; ++id) {
    while (!p.has_capacity()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    FrameIn copy = f;
    copy.frame_id = id;
    p.submit(std::move(copy));
  }
  p.wait_idle();
  EXPECT_EQ(p.stats().processed, 6u);
  EXPECT_EQ(p.stats().dropped, 0u);
  EXPECT_EQ(c.results.size(), 6u);
}

TEST(Pipeline, AThrowingCallbackDoesNotWedgeThePipeline) {
  int calls = 0;
  Pipeline p(config(), [&](FrameResult&&) {
    ++calls;
    throw std::runtime_error("client went away");
  });
  for (std::uint64_t id = 1; id <= 3; ++id) {
    p.submit(jpeg_frame(camera_frame(), id));
    p.wait_idle();  // would hang if the job were not recycled
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(p.stats().processed, 3u);
}

TEST(Pipeline, EchoesFrameIdsAndCaptureTimes) {
  Collector c;
  Pipeline p(config(), c.callback());
  FrameIn f = jpeg_frame(camera_frame(), 77);
  const auto t = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     std::chrono::steady_clock::now().time_since_epoch())
                     .count() -
                 5'000'000;  // 5 ms ago
  f.capture_ns = t;
  p.submit(std::move(f));
  p.wait_idle();
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_EQ(c.results[0].frame_id, 77u);
  EXPECT_EQ(c.results[0].capture_ns, t);
  EXPECT_GE(c.results[0].e2e_ms, 5.0);
}

}  // namespace aitw::pipeline
