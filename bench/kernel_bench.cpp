// Google Benchmark view of the kernel cases: each case's ours and OpenCV baseline as two benchmarks.
// `aitw bench kernels` runs the same cases with same-run ratios; this binary gives Google Benchmark's
// statistics and output formats.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "aitw/bench/kernel_cases.hpp"

int main(int argc, char** argv) {
  const char* env = std::getenv("AITW_SHARED_DIR");
  static const auto cases = aitw::bench::make_kernel_cases(env && *env ? env : AITW_SHARED_DIR);
  for (const auto& c : cases) {
    benchmark::RegisterBenchmark((c.name + "/ours").c_str(), [&c](benchmark::State& s) {
      for (auto _ : s) c.ours();
    })->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((c.name + "/opencv").c_str(), [&c](benchmark::State& s) {
      for (auto _ : s) c.opencv();
    })->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
