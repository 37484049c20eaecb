#pragma once
// The worker's ServerStats: written on the io thread (by the server and its model host), read from any
// thread (Server::stats(), the metrics endpoint) and waited on by Server::stop().
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "aitw/net/server.hpp"

namespace aitw::net {

class StatsBoard {
 public:
  // Applies `f` to the stats under the lock, then wakes wait_for().
  template <class F>
  void update(F&& f) {
    {
      std::lock_guard<std::mutex> lock(m_);
      f(stats_);
    }
    changed_.notify_all();
  }

  ServerStats snapshot() const {
    std::lock_guard<std::mutex> lock(m_);
    return stats_;
  }

  // Blocks until `pred(stats)` holds or `timeout` passed.
  template <class P>
  void wait_for(std::chrono::milliseconds timeout, P&& pred) {
    std::unique_lock<std::mutex> lock(m_);
    changed_.wait_for(lock, timeout, [&] { return pred(stats_); });
  }

 private:
  mutable std::mutex m_;
  std::condition_variable changed_;
  ServerStats stats_;
};

}  // namespace aitw::net
