#include "aitw/pipeline/pipeline.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <set>

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
  EXPECT_EQ(
      std::count_if(c.results.begin(), c.results.end(), [](auto& r) { return r.error_cause == "dropped"; }),
      static_cast<long>(s.dropped));
  EXPECT_GE(s.dropped, 15u);
  // The freshest frame always survives.
  EXPECT_TRUE(std::any_of(c.results.begin(), c.results.end(),
                          [](auto& r) { return r.frame_id == 20 && r.error.empty(); }));
}

TEST(Pipeline, LatestWinsIsPerTagAndTagsTakeTurns) {
  // Callers sharing a pipeline (the server's sessions, told apart by tag) never drop each other's frames:
  // a newer frame replaces only its own tag's parked one and keeps that tag's turn, and parked tags are
  // admitted in arrival order. When the one job is recycled depends on how fast inference runs against the
  // submit loop (under TSan both crawl), so the outcome is checked against the policy, not one timing: it
  // must be what the policy produces for some moments of recycling.
  Collector c;
  const FrameIn f = jpeg_frame(camera_frame(), 0);
  Pipeline p(config(1), c.callback());
  constexpr std::uint64_t kTags = 6;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> submitted;  // {tag, frame_id}
  for (std::uint64_t round = 0; round < 4; ++round)
    for (std::uint64_t tag = 1; tag <= kTags; ++tag) {
      FrameIn copy = f;
      copy.tag = tag;
      copy.frame_id = round * 100 + tag;
      submitted.emplace_back(tag, copy.frame_id);
      p.submit(std::move(copy));  // far faster than inference: most frames are parked
    }
  p.wait_idle();
  const auto s = p.stats();
  EXPECT_EQ(s.offered, 4 * kTags);
  EXPECT_EQ(s.processed + s.errors + s.dropped, s.offered);
  ASSERT_EQ(c.results.size(), s.offered);
  std::vector<std::uint64_t> processed_order;
  std::set<std::uint64_t> dropped;
  for (const auto& r : c.results) {
    if (r.error_cause == "dropped") {
      EXPECT_LT(r.frame_id, 300u) << "a tag's last frame was dropped";
      dropped.insert(r.frame_id);
    } else {
      EXPECT_TRUE(r.error.empty()) << r.error;
      processed_order.push_back(r.frame_id);
    }
  }
  EXPECT_EQ(s.dropped, dropped.size());
  EXPECT_GE(s.dropped, 12u) << "the loop is far faster than inference: most frames are replaced";

  // The policy, one job: a frame is admitted when the job is free, else parked (replacing its tag's parked
  // frame in place, or queued last); a recycled job takes the oldest-parked tag's frame. Search the moments
  // the job is recycled for one that admits exactly `processed_order` and drops exactly `dropped`.
  struct State {
    std::size_t next = 0, admitted = 0;
    bool busy = false;
    std::deque<std::pair<std::uint64_t, std::uint64_t>> parked;
    std::set<std::uint64_t> dropped;
  };
  std::function<bool(State)> explains = [&](State st) {
    if (st.next == submitted.size() && !st.busy)
      return st.parked.empty() && st.admitted == processed_order.size() && st.dropped == dropped;
    if (st.busy) {  // the running frame finishes now
      State r = st;
      if (r.parked.empty()) {
        r.busy = false;
        if (explains(r)) return true;
      } else if (r.admitted < processed_order.size() &&
                 r.parked.front().second == processed_order[r.admitted]) {
        r.parked.pop_front();
        ++r.admitted;
        if (explains(r)) return true;
      }
    }
    if (st.next == submitted.size()) return false;
    const auto [tag, id] = submitted[st.next++];  // or the next frame is submitted first
    if (!st.busy) {
      if (st.admitted >= processed_order.size() || processed_order[st.admitted] != id) return false;
      ++st.admitted;
      st.busy = true;
      return explains(std::move(st));
    }
    const auto same =
        std::find_if(st.parked.begin(), st.parked.end(), [&](auto& q) { return q.first == tag; });
    if (same != st.parked.end()) {
      st.dropped.insert(same->second);
      same->second = id;
    } else {
      st.parked.emplace_back(tag, id);
    }
    return explains(std::move(st));
  };
  EXPECT_TRUE(explains(State{})) << "admitted " << ::testing::PrintToString(processed_order) << ", dropped "
                                 << ::testing::PrintToString(dropped);
  // (With the job busy through the whole loop, the common case, the only order it explains is tag 1's first
  // frame, then each tag's freshest frame in the order the tags parked: {1, 302, 303, 304, 305, 306, 301}.)
}

TEST(Pipeline, CancelWithdrawsATagsWaitingFrameOnly) {
  Collector c;
  const FrameIn f = jpeg_frame(camera_frame(), 0);
  Pipeline p(config(1), c.callback());
  for (std::uint64_t tag = 1; tag <= 3; ++tag) {
    FrameIn copy = f;
    copy.tag = tag;
    copy.frame_id = tag;
    p.submit(std::move(copy));  // 1 goes in, 2 and 3 wait for their turn
  }
  p.cancel(2);
  p.cancel(1);  // inside already: finishes as usual
  p.cancel(7);  // nothing of it here
  p.wait_idle();
  const auto s = p.stats();
  EXPECT_EQ(s.offered, 3u);
  EXPECT_EQ(s.processed, 2u);
  EXPECT_EQ(s.dropped, 1u);
  ASSERT_EQ(c.results.size(), 3u);
  for (const auto& r : c.results) {
    EXPECT_EQ(r.error_cause, r.frame_id == 2 ? "cancelled" : "") << r.frame_id;
  }
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
  ASSERT_EQ(c.results.size(), 6u);
  // Concurrent, not one after the other: some two forwards overlap in time. With one network at a time the
  // intervals would be disjoint however fast or slow the machine is.
  int overlaps = 0;
  for (const auto& a : c.results) {
    ASSERT_LT(a.infer_start_ns, a.infer_end_ns);
    for (const auto& b : c.results)
      if (a.frame_id < b.frame_id && a.infer_start_ns < b.infer_end_ns && b.infer_start_ns < a.infer_end_ns)
        ++overlaps;
  }
  EXPECT_GE(overlaps, 1);
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

// Found by fuzz_jpeg: bytes starting with FF D8 but not OpenCV's JPEG signature (FF D8 FF) went to
// cv::imdecode's other decoders, and GDCM's DICOM reader asserts (aborting the worker) on "DICM" at
// offset 128. A "JPEG" frame must now be a JPEG.
TEST(DecodeFrame, NonJpegBytesNeverReachOtherDecoders) {
  std::string dicom(132 + 64, '\0');
  dicom[0] = '\xFF';
  dicom[1] = '\xD8';
  dicom[2] = 'C';
  dicom.replace(128, 4, "DICM");
  for (std::size_t i = 132; i < dicom.size(); ++i) dicom[i] = static_cast<char>(i * 37);
  std::string png = "\x89PNG\r\n\x1a\n" + std::string(64, '\0');
  for (const auto& bytes : {dicom, png}) {
    cv::Mat scratch;
    kernel::ImageView view;
    const auto err = decode_frame({1, 0, PixelFormat::JPEG, 0, 0, bytes}, scratch, view);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->cause, "decode_failed");
  }
}

// A few bytes declaring 65535x65535 are refused from the header, before OpenCV allocates anything.
TEST(DecodeFrame, JpegSizeIsCheckedFromTheHeaderFirst) {
  std::vector<std::uint8_t> buf;
  cv::imencode(".jpg", cv::Mat(24, 32, CV_8UC3, cv::Scalar(10, 200, 30)), buf);
  std::string jpg(buf.begin(), buf.end());
  ASSERT_EQ(jpeg_dimensions(jpg), (std::pair<int, int>{32, 24}));
  const auto sof = jpg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  std::string huge = jpg;
  huge.replace(sof + 5, 4, "\xFF\xFF\xFF\xFF");  // height, width = 65535
  cv::Mat scratch;
  kernel::ImageView view;
  auto err = decode_frame({1, 0, PixelFormat::JPEG, 0, 0, huge}, scratch, view);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->cause, "too_large");
  EXPECT_NE(err->message.find("65535x65535"), std::string::npos) << err->message;
  EXPECT_TRUE(scratch.empty());
  err = decode_frame({1, 0, PixelFormat::JPEG, 640, 480, jpg}, scratch, view);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->cause, "size_mismatch");
  EXPECT_EQ(err->message, "JPEG frame is 32x24, declared 640x480");
  EXPECT_TRUE(scratch.empty());  // refused before decoding
  EXPECT_FALSE(decode_frame({1, 0, PixelFormat::JPEG, 32, 24, jpg}, scratch, view));
  EXPECT_EQ(view.width, 32);
  EXPECT_EQ(view.height, 24);
  // A lower limit (the fuzz targets use one) applies the same way.
  err = decode_frame({1, 0, PixelFormat::JPEG, 0, 0, jpg}, scratch, view, 32 * 24 - 1);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->cause, "too_large");
}

TEST(DecodeFrame, RawFramesMustHoldExactlyTheirPixels) {
  cv::Mat scratch;
  kernel::ImageView view;
  const std::string px(8 * 6 * 3, '\x7F');
  EXPECT_FALSE(decode_frame({1, 0, PixelFormat::RGB8, 8, 6, px}, scratch, view));
  EXPECT_EQ(view.order, kernel::PixelOrder::RGB);
  EXPECT_EQ(view.row_stride, 24);
  const std::pair<int, int> wrong[] = {{8, 5}, {0, 6}, {-8, -6}, {8, 0}};
  for (const auto& [w, h] : wrong) {
    const auto err = decode_frame({1, 0, PixelFormat::BGR8, w, h, px}, scratch, view);
    ASSERT_TRUE(err) << w << "x" << h;
    EXPECT_EQ(err->cause, "size_mismatch");
  }
}

}  // namespace aitw::pipeline
