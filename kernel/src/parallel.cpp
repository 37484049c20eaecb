#include "parallel.hpp"

#include "aitw/kernel/conv.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifdef __linux__
#include <pthread.h>
#endif

namespace aitw::kernel::detail {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// AITW_PARALLEL: aitw (default) or opencv; anything else is refused, naming the variable.
bool pool_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("AITW_PARALLEL");
    if (!v || !*v || std::strcmp(v, "aitw") == 0) return true;
    if (std::strcmp(v, "opencv") == 0) return false;
    throw std::invalid_argument(std::string("AITW_PARALLEL='") + v + "': expected aitw or opencv");
  }();
  return on;
}

// After a loop a worker waits for the next one spinning (pause instructions) for kPause, then yielding its
// core to any other thread that wants it until kSpin, then asleep: longer than the gaps between one
// forward's loops (a layer's own single-threaded work, OpenCV's layers between aitw's), far shorter than the
// gap between two frames, so an idle worker leaves its core after at most kSpin.
// Under ThreadSanitizer each atomic load of the spin costs ~100x more and only takes the cores the other
// suites run on: the workers sleep almost at once there.
#if defined(__SANITIZE_THREAD__)
constexpr std::chrono::microseconds kPause{0}, kSpin{20};
#else
constexpr std::chrono::microseconds kPause{50}, kSpin{300};
#endif

thread_local bool t_in_loop = false;  // this thread runs a stripe of the pool's loop (or is its caller)
std::mutex pool_mutex;                // the caller of the pool's loop holds it

// The whole range on this thread, its loops inside too (t_in_loop, restored also when fn throws).
bool run_here(void (*fn)(void*, const cv::Range&), void* ctx, const cv::Range& range) {
  struct Restore {
    bool was = t_in_loop;
    ~Restore() { t_in_loop = was; }
  } restore;
  t_in_loop = true;
  fn(ctx, range);
  return true;
}

class LoopPool {
 public:
  bool run(const cv::Range& range, double stripes, void (*fn)(void*, const cv::Range&), void* ctx) {
    const int n = range.end - range.start;
    const int threads = std::min(cv::getNumThreads(), kMaxThreads);
    if (threads <= 1) return false;
    // Chunks: the stripes asked for (one per index by default, cv::parallel_for_'s rule), at most 16 per
    // thread: each costs an atomic claim. One chunk runs where it is, as OpenCV runs one stripe.
    int chunks = stripes > 0 ? static_cast<int>(std::min<double>(n, std::max(1., stripes + 0.5))) : n;
    chunks = std::min(chunks, 16 * threads);
    if (chunks <= 1) return run_here(fn, ctx, range);
    try {
      grow(threads - 1);
    } catch (...) {  // no thread could be started: OpenCV's backend takes the loop
      return false;
    }
    fn_ = fn;
    ctx_ = ctx;
    begin_ = range.start;
    n_ = n;
    chunks_ = chunks;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    const bool more_threads = threads > last_parts_;  // workers that sat the last loops out may be wanted
    last_parts_ = threads;
    parts_.store(threads, std::memory_order_relaxed);
    const std::uint64_t e = epoch_.load(std::memory_order_relaxed) + 1;
    // Each thread's share of the chunks, contiguous (neighbouring bands stay on one core), the caller's
    // rounded up (it is awake); a thread that is done takes the next unclaimed chunk of the others' shares.
    for (int p = 0; p < threads; ++p) {
      // (next_ first: a claimant of the loop before that reads the new end must fail its claim.)
      next_[p].v.store(claim_word(e, share_start(p, chunks, threads)), std::memory_order_release);
      ends_[p].v.store(static_cast<std::uint32_t>(share_start(p + 1, chunks, threads)),
                       std::memory_order_release);
    }
    epoch_.store(e, std::memory_order_seq_cst);
    if (more_threads || sleepers_.load(std::memory_order_seq_cst) > 0) wake();
    t_in_loop = true;
    work(e, 0, threads);
    t_in_loop = false;
    for (int spins = 0; done_.load(std::memory_order_acquire) < chunks;)
      if (++spins < 4096)
        cpu_relax();
      else
        std::this_thread::yield();  // a worker was preempted inside its chunk
    const std::exception_ptr error = error_;
    error_ = nullptr;
    if (error) std::rethrow_exception(error);
    return true;
  }

 private:
  static constexpr int kMaxThreads = 64;  // chunks <= 16 * 64: 16 bits of the claim word
  static constexpr std::uint64_t kEpochBits = 48;
  struct alignas(64) Next {
    std::atomic<std::uint64_t> v{0};  // claim_word(epoch, next chunk of this share)
  };
  struct alignas(64) End {
    std::atomic<std::uint32_t> v{0};  // one past this share's last chunk
  };

  static std::uint64_t claim_word(std::uint64_t epoch, int chunk) {
    return (epoch << (64 - kEpochBits)) | static_cast<std::uint64_t>(chunk);
  }
  static std::uint64_t claim_epoch(std::uint64_t word) { return word >> (64 - kEpochBits); }
  static int share_start(int p, int chunks, int threads) { return (p * chunks + threads - 1) / threads; }

  // Participant `self` of loop e claims the chunks of its own share, then of the others'. A worker that wakes
  // after loop e has ended (or while a later one runs) claims nothing: a claim is a compare-and-swap on
  // (epoch, next chunk), the epoch's low 48 bits (a worker would have to stall through 2^48 loops).
  void work(std::uint64_t e, int self, int parts) {
    const std::uint64_t tag = claim_epoch(claim_word(e, 0));
    for (int k = 0; k < parts; ++k) {
      const int p = (self + k) % parts;
      std::uint64_t w = next_[p].v.load(std::memory_order_acquire);
      for (;;) {
        if (claim_epoch(w) != tag) return;  // loop e is over
        const auto c = static_cast<std::uint32_t>(w & 0xffff);
        if (c >= ends_[p].v.load(std::memory_order_acquire)) break;
        if (!next_[p].v.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire))
          continue;
        // Loop e cannot end before this chunk is done: its fields stay as they are until then.
        const cv::Range r(begin_ + static_cast<int>(static_cast<std::int64_t>(c) * n_ / chunks_),
                          begin_ + static_cast<int>(static_cast<std::int64_t>(c + 1) * n_ / chunks_));
        try {
          fn_(ctx_, r);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex_);
          if (!error_) error_ = std::current_exception();
        }
        done_.fetch_add(1, std::memory_order_release);
        w = next_[p].v.load(std::memory_order_acquire);
      }
    }
  }

  void wake() {
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    sleep_.notify_all();
  }

  void grow(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      // The epoch before the next loop's: a worker that starts after that loop is published still takes it.
      // The threads are never joined: the pool lives as long as the process (loop_pool_run).
      const int id = static_cast<int>(threads_.size());
      const std::uint64_t seen = epoch_.load(std::memory_order_relaxed);
      threads_.emplace_back([this, id, seen] { worker(id, seen); });
      threads_.back().detach();
    }
  }

  // Until a loop later than `seen`: spinning, then yielding, then asleep.
  std::uint64_t wait_for_loop(std::uint64_t seen) {
    std::uint64_t e;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; (e = epoch_.load(std::memory_order_acquire)) == seen; ++i) {
      if (i % 64) {
        cpu_relax();
        continue;
      }
      const auto idle = std::chrono::steady_clock::now() - t0;
      if (idle > kPause) std::this_thread::yield();  // another thread may want this core meanwhile
      if (idle > kSpin) {
        // Asleep: a caller that stores the next epoch and then sees no sleeper is seen here (both
        // sequentially consistent), and one that sees a sleeper notifies under the lock.
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        sleep_.wait(lock, [&] { return epoch_.load(std::memory_order_seq_cst) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        t0 = std::chrono::steady_clock::now();
      }
    }
    return e;
  }

  [[noreturn]] void worker(int id, std::uint64_t seen) {
#ifdef __linux__
    pthread_setname_np(pthread_self(), "aitw-loop");
#endif
    for (;;) {
      const std::uint64_t e = wait_for_loop(seen);
      seen = e;
      const int parts = parts_.load(std::memory_order_relaxed);
      if (id + 1 >= parts) {
        // cv::setNumThreads was lowered since this worker started: it sleeps through the loops until one
        // wants it (run() wakes the workers when the count grows), then takes that loop.
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleep_.wait(lock, [&] { return parts_.load(std::memory_order_relaxed) > id + 1; });
        continue;
      }
      t_in_loop = true;
      work(e, id + 1, parts);
      t_in_loop = false;
    }
  }

  std::atomic<std::uint64_t> epoch_{0};
  Next next_[kMaxThreads];
  End ends_[kMaxThreads];
  alignas(64) std::atomic<int> done_{0};  // written once a chunk: a line of its own
  alignas(64) std::atomic<int> parts_{0}, sleepers_{0};
  int last_parts_ = 0;  // the caller's (under pool_mutex)
  void (*fn_)(void*, const cv::Range&) = nullptr;
  void* ctx_ = nullptr;
  int begin_ = 0, n_ = 0, chunks_ = 1;
  std::exception_ptr error_;
  std::mutex error_mutex_, sleep_mutex_;
  std::condition_variable sleep_;
  std::vector<std::thread> threads_;
};

}  // namespace

}  // namespace aitw::kernel::detail

namespace aitw::kernel {
const char* parallel_loops() {
  return detail::pool_enabled() ? "aitw" : "opencv";
}
}  // namespace aitw::kernel

namespace aitw::kernel::detail {

bool loop_pool_run(const cv::Range& range, double stripes, void (*fn)(void*, const cv::Range&), void* ctx) {
  if (!pool_enabled()) return false;
  if (t_in_loop ||
      range.end - range.start <= 1) {  // a loop inside a stripe (or of one index) runs where it is
    if (range.end > range.start) fn(ctx, range);
    return true;
  }
  // One pool for the process, one loop at a time. A loop that finds it busy (another thread's: the pipeline's
  // --nets, serve's models) runs on its own thread, so that forwards side by side never run more threads than
  // one forward's plus one each. Zen 5 VM, `aitw bench pipeline --fps 0 --nets 2 --threads 2`, frames a
  // second, three alternated runs against OpenCV's TBB arena 86.2 / 77.1 / 76.6: such loops run here 72.7 /
  // 76.3 / 75.6; waiting for the pool instead 67.6 / 60.9 / 54.1 (the waiter sleeps, wakes, and often finds
  // the pool taken again); on OpenCV's backend 68.5 / 74.6 / 77.9; and a pool per calling thread (4 threads
  // on 2 cores) 67.6 / 78.0 / 74.7 against 82.3 / 84.8 / 87.5.
  // Never destroyed: a forward may still run while the process exits, and its workers just stop with it.
  static LoopPool& pool = *new LoopPool;
  std::unique_lock<std::mutex> lock(pool_mutex, std::try_to_lock);
  if (!lock.owns_lock()) return run_here(fn, ctx, range);
  return pool.run(range, stripes, fn, ctx);
}

}  // namespace aitw::kernel::detail
