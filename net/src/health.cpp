#include "aitw/net/health.hpp"

#include <asio.hpp>

#include <array>

#include "aitw/base/clock.hpp"
#include "aitw/net/framing.hpp"

namespace aitw::net {

namespace {

using asio::ip::tcp;

struct Probe {
  asio::io_context io;
  tcp::socket sock{io};
  std::string stage = "resolving";
  bool done = false;
  HealthResult result;

  void fail(std::string reason) {
    result.ok = false;
    result.reason = std::move(reason);
    done = true;
  }

  asio::awaitable<void> run(std::string host, std::uint16_t port) {
    try {
      tcp::resolver resolver(io);
      const auto endpoints = co_await resolver.async_resolve(host, std::to_string(port), asio::use_awaitable);
      stage = "connecting";
      co_await asio::async_connect(sock, endpoints, asio::use_awaitable);
      stage = "waiting for the Heartbeat echo";
      // The worker's own heartbeats carry its clock: ours is told apart by its value.
      const std::int64_t ts = now_ns();
      v1::Envelope beat;
      beat.mutable_heartbeat()->set_ts_mono_ns(ts);
      const auto t0 = std::chrono::steady_clock::now();
      co_await asio::async_write(sock, asio::buffer(encode(beat)), asio::use_awaitable);
      FrameDecoder decoder;
      std::array<char, 4096> buf;
      for (;;) {
        const auto n = co_await sock.async_read_some(asio::buffer(buf), asio::use_awaitable);
        decoder.feed(buf.data(), n);
        v1::Envelope e;
        for (auto st = decoder.next(e); st != FrameDecoder::Status::NeedMore; st = decoder.next(e)) {
          if (st != FrameDecoder::Status::Message) {
            fail("bad reply: not a worker protocol message (is this the worker's port?)");
            co_return;
          }
          if (e.has_error()) {
            fail("the worker answered Error " + std::to_string(e.error().code()) + ": " +
                 e.error().message());
            co_return;
          }
          if (e.has_end()) {
            fail("the worker ended the session: " + e.end().reason());
            co_return;
          }
          if (e.has_heartbeat() && e.heartbeat().ts_mono_ns() == ts) {
            result.ok = true;
            result.round_trip_ms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            done = true;
            co_return;
          }
        }
      }
    } catch (const asio::system_error& e) {
      if (e.code() == asio::error::connection_refused)
        fail("connection refused");
      else if (e.code() == asio::error::eof || e.code() == asio::error::connection_reset)
        fail("the worker closed the connection while " + stage);
      else
        fail(stage + ": " + e.code().message());
    }
  }
};

}  // namespace

HealthResult probe_health(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  Probe p;
  asio::co_spawn(p.io, p.run(host, port), asio::detached);
  p.io.run_for(timeout);
  if (!p.done) p.fail("timeout after " + std::to_string(timeout.count()) + " ms " + p.stage);
  return p.result;
}

}  // namespace aitw::net
