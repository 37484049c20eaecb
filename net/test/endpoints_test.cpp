// The client over several workers: endpoint lists (a refusing one, one stopped mid-run), the graceful leaves
// (max_session_age, a draining worker's Error on Init) that move on at once. No clock is asserted: where
// "at once" matters, the backoff is an hour, so a client that waited for it would never get there.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <asio.hpp>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "aitw/net/client.hpp"
#include "aitw/net/server.hpp"
#include "protocol.hpp"
#include "protocol_peer.hpp"
#include "test_server.hpp"

namespace aitw::net {
namespace {

using namespace testing;  // protocol_peer.hpp, test_server.hpp
using namespace std::chrono_literals;

// A loopback port nobody listens on: bound, then closed.
std::uint16_t refusing_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = a.local_endpoint().port();
  a.close();
  return port;
}

HostPort loopback(std::uint16_t port) {
  return {"127.0.0.1", port};
}

// Offers frames (one per Ready at most: submit() keeps the newest) until `done`, `limit` frames, or a
// safety net far above any sanitizer-slow run (a client stuck in an hour of backoff ends there, failing).
template <typename Done>
void offer_until(Client& client, Done done, std::uint64_t& next_id, int limit = 2000) {
  const auto give_up = std::chrono::steady_clock::now() + 120s;
  for (int i = 0; i < limit && !done() && std::chrono::steady_clock::now() < give_up; ++i) {
    client.submit(frame_msg(next_id++).frame());
    client.wait_idle(10s);
  }
}

}  // namespace

// Three endpoints: one refuses connections, two serve. The client gets past the refusing one (whichever it
// starts on), and when the worker it is on stops mid-run it carries on on the other; results are counted
// per endpoint, and a frame id is never answered twice.
TEST(ClientEndpoints, MovesPastARefusingEndpointAndOneStoppedMidRun) {
  auto a = start_server(), b = start_server();
  const std::uint16_t dead = refusing_port();
  ClientConfig cc;
  cc.endpoints = {loopback(dead), loopback(a->port()), loopback(b->port())};
  cc.init = init_msg().init();
  cc.backoff_initial = 50ms;
  std::mutex m;
  std::set<std::uint64_t> ids;
  int duplicates = 0;
  Client client(cc, [&](const v1::Result& r, double) {
    std::lock_guard<std::mutex> lock(m);
    duplicates += !ids.insert(r.frame_id()).second;
  });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  std::uint64_t id = 1;
  offer_until(
      client, [&] { return client.stats().results_total >= 3; }, id);
  const std::string first = client.endpoint();
  ASSERT_NE(first, loopback(dead).str());
  const bool on_a = first == loopback(a->port()).str();
  const std::string other = loopback((on_a ? b : a)->port()).str();
  (on_a ? a : b)->stop();
  offer_until(
      client, [&] { return client.stats().results_by_endpoint[other] >= 3; }, id);
  const auto s = client.stats();
  EXPECT_GE(s.results_by_endpoint.at(first), 3u);
  EXPECT_GE(s.results_by_endpoint.at(other), 3u);
  EXPECT_EQ(s.results_by_endpoint.count(loopback(dead).str()), 0u);
  EXPECT_GE(s.ai_reconnects_total, 1u);
  EXPECT_LE(s.frames_lost_on_disconnect, 1u);  // at most the frame in flight at the stop
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(s.results_total, ids.size());
  client.stop();
}

// The worker side of max_session_age, on the wire: every frame sent gets its Result before End
// "max_session_age", the one answering a Ready outstanding when the age ran out too (it would otherwise cross
// End on the wire: the failure this test once had).
TEST(MaxSessionAge, EndsTheSessionAfterTheResultOfTheFrameInFlight) {
  ServerConfig cfg;
  cfg.max_session_age = 300ms;
  auto server = start_server(cfg);
  Peer p(server->port(), 120);
  p.handshake();
  std::uint64_t sent = 0, results = 0;
  std::optional<v1::Envelope> e;
  p.send(frame_msg(++sent));
  for (;;) {
    e = p.recv();
    ASSERT_TRUE(e) << "the connection closed without End";
    if (e->has_end()) break;
    if (e->has_result()) ++results;
    if (e->has_ready()) p.send(frame_msg(++sent));  // never crosses End: the worker waits for it
  }
  EXPECT_EQ(e->end().reason(), "max_session_age");
  EXPECT_EQ(results, sent);
  EXPECT_TRUE(p.closed_by_server());
  const auto st = server->stats();
  EXPECT_EQ(st.frames_processed_total, st.frames_received_total);
}

// The client side: End "max_session_age" is a graceful leave, so the client reconnects and re-Inits at once
// (its backoff is an hour: waiting for it would never finish) and loses no frame.
TEST(MaxSessionAge, ClientReconnectsAtOnceAndLosesNoFrame) {
  ServerConfig cfg;
  cfg.max_session_age = 300ms;
  auto server = start_server(cfg);
  ClientConfig cc;
  cc.port = server->port();
  cc.init = init_msg().init();
  cc.backoff_initial = 1h;
  cc.backoff_max = 2h;
  std::atomic<int> results{0};
  Client client(cc, [&](const v1::Result&, double) { ++results; });
  client.start();
  ASSERT_TRUE(client.wait_initialized(60s));
  std::uint64_t id = 1;
  offer_until(
      client, [&] { return client.stats().ai_init_ok_total >= 3; }, id);
  const auto s = client.stats();
  EXPECT_GE(s.ai_init_ok_total, 3u);
  EXPECT_GE(s.graceful_moves_total, 2u);
  EXPECT_EQ(s.frames_lost_on_disconnect, 0u);
  EXPECT_EQ(s.errors_total, 0u);
  client.stop();
}

// A draining worker answers Init with kErrDraining (non-fatal): the client leaves it at once for the next
// endpoint. The draining worker here is a stand-in that answers every Init so and keeps the connection open.
TEST(ClientEndpoints, DrainingRefusalMovesToTheNextEndpointAtOnce) {
  asio::io_context io;
  asio::ip::tcp::acceptor draining(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::uint16_t drain_port = draining.local_endpoint().port();  // before its thread uses it
  std::atomic<int> refused{0};
  std::thread stand_in([&] {
    std::vector<asio::ip::tcp::socket> open;  // kept open: only the client may end it
    for (;;) {
      asio::error_code ec;
      asio::ip::tcp::socket s(io);
      draining.accept(s, ec);
      if (ec) return;
      unsigned char len[4];
      asio::read(s, asio::buffer(len), ec);
      std::string body(len[0] | len[1] << 8 | len[2] << 16 | static_cast<std::uint32_t>(len[3]) << 24, '\0');
      asio::read(s, asio::buffer(body), ec);
      v1::Envelope e;
      if (ec || !e.ParseFromString(body) || !e.has_init()) continue;
      asio::write(
          s, asio::buffer(encode(error_msg(kErrDraining, "draining: worker is shutting down", false))), ec);
      ++refused;
      open.push_back(std::move(s));
    }
  });
  auto server = start_server();
  ClientConfig cc;
  cc.endpoints = {loopback(drain_port), loopback(server->port())};
  cc.random_start = false;  // the draining one first
  cc.init = init_msg().init();
  cc.backoff_initial = 1h;
  cc.backoff_max = 2h;
  // The real worker loads the model on this Init: under TSan that took 6.6 s on a busy host, and the default
  // 10 s heartbeat timeout then dropped it, sending the client back to the draining one for good (1 h).
  cc.heartbeat_timeout = 120s;
  Client client(cc, [](const v1::Result&, double) {});
  client.start();
  EXPECT_TRUE(client.wait_initialized(120s));
  std::uint64_t id = 1;
  offer_until(
      client, [&] { return client.stats().results_total >= 1; }, id, 1);
  const auto s = client.stats();
  EXPECT_EQ(refused.load(), 1);
  EXPECT_EQ(s.graceful_moves_total, 1u);
  EXPECT_EQ(s.results_by_endpoint.at(loopback(server->port()).str()), 1u);
  client.stop();
  ::shutdown(draining.native_handle(), SHUT_RDWR);  // wakes the blocking accept
  stand_in.join();
}

}  // namespace aitw::net
