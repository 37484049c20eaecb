#!/usr/bin/env bash
# CI for the aarch64 cross build: installs the cross compiler and qemu, builds (or reuses) the Debian
# arm64 sysroot, configures and builds what runs under qemu with the `aarch64` preset (warnings are
# errors), runs the unit tests and the `aitw detect` smoke test under qemu-aarch64-static (`ctest --preset
# aarch64`), starts each benchmark binary once (timings under emulation mean nothing), and checks that the
# kernels' array loops compiled to NEON. Prints the time of each phase. Safe to run again: the sysroot is cached in
# build-aarch64/sysroot (and its .debs in build-aarch64/sysroot-apt) and rebuilt only when
# toolchains/make-sysroot.sh changes.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-aarch64
start=$(date +%s)
timings=()

phase() {
  local name=$1
  shift
  echo "ci-aarch64: === $name"
  local t0
  t0=$(date +%s)
  "$@"
  timings+=("$(printf '%-10s %5d s' "$name" $(($(date +%s) - t0)))")
}

install_tools() {
  # The host half: cross compiler and binutils, qemu user mode, and what configures and generates code on
  # the build machine (cmake, ninja, the host protoc).
  local packages=(g++-aarch64-linux-gnu binutils-aarch64-linux-gnu qemu-user-static cmake ninja-build
                  protobuf-compiler debian-archive-keyring)
  local missing=()
  for p in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "ci-aarch64: all ${#packages[@]} host packages present"
    return
  fi
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

run_tests() {
  ctest --preset aarch64 --output-junit ctest-aarch64.xml
}

# The benchmark binaries start on the target: the forward bench lists its cases. The kernel bench is
# cross-built, not started: it builds every case before Google Benchmark reads its filter (two model loads and
# four forwards, 100 s under qemu), and what it times is the kernels that the test phase just ran there.
bench_starts() {
  local qemu=(qemu-aarch64-static -L "$build/sysroot")
  echo "ci-aarch64: $build/bench/aitw_forward_bench --benchmark_list_tests (under qemu)"
  "${qemu[@]}" "$build/bench/aitw_forward_bench" --benchmark_list_tests
}

# The array loops of the kernels are written for the autovectoriser: on aarch64 they must come out as
# NEON (.4s lanes), not as scalar code. Prints the vector instructions per function; fails if the
# public array kernels have none.
neon_check() {
  local report
  report=$(for o in "$build"/kernel/CMakeFiles/aitw_kernel.dir/src/*.o; do
    aarch64-linux-gnu-objdump -d -C --no-show-raw-insn "$o" |
      awk '/^[0-9a-f]+ <.*>:$/ { fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn); total[fn] = 0; vec[fn] = 0 }
           /^ +[0-9a-f]+:\t/ { total[fn]++; if ($0 ~ /\.(4s|2d|16b|8h|8b|4h|2s)/) vec[fn]++ }
           END { for (f in vec) if (vec[f] > 0) printf "  %5d / %-5d %s\n", vec[f], total[f], substr(f, 1, 100) }'
  done | sort -k4)
  echo "ci-aarch64: NEON vector instructions / all instructions, per kernel function:"
  echo "$report"
  for fn in 'aitw::kernel::exp_inplace(' 'aitw::kernel::silu(' 'aitw::kernel::decode_yolo_level(' \
            'aitw::kernel::nms('; do
    grep -qF "$fn" <<<"$report" || { echo "ci-aarch64: no NEON code in $fn...)" >&2; return 1; }
  done
}

phase deps install_tools
phase sysroot bash toolchains/make-sysroot.sh "$build/sysroot"
phase configure cmake --preset aarch64
# What runs under qemu below: the test binaries of the aarch64 test preset, `aitw` (the detect smoke test) and
# the forward benchmark started once; the kernel benchmark is cross-built. The end-to-end suites (CLI, golden, fault, accuracy) run natively only, so
# their binaries are not cross-built here (a third of the build; `cmake --build --preset aarch64` builds all).
targets=(aitw aitw_kernel_test aitw_parallel_test aitw_model_test aitw_net_test aitw_datasets_test aitw_pipeline_test
         aitw_s3_test aitw_kernel_bench aitw_forward_bench)
phase build cmake --build --preset aarch64 --parallel "$(nproc)" --target "${targets[@]}"
phase neon neon_check
phase test run_tests
phase bench bench_starts

echo "ci-aarch64: phase timings"
printf '  %s\n' "${timings[@]}"
echo "ci-aarch64: finished in $(($(date +%s) - start)) s"
