#!/usr/bin/env bash
# The sanitizer suites: every unit and integration suite under ASan+UBSan (preset `asan`; the coco128
# accuracy run is left to the normal build), and the concurrency suites (pipeline, server, client, fault
# injection) under TSan (preset `tsan`). Any report fails the run. Suppressions live in sanitizers/ and each
# names a third-party frame and why. Usage: bash scripts/sanitizers.sh [asan|tsan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
root=$(pwd)

if [ "$which" = asan ] || [ "$which" = all ]; then
  echo "sanitizers: === asan (ASan + UBSan, leaks on)"
  t0=$(date +%s)
  cmake --preset asan -DAITW_WERROR=ON >/dev/null
  cmake --build --preset asan --parallel "$(nproc)"
  bash scripts/install-s3rver.sh build-asan/s3rver
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
  export LSAN_OPTIONS="suppressions=$root/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --preset asan -j "$(nproc)" --label-exclude accuracy
  echo "sanitizers: asan done in $(( $(date +%s) - t0 )) s"
fi

if [ "$which" = tsan ] || [ "$which" = all ]; then
  echo "sanitizers: === tsan (concurrency suites)"
  t0=$(date +%s)
  cmake --preset tsan -DAITW_WERROR=ON >/dev/null
  cmake --build --preset tsan --parallel "$(nproc)" --target aitw aitw_pipeline_test aitw_net_test aitw_fault_test
  export TSAN_OPTIONS="suppressions=$root/sanitizers/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
  ctest --preset tsan -j "$(nproc)" -R '^(Pipeline|Server|Client|Fault|Metrics)[A-Za-z]*\.'
  echo "sanitizers: tsan done in $(( $(date +%s) - t0 )) s"
fi
