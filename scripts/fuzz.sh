#!/usr/bin/env bash
# Fuzzing (FUZZING.md): installs clang-14 + libFuzzer, builds the fuzz targets with ASan+UBSan in
# build-fuzz/ (never build/), writes the seed corpora, then runs each target for SECONDS (default 60).
# Fails (exit 1) on any crash, leak, sanitizer report, timeout, out-of-memory or broken invariant, naming
# the target and the saved input; prints executions and coverage per target.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Environment: AITW_FUZZ_BUILD (build dir, default build-fuzz), AITW_FUZZ_JOBS (ninja -j, default 2),
# AITW_FUZZ_PARALLEL (targets run side by side, default: all of them).
# The corpus in build-fuzz/corpus/<target> is kept between runs and grows; delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[ $# -gt 0 ] && shift
all=(fuzz_session fuzz_onnx fuzz_registry fuzz_recording fuzz_jpeg)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
build=${AITW_FUZZ_BUILD:-build-fuzz}
jobs=${AITW_FUZZ_JOBS:-2}
t_start=$(date +%s)
phase() { echo "fuzz: [$(($(date +%s) - t_start)) s] $*"; }

# Largest input per target: small enough for speed, large enough for a few messages, frames or graphs.
declare -A max_len=([fuzz_session]=65536 [fuzz_onnx]=65536 [fuzz_registry]=16384 [fuzz_recording]=65536
                    [fuzz_jpeg]=16384)

phase "packages"
bash scripts/install-deps.sh
fuzz_packages=(clang-14 libfuzzer-14-dev libclang-rt-14-dev)
missing=()
for p in "${fuzz_packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fuzz: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

phase "configure + build ($build, ninja -j$jobs)"
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DAITW_FUZZ=ON -DAITW_BUILD_TESTS=OFF -DAITW_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD=ON >/dev/null
cmake --build "$build" --target aitw_fuzz -- -j"$jobs"
t_built=$(date +%s)

phase "seed corpora ($build/corpus)"
bash fuzz/make_seeds.sh "$build/corpus" "$build"

# Sanitizers: every report aborts (the build has -fno-sanitize-recover=all); leaks are checked after each
# input (libFuzzer -detect_leaks=1 with LeakSanitizer). A 64 MiB quarantine (ASan's default is 256) still
# catches a use after free of any recent input, and keeps long runs' RSS far from the 2 GiB limit
# (fuzz_session held ~1.3 GB with the default).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1:quarantine_size_mb=64"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$(pwd)/fuzz/lsan.supp:print_suppressions=0"

# One target: runs it, then writes its summary line to $build/logs/$t.result ("ok" or "FAILED ...").
run_target() {
  local t=$1 art="$build/artifacts/$1" log="$build/logs/$1.log" rc=0
  phase "run $t for ${wall} s (${seconds} s of a core)"
  rm -rf "$art"
  mkdir -p "$art" "$build/corpus/$t"
  local args=(-max_total_time="$wall" -timeout="$timeout" -rss_limit_mb=2048 -max_len="${max_len[$t]:-65536}"
              -print_final_stats=1 -detect_leaks=1 -artifact_prefix="$art/")
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  # libjpeg prints a warning for nearly every corrupt JPEG (30 MB a minute): the target's own stderr is
  # closed; libFuzzer's output and sanitizer reports (and invariant failures) still reach the log.
  [ "$t" = fuzz_jpeg ] && args+=(-close_fd_mask=2)
  "$build/fuzz/$t" "${args[@]}" "$build/corpus/$t" >"$log" 2>&1 || rc=$?
  local execs rate last cov ft corp found line
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
  found=$(find "$art" -type f -print -quit)
  line=$(printf '%-15s execs %10s  exec/s %7s  cov %5s  ft %6s  corpus %s' "$t" "${execs:-?}" "${rate:-?}" \
         "${cov:-?}" "${ft:-?}" "${corp:-?}")
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    echo "$line  FAILED (exit $rc)" >"$build/logs/$t.result"
    echo "fuzz: $t FAILED (exit $rc); log $log; input(s): ${found:-none saved}" >&2
    grep -m 8 -E 'ERROR: |SUMMARY: |fuzz invariant failed|terminate called|what\(\)|runtime error' "$log" >&2 || true
  else
    echo "$line  ok" >"$build/logs/$t.result"
  fi
}

# Each target is one single-threaded process and gets SECONDS of one core. They run side by side, all at once
# by default (AITW_FUZZ_PARALLEL): with more of them than cores, each runs for SECONDS x parallel / cores of
# wall time (and its per-input timeout of 10 s a core stretches the same way), so the stage takes about
# SECONDS x targets / cores and no core idles. One per core, five targets on two cores took three rounds, the
# last with one core idle: 180 s of fuzzing where this takes 150.
cores=$(nproc)
parallel=${AITW_FUZZ_PARALLEL:-${#targets[@]}}
[ "$parallel" -le "${#targets[@]}" ] || parallel=${#targets[@]}
wall=$seconds
timeout=10
if [ "$parallel" -gt "$cores" ]; then
  wall=$(((seconds * parallel + cores - 1) / cores))
  timeout=$(((10 * parallel + cores - 1) / cores))
fi
mkdir -p "$build/logs"
rm -f "$build"/logs/*.result
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
wait || true
failed=()
summary=()
for t in "${targets[@]}"; do
  line=$(cat "$build/logs/$t.result" 2>/dev/null || echo "$t  FAILED (no result)")
  summary+=("$line")
  [[ "$line" == *"  ok" ]] || failed+=("$t")
done

t_end=$(date +%s)
echo "fuzz: per-target results (${seconds} s of a core each, ${wall} s side by side; logs in $build/logs)"
printf '  %s\n' "${summary[@]}"
echo "fuzz: phases: build $((t_built - t_start)) s, fuzzing $((t_end - t_built)) s, total $((t_end - t_start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproduce: $build/fuzz/TARGET $build/artifacts/TARGET/<file>)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
