// The kernels' parallel loops (src/parallel.hpp): aitw's loop pool by default, OpenCV's TBB backend with
// AITW_PARALLEL=opencv (kernel/CMakeLists.txt runs this suite both ways).
#include <gtest/gtest.h>
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../src/parallel.hpp"

namespace {

using aitw::kernel::parallel_for;
using namespace std::chrono_literals;

// cv::setNumThreads for one test, restored after.
struct Threads {
  explicit Threads(int n) : old(cv::getNumThreads()) { cv::setNumThreads(n); }
  ~Threads() { cv::setNumThreads(old); }
  int old;
};

// The backend this process runs: AITW_PARALLEL unset or "aitw" -> aitw's pool, "opencv" -> OpenCV's.
std::string backend() {
  const char* v = std::getenv("AITW_PARALLEL");
  return v && *v ? v : "aitw";
}

bool backend_is_valid() {
  return backend() == "aitw" || backend() == "opencv";
}

std::string thread_name() {
  char name[32] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

TEST(ParallelFor, EveryIndexRunsOnceForAnyThreadsAndStripes) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  for (const int threads : {1, 2, 3, 4})
    for (const int n : {0, 1, 2, 3, 7, 64, 1000})
      for (const double stripes : {-1.0, 1.0, 3.0, 1000.0}) {
        Threads t(threads);
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        std::atomic<int> bad{0};
        parallel_for(
            cv::Range(5, 5 + n),
            [&](const cv::Range& r) {
              if (r.start < 5 || r.end > 5 + n || r.start >= r.end) ++bad;
              for (int i = std::max(r.start, 5); i < std::min(r.end, 5 + n); ++i) ++hits[i - 5];
            },
            stripes);
        EXPECT_EQ(bad.load(), 0) << threads << " threads, n " << n << ", stripes " << stripes;
        for (int i = 0; i < n; ++i)
          ASSERT_EQ(hits[i].load(), 1)
              << "index " << i << ", " << threads << " threads, n " << n << ", stripes " << stripes;
      }
}

// Each stripe waits (up to 10 s) until as many stripes run at once as OpenCV is given threads, then holds a
// little longer: the loop takes all of them side by side, and never more (a worker left over from a larger
// count sits out, and takes part again when the count grows back). OpenCV's TBB backend gives a loop no more
// threads than the machine has cores: 2 there.
TEST(ParallelFor, StripesRunSideBySideOnAsManyThreadsAsOpenCvIsGiven) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  if (backend() == "opencv" && std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "one core";
  for (const int threads : backend() == "aitw" ? std::vector<int>{3, 2, 3} : std::vector<int>{2}) {
    Threads t(threads);
    std::atomic<int> running{0}, peak{0};
    std::mutex m;
    std::set<std::thread::id> ids;
    std::set<std::string> names;
    parallel_for(cv::Range(0, 4 * threads), [&](const cv::Range& r) {
      {
        std::lock_guard<std::mutex> lock(m);
        ids.insert(std::this_thread::get_id());
        names.insert(thread_name());
      }
      const int now = ++running;
      for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
      }
      const auto until = std::chrono::steady_clock::now() + 10s;
      while (peak.load() < threads && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * (r.end - r.start)));
      --running;
    });
    EXPECT_EQ(peak.load(), threads) << "stripes at once";
    EXPECT_EQ(static_cast<int>(ids.size()), threads) << "threads that ran stripes";
    // aitw's pool: the caller and its workers, named aitw-loop; OpenCV's: none of those.
    EXPECT_EQ(names.count("aitw-loop") == 1, backend() == "aitw") << ::testing::PrintToString(names);
  }
}

TEST(ParallelFor, AnExceptionReachesTheCallerAndTheLoopsAfterItRun) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  Threads t(2);
  for (int round = 0; round < 3; ++round) {
    try {
      parallel_for(cv::Range(0, 64), [&](const cv::Range& r) {
        for (int i = r.start; i < r.end; ++i)
          if (i == 17) throw std::runtime_error("index 17");
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "index 17");
    }
    std::vector<std::atomic<int>> hits(100);
    parallel_for(cv::Range(0, 100), [&](const cv::Range& r) {
      for (int i = r.start; i < r.end; ++i) ++hits[i];
    });
    for (int i = 0; i < 100; ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  }
}

TEST(ParallelFor, ALoopInsideAStripeRunsEveryIndex) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  Threads t(2);
  std::vector<std::atomic<int>> hits(32 * 16);
  std::atomic<int> elsewhere{0};
  parallel_for(cv::Range(0, 32), [&](const cv::Range& r) {
    const auto outer = std::this_thread::get_id();
    for (int i = r.start; i < r.end; ++i)
      parallel_for(cv::Range(0, 16), [&](const cv::Range& q) {
        if (std::this_thread::get_id() != outer) ++elsewhere;
        for (int j = q.start; j < q.end; ++j) ++hits[i * 16 + j];
      });
  });
  for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
  // aitw's pool runs them where they are; OpenCV's backend may hand them to its other thread.
  if (backend() == "aitw") {
    EXPECT_EQ(elsewhere.load(), 0);
  }
}

// Several networks' forwards at once (the pipeline's --nets, serve's models): each calling thread's loops.
TEST(ParallelFor, LoopsOfSeveralThreadsAtOnceEachRunEveryIndex) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  Threads t(2);
  std::atomic<int> wrong{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&, c] {
      for (int loop = 0; loop < 300; ++loop) {
        const int n = 1 + (loop * 7 + c) % 97;
        std::vector<int> hits(static_cast<std::size_t>(n));  // each index written by one stripe only
        parallel_for(cv::Range(0, n), [&](const cv::Range& r) {
          for (int i = r.start; i < r.end; ++i) ++hits[i];
        });
        for (int h : hits)
          if (h != 1) ++wrong;
      }
    });
  for (auto& c : callers) c.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Many short loops back to back while the thread count changes under them (workers left over from a
// larger count sit out, and come back when it grows): every index once, and no stripe still running when
// the loop returns.
TEST(ParallelFor, BackToBackLoopsWhileTheThreadCountChanges) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  Threads restore(2);
  const int counts[] = {4, 2, 3, 1};
  std::atomic<int> in_flight{0}, late{0}, wrong{0};
  std::vector<std::atomic<int>> hits(64);
  for (int loop = 0; loop < 20000; ++loop) {
    if (loop % 500 == 0) cv::setNumThreads(counts[loop / 500 % 4]);
    const int n = 2 + loop * 13 % 63;
    for (int i = 0; i < n; ++i) hits[i] = 0;
    parallel_for(cv::Range(0, n), [&](const cv::Range& r) {
      ++in_flight;
      for (int i = r.start; i < r.end; ++i) ++hits[i];
      --in_flight;
    });
    if (in_flight.load() != 0) ++late;
    for (int i = 0; i < n; ++i)
      if (hits[i].load() != 1) ++wrong;
  }
  EXPECT_EQ(late.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

// Between loops the workers spin for at most a few hundred microseconds, then sleep: 200 ms of an idle
// pool cost far less than 200 ms of CPU.
TEST(ParallelFor, AnIdlePoolSleeps) {
  if (!backend_is_valid())
    GTEST_SKIP() << "ParallelFor.ABadBackendIsRefused covers AITW_PARALLEL=" << backend();
  Threads t(2);
  std::atomic<int> sum{0};
  parallel_for(cv::Range(0, 64), [&](const cv::Range& r) { sum += r.end - r.start; });
  ASSERT_EQ(sum.load(), 64);
  std::this_thread::sleep_for(20ms);
  const double cpu0 = process_cpu_seconds();
  std::this_thread::sleep_for(200ms);
  EXPECT_LT(process_cpu_seconds() - cpu0, 0.05);
}

TEST(ParallelFor, ABadBackendIsRefused) {
  Threads t(2);
  std::atomic<int> sum{0};
  const auto loop = [&] {
    parallel_for(cv::Range(0, 8), [&](const cv::Range& r) { sum += r.end - r.start; });
  };
  if (backend_is_valid()) {
    loop();
    EXPECT_EQ(sum.load(), 8);
    return;
  }
  try {
    loop();
    ADD_FAILURE() << "AITW_PARALLEL=" << backend() << " was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::strstr(e.what(), "AITW_PARALLEL"), nullptr) << e.what();
    EXPECT_NE(std::strstr(e.what(), backend().c_str()), nullptr) << e.what();
  }
  EXPECT_EQ(sum.load(), 0);
}

}  // namespace
