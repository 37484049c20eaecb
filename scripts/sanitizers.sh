#!/usr/bin/env bash
# The sanitizer suites (CI runs `all`, after scripts/test.sh).
# Usage: bash scripts/sanitizers.sh [asan|tsan|all]
#
#   asan  preset `asan` (ASan + UBSan + LeakSanitizer, build-asan/): every unit and integration suite -- kernels,
#         model adapter and custom layers, pipeline, recordings, protocol, server, client, fault injection,
#         metrics, registry (file:// and s3rver), golden detections, the CLI and `aitw detect` on bus.jpg.
#         The protocol, server, client and CLI suites run with OpenCV's convolution (below: why).
#         Left to the normal build (scripts/test.sh, .ci/run): the coco128 accuracy run (label `accuracy`) and
#         the tests labelled `timing` (the CLI tests of `aitw bench kernels|layers|pipeline`: timing runs of
#         code that the kernel, custom-layer and pipeline suites already cover here; about a fifth of the ASan
#         test time). Wall-clock bounds belong there, never in a test that a sanitizer run executes. Also left
#         there: the Node and Python clients' suites (label `clients`: their code is not C++, and the C++ protocol
#         they drive is the server and client suites' here) and the installed-package consumer build (label
#         `install`: a CMake install and two compiles, nothing a sanitizer looks at that the CLI tests miss), and
#         the cluster suites (label `cluster`: HAProxy, Prometheus and several workers as processes; the drain,
#         max-session-age and endpoint-list code they drive is in the server and client suites here).
#   tsan  preset `tsan` (build-tsan/): the concurrency suites -- the kernels' loop pool (kernel/src/parallel.cpp),
#         pipeline (TBB flow graph, inference threads),
#         server and client (Asio), fault injection (proxy threads, `aitw serve` killed), the history
#         Recorder (its writer thread against the server's callbacks), with a libtbb
#         built with TSan (scripts/tsan-onetbb.sh).
#
# Any report fails the run: every sanitizer writes its reports to build-*/sanitizer-reports/ (those of the
# `aitw` processes that the CLI and fault tests start too, whose exit status a test may not look at), and
# the run fails when a report is there, a test fails, or no test ran. Suppressions live in sanitizers/; each
# names a third-party frame and says why. Prints the time of each stage and ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
case "$which" in asan | tsan | all) ;; *) echo "usage: $0 [asan|tsan|all]" >&2; exit 2 ;; esac
root=$(pwd)
jobs=$(nproc)
# No libmongoc statistics counters in /dev/shm: a file left by a killed process whose PID is reused makes it
# warn on stderr at start, which the CLI tests counting stderr lines would take for aitw's (scripts/test.sh).
export MONGOC_DISABLE_SHM=1
start=$(date +%s)
timings=()
counts=()
failed=()
reports_total=0
declare -A reports_seen
ctest_runs=0
ran=0
times_printed=0

print_times() {
  [ ${#timings[@]} -gt 0 ] && [ "$times_printed" -eq 0 ] || return 0
  times_printed=1
  echo "sanitizers: stage times"
  printf '  %s\n' "${timings[@]}"
}
summarized=0
trap 'rc=$?; [ $rc -eq 0 ] || [ $summarized -eq 1 ] || { print_times; echo "sanitizers: FAILED (exit $rc)" >&2; }' EXIT

stage() {  # stage NAME COMMAND...: runs it and records its wall time; returns its status
  local name=$1 t0 rc=0
  shift
  echo "sanitizers: === $name"
  t0=$(date +%s)
  "$@" || rc=$?
  timings+=("$(printf '%-12s %5d s' "$name" $(($(date +%s) - t0)))")
  return $rc
}

# run_tests [--env NAME=VALUE]... PRESET CTEST_ARGS...: ctest with the preset; then fails on any report in
# build-PRESET/sanitizer-reports, any failed test, or no test run. Sets `ran` to the number of tests run.
# --env NAME=VALUE (repeatable, first): for this run only. A report already counted by an earlier run of the
# same preset is not counted again.
run_tests() {
  local envs=()
  while [ "${1:-}" = --env ]; do envs+=("$2"); shift 2; done
  local preset=$1 reports="$root/build-$1/sanitizer-reports" rc=0 found
  local log="build-$1/sanitizers-ctest-$((++ctest_runs)).log"
  shift
  env "${envs[@]}" ctest --preset "$preset" -j "$jobs" --no-tests=error "$@" 2>&1 | tee "$log" || rc=$?
  ran=$(sed -nE 's/.*tests passed, [0-9]+ tests? failed out of ([0-9]+).*/\1/p' "$log" | tail -1)
  ran=${ran:-0}
  found=$(find "$reports" -type f | wc -l)
  reports_total=$((reports_total + found - ${reports_seen[$preset]:-0}))
  reports_seen[$preset]=$found
  if [ "$found" -gt 0 ]; then
    echo "sanitizers: $preset: $found report(s) in $reports:" >&2
    for f in "$reports"/*; do
      echo "----- $f" >&2
      head -c 30000 "$f" | with_lines >&2
    done
    return 1
  fi
  [ "$rc" -eq 0 ] || { echo "sanitizers: $preset: ctest failed (exit $rc)" >&2; return 1; }
  [ "$ran" -gt 0 ] || { echo "sanitizers: $preset: no test ran" >&2; return 1; }
}

# GCC's sanitizer symbolizer names the functions of the -g1 builds but not their lines ("(BINARY+0xOFFSET)"):
# adds file:line from addr2line to such frames of aitw's binaries, and the line they are inlined into.
with_lines() {
  awk -v root="$root/" '
    match($0, /\(\/[^()+]+\+0x[0-9a-f]+\)$/) {
      spec = substr($0, RSTART + 1, RLENGTH - 2)
      split(spec, part, "+")
      if (index(part[1], root) == 1) {
        cmd = "addr2line -i -e \"" part[1] "\" " part[2]
        n = 0
        while ((cmd | getline line) > 0) loc[++n] = line
        close(cmd)
        if (n > 0 && loc[1] !~ /^\?\?/) {
          print $0 " " loc[1] (n > 1 && loc[n] != loc[1] ? " (inlined into " loc[n] ")" : "")
          next
        }
      }
    }
    { print }'
}

build() {  # build PRESET [BUILD_ARGS...]: configure (warnings are errors) and build
  local preset=$1
  shift
  cmake --preset "$preset" -DAITW_WERROR=ON >/dev/null
  cmake --build --preset "$preset" --parallel "$jobs" "$@"
}

fresh_reports() {
  rm -rf "$root/build-$1/sanitizer-reports"
  mkdir -p "$root/build-$1/sanitizer-reports"
}

# OpenCV's gPhoto2 video backend is tried for any file that FFmpeg and GStreamer cannot open (the CLI test
# of `aitw record` on a junk .mp4): it autodetects USB cameras through libgphoto2's usb1 port driver, which
# leaks libusb's device lists, and that driver is unloaded (lt_dlclose) before exit, so LeakSanitizer cannot
# name its frames to suppress them. aitw never reads from a gPhoto2 camera: the backend is off for the runs.
export OPENCV_VIDEOIO_PRIORITY_GPHOTO2=0

if [ "$which" = asan ] || [ "$which" = all ]; then
  # Every target: the suites need them all. -O1 -g1: see CMakePresets.json.
  stage "asan build" build asan
  stage "asan s3rver" bash scripts/install-s3rver.sh build-asan/s3rver
  stage "asan congodb" bash scripts/install-congodb.sh build-asan/congodb
  fresh_reports asan
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0:log_path=$root/build-asan/sanitizer-reports/asan"
  export LSAN_OPTIONS="suppressions=$root/sanitizers/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$root/build-asan/sanitizer-reports/ubsan"
  # A failed suite does not stop the other one: every report of the run is shown, then it fails.
  # Two runs over the same build, every test in exactly one. At -O1 with ASan, aitw's convolution is ~5x
  # slower than OpenCV's uninstrumented one (`aitw detect` on bus.jpg: 3.3 s against 1.0 s), and the
  # protocol, server, client and CLI suites below spend most of their time in model loads and forwards that
  # are not what they check: they run with OpenCV's convolution (AITW_CONV=opencv). The
  # convolution stays under ASan in the rest: its unit suites (every shape class, each ISA), the custom
  # layers' whole-network checks, the golden detections, the pipeline and `aitw detect` on bus.jpg.
  conv_free='^(Cli[A-Za-z]*|HistoryCli|Fault|ServeRegistryFaults|Server[A-Za-z]*|Client[A-Za-z]*|MaxSessionAge)\.'
  asan_excluded='accuracy|timing|clients|install|cluster'
  # The golden detections at the forced lower kernel levels (AVX2, portable) run natively in the tests stage;
  # under ASan those levels' kernels are the unit suites' (Isa/ConvVsOpenCV.*, every shape class), so the
  # whole-network goldens run here at the best level only (the forced ones were ~60 s of the stage).
  golden_forced='Golden\.SameDetectionsAsReference/[a-z0-9]+_[a-z]+_(avx2|portable)'
  asan_ran=0
  stage "asan tests" run_tests asan --label-exclude "$asan_excluded" -E "$conv_free|$golden_forced" || failed+=(asan)
  asan_ran=$ran
  stage "asan tests, AITW_CONV=opencv" run_tests --env AITW_CONV=opencv asan --label-exclude "$asan_excluded" -R "$conv_free" ||
    failed+=(asan)
  counts+=("asan $((asan_ran + ran)) tests")
fi

if [ "$which" = tsan ] || [ "$which" = all ]; then
  # Only what the concurrency suites run (aitw: the fault-injection tests start `aitw serve`).
  stage "tsan build" build tsan --target aitw aitw_pipeline_test aitw_net_test aitw_fault_test aitw_history_test \
    aitw_parallel_test
  # libtbb with TSan (scripts/tsan-onetbb.sh says why), first on the library path of the tests and of the
  # `aitw serve` they start; checked, since with Debian's libtbb the run drowns in false reports.
  stage "tsan onetbb" bash scripts/tsan-onetbb.sh build-tsan/onetbb
  export LD_LIBRARY_PATH="$root/build-tsan/onetbb/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # ldd's whole output first: `ldd | grep -q` under pipefail fails whenever grep exits before ldd has written
  # everything (SIGPIPE), which made this check fail on a fresh machine although the line was there.
  libs=$(ldd build-tsan/pipeline/aitw_pipeline_test)
  grep -qF "=> $root/build-tsan/onetbb/lib/libtbb.so.12 " <<<"$libs" ||
    { echo "sanitizers: the TSan tests would not load build-tsan/onetbb/lib/libtbb.so.12" >&2; exit 1; }
  fresh_reports tsan
  # aitw's convolution and custom layers run inside OpenCV's forward, compiled without TSan (kernel/CMakeLists.txt);
  # their memcpy calls are intercepted, and their parallel loops annotate what OpenCV's uninstrumented joins
  # order (kernel/src/parallel.hpp), so the suites run the product as shipped: aitw's convolution. (Before
  # the annotations they ran with AITW_CONV=opencv; a custom layer's memcpy on a TBB worker was reported
  # racing with the next frame's copy into the same blob.)
  # no_huge_pages_for_shadow=0: the shadow may use transparent huge pages (where the kernel gives them: THP
  # "madvise" on the VMs measured). TSan writes the shadow of every range a memcpy or memset touches, and the
  # model loads and forwards of these suites were bound by its page faults (more system time than user time):
  # 11.4-11.5 -> 9.0-9.6 s on Pipeline.TwoNetworksRunConcurrently, 11.8-14.2 -> 10.2 s on
  # Server.TwoSessionsOnDifferentModels. Only where the shadow lives changes, not what is checked.
  export TSAN_OPTIONS="suppressions=$root/sanitizers/tsan.supp:halt_on_error=1:second_deadlock_stack=1:no_huge_pages_for_shadow=0:log_path=$root/build-tsan/sanitizer-reports/tsan"
  # ParallelFor.opencv runs the loop suite on OpenCV's TBB backend, whose joins TSan cannot see (above): the
  # suite's own lambdas are instrumented, so each loop's end would be reported as a race. The pool's runs stay.
  stage "tsan tests" run_tests tsan --label-exclude timing -R '^(Pipeline|Server|Client|Fault|Metrics|Recorder|ParallelFor)[A-Za-z]*\.' \
    -E '^ParallelFor\.opencv$' || failed+=(tsan)
  counts+=("tsan $ran tests")
fi

print_times
summary=$(printf '%s, ' "${counts[@]}")
if [ ${#failed[@]} -gt 0 ]; then
  echo "sanitizers: FAILED (${failed[*]}): ${summary}$reports_total reports ($(($(date +%s) - start)) s)" >&2
  summarized=1
  exit 1
fi
echo "sanitizers: ${summary}$reports_total reports ($(($(date +%s) - start)) s)"
