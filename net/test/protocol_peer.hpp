#pragma once
// Test helpers for the worker protocol: a blocking raw peer over loopback, and the messages the tests send
// (a 640x480 JPEG crop of bus.jpg with at least three persons in it).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <asio.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <string>

#include "aitw.pb.h"
#include "aitw/net/framing.hpp"

namespace aitw::net::testing {

using asio::ip::tcp;

inline const std::string kShared = AITW_SHARED_DIR;
inline const std::string kYolo11 = kShared + "/models/yolo11n.onnx";
inline const std::string kYolov8 = kShared + "/models/yolov8n.onnx";

inline std::string camera_jpeg() {
  static const std::string bytes = [] {
    cv::Mat bus = cv::imread(kShared + "/datasets/images/bus.jpg"), f;
    cv::resize(bus(cv::Rect(0, 200, 810, 608)), f, cv::Size(640, 480), 0, 0, cv::INTER_AREA);
    std::vector<std::uint8_t> buf;
    cv::imencode(".jpg", f, buf);
    return std::string(buf.begin(), buf.end());
  }();
  return bytes;
}

inline v1::Envelope init_msg(const std::string& model = kYolo11) {
  v1::Envelope e;
  auto* i = e.mutable_init();
  i->set_model(model);
  i->set_width(640);
  i->set_height(480);
  i->set_format(v1::JPEG);
  i->set_client_id("test");
  return e;
}

inline v1::Envelope frame_msg(std::uint64_t id, std::string pixels = camera_jpeg()) {
  v1::Envelope e;
  auto* f = e.mutable_frame();
  f->set_frame_id(id);
  f->set_ts_mono_ns(1000 + static_cast<std::int64_t>(id));
  f->set_width(640);
  f->set_height(480);
  f->set_format(v1::JPEG);
  f->set_pixels(std::move(pixels));
  return e;
}

// A blocking protocol peer with a receive timeout.
struct Peer {
  asio::io_context io;
  tcp::socket s{io};
  // `receive_buffer` > 0: SO_RCVBUF, set before connecting (shrinking it on an open connection, below the
  // window already advertised, makes the kernel drop segments and back off for minutes). Even set before, a
  // buffer far below loopback's 64 KB segments drops them when it fills, and the ACKs they carry: a peer that
  // also writes then stalls on retransmission backoff (drain_test.cpp's non-reading peers keep the default).
  explicit Peer(std::uint16_t port, int timeout_s = 5, int receive_buffer = 0) : timeout_s_(timeout_s) {
    if (receive_buffer > 0) {
      s.open(tcp::v4());
      setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    set_timeout(timeout_s);
  }
  void set_timeout(int seconds) {
    timeval tv{seconds, 0};
    setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  int timeout_s_;
  void send(const v1::Envelope& e) { send_bytes(encode(e)); }
  void send_bytes(const std::string& b) { asio::write(s, asio::buffer(b)); }
  // The next message that is not a heartbeat; nullopt on timeout or close.
  std::optional<v1::Envelope> recv() {
    for (;;) {
      unsigned char p[4];
      asio::error_code ec;
      asio::read(s, asio::buffer(p), ec);
      if (ec) return std::nullopt;
      const std::uint32_t n = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
      std::string body(n, '\0');
      asio::read(s, asio::buffer(body), ec);
      if (ec) return std::nullopt;
      v1::Envelope e;
      if (!e.ParseFromString(body)) return std::nullopt;
      if (e.msg_case() != v1::Envelope::kHeartbeat) return e;
    }
  }
  bool closed_by_server() {
    for (;;) {
      auto e = recv();
      if (!e) return true;
    }
  }
  // Init -> InitOk -> Ready.
  v1::InitOk handshake(const std::string& model = kYolo11) {
    send(init_msg(model));
    // InitOk follows a model load: under a sanitizer on a busy machine that takes far longer than a reply.
    set_timeout(120);
    auto ok = recv();
    set_timeout(timeout_s_);
    EXPECT_TRUE(ok && ok->has_init_ok()) << (ok ? message_name(*ok) : "nothing");
    auto ready = recv();
    EXPECT_TRUE(ready && ready->has_ready());
    return ok ? ok->init_ok() : v1::InitOk();
  }
};

}  // namespace aitw::net::testing
