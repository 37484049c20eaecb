#!/usr/bin/env bash
# Soak test of `aitw serve` (not in CI): CLIENTS clients at 12 fps for MINUTES minutes against one worker
# running as its own process, then a phase of reconnect churn (short sessions opened and closed), while the
# worker's RSS (VmRSS), open file descriptors and threads are sampled from /proc every INTERVAL_S seconds.
#
#   bash scripts/soak.sh [MINUTES=10] [CLIENTS=4]
#
# Phases (the CSV's `phase` column):
#   prime  one short session loads the model; it then stays loaded (--idle-timeout is longer than the run),
#          and the quiet worker (model loaded, no session) gives the fd/thread baseline `quiet before`
#   load   CLIENTS clients, `aitw replay --server ... --clients CLIENTS --fps 12 --duration MINUTES*60`;
#          `warm` = the sample WARMUP_S seconds in (default 60)
#   closed the load's sessions just closed (`sessions closed`)
#   churn  CHURN_S seconds (default 60) of back-to-back short replays (2 clients, 1 s each): per-session leaks
#   quiet  every session closed again: `quiet after`
# Fails (exit 1) when RSS grew by >= 5 MiB from `warm` to the end of `load`, when the fd or thread count
# after `warm` ever exceeded its value at `warm`, when `quiet after` has more fds or threads than
# `quiet before`, when a replay failed or the worker did not exit 0 on SIGTERM.
#
# Environment: AITW (binary, default build/tools/aitw), REC (recording, default
# build/datasets/camera_pan_640x480.aitwrec, built if missing), PORT (default 7170), OUT (CSV, logs and the
# replay JSON; default build/soak), INTERVAL_S (5), WARMUP_S (60), CHURN_S (60), RSS_LIMIT_KIB (5120).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
clients=${2:-4}
aitw=${AITW:-build/tools/aitw}
rec=${REC:-build/datasets/camera_pan_640x480.aitwrec}
port=${PORT:-7170}
out=${OUT:-build/soak}
interval=${INTERVAL_S:-5}
warmup=${WARMUP_S:-60}
churn_s=${CHURN_S:-60}
rss_limit=${RSS_LIMIT_KIB:-5120}
shared=${AITW_SHARED_DIR:-../shared}

[ -x "$aitw" ] || { echo "soak: $aitw not found; build first (or set AITW)" >&2; exit 2; }
if [ ! -s "$rec" ]; then
  AITW="$aitw" bash datasets/make_replay_sets.sh "$(dirname "$rec")"
fi
mkdir -p "$out"
csv=$out/soak.csv
phase_file=$out/phase
echo prime > "$phase_file"
duration=$((minutes * 60))
(( duration > warmup )) || { echo "soak: MINUTES*60 must exceed WARMUP_S ($warmup s)" >&2; exit 2; }

server_pid= sampler_pid=
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT

# The worker, as its own process: its /proc is what we sample.
AITW_MODEL_DIR=${AITW_MODEL_DIR:-$(realpath "$shared/models")} "$aitw" serve --listen "127.0.0.1:$port" \
  --idle-timeout "$(( duration + churn_s + 3600 ))s" --max-sessions $(( clients + 8 )) > "$out/serve.log" 2>&1 &
server_pid=$!
serve_pid=$server_pid
for _ in $(seq 100); do
  grep -q "serving on" "$out/serve.log" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "soak: aitw serve exited:" >&2; cat "$out/serve.log" >&2; exit 2; }
  sleep 0.1
done

sample() {  # one line: seconds since start, phase, VmRSS kB, fds, threads
  local rss threads fds
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null) || return 1
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null) || return 1
  fds=$(ls "/proc/$server_pid/fd" 2>/dev/null | wc -l)
  [ -n "$rss" ] || return 1
  printf '%s,%s,%s,%s,%s\n' "$(awk -v a="${EPOCHREALTIME/,/.}" -v b="$t_start" 'BEGIN {printf "%.1f", a - b}')" \
    "$(cat "$phase_file")" "$rss" "$fds" "$threads"
}
t_start=${EPOCHREALTIME/,/.}
echo "t_s,phase,rss_kb,fds,threads" > "$csv"
( while sample >> "$csv"; do sleep "$interval"; done ) &
sampler_pid=$!

replay() { "$aitw" --log-level warn replay "$rec" --server "127.0.0.1:$port" "$@"; }
status=0
fail() { echo "SOAK FAILED: $*"; status=1; }

# prime: load the model, then the quiet baseline.
replay --fps 12 --duration 2 > "$out/prime.txt" || fail "priming replay exited $?"
sleep 3
quiet_before=$(sample)

echo load > "$phase_file"
echo "soak: $clients clients x 12 fps for $minutes min against pid $server_pid (127.0.0.1:$port); samples in $csv"
t_load=${EPOCHREALTIME/,/.}
replay --clients "$clients" --fps 12 --duration "$duration" --json "$out/soak-replay.json" > "$out/load.txt" ||
  fail "load replay exited $?"
echo closed > "$phase_file"
sleep 2
after_load=$(sample)  # the load's sessions closed
cat "$out/load.txt"

echo churn > "$phase_file"
sessions=0
t_churn_end=$(( $(date +%s) + churn_s ))
while (( $(date +%s) < t_churn_end )); do
  replay --clients 2 --fps 12 --duration 1 > "$out/churn-last.txt" || fail "churn replay exited $?"
  sessions=$(( sessions + 2 ))
done
echo quiet > "$phase_file"
sleep 3  # sessions closing
quiet_after=$(sample)
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=

kill -TERM "$server_pid"
serve_rc=0
wait "$server_pid" || serve_rc=$?
server_pid=
(( serve_rc == 0 )) || fail "aitw serve exited $serve_rc on SIGTERM"

# The figures. `warm`: the first load sample at least WARMUP_S into the load phase.
warm_t=$(awk -v a="$t_load" -v b="$t_start" -v w="$warmup" 'BEGIN {print a - b + w}')
read -r warm_rss warm_fds warm_threads < <(awk -F, -v t="$warm_t" \
  'NR > 1 && $2 == "load" && $1 >= t {print $3, $4, $5; exit}' "$csv")
[ -n "${warm_rss:-}" ] || { echo "soak: no load sample after the warm-up" >&2; exit 1; }
read -r end_rss end_fds end_threads < <(awk -F, '$2 == "load" {r = $3; f = $4; t = $5} END {print r, f, t}' "$csv")
IFS=, read -r _ _ al_rss al_fds al_threads <<< "$after_load"
IFS=, read -r _ _ qb_rss qb_fds qb_threads <<< "$quiet_before"
IFS=, read -r _ _ qa_rss qa_fds qa_threads <<< "$quiet_after"
read -r max_fds max_threads max_rss slope < <(awk -F, -v t="$warm_t" '
  NR > 1 && $2 == "load" && $1 >= t {
    if ($4 > f) f = $4; if ($5 > th) th = $5; if ($3 > r) r = $3
    n++; sx += $1; sy += $3; sxx += $1 * $1; sxy += $1 * $3 }
  END { s = (n > 1 && n * sxx != sx * sx) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) * 60 : 0
        printf "%d %d %d %.1f\n", f, th, r, s }' "$csv")
growth=$(( end_rss - warm_rss ))
echo
echo "soak summary (aitw serve pid $serve_pid was sampled every ${interval} s; CSV: $csv)"
printf '  RSS      quiet before %d KiB; warm (%d s into load) %d KiB; end of load %d KiB; growth %+d KiB (limit %d); max %d KiB; slope %s KiB/min; sessions closed %d KiB; quiet after churn %d KiB\n' \
  "$qb_rss" "$warmup" "$warm_rss" "$end_rss" "$growth" "$rss_limit" "$max_rss" "$slope" "$al_rss" "$qa_rss"
echo "  fds      quiet before $qb_fds; warm $warm_fds; max after warm $max_fds; end of load $end_fds; sessions closed $al_fds; quiet after churn $qa_fds"
echo "  threads  quiet before $qb_threads; warm $warm_threads; max after warm $max_threads; end of load $end_threads; sessions closed $al_threads; quiet after churn $qa_threads"
echo "  churn    $sessions short sessions in ${churn_s} s"
if command -v jq > /dev/null; then
  jq -r '"  load     \(.frames_processed) frames processed of \(.frames_offered) offered, \(.fps_processed) fps total, p95 \(.e2e_ms.p95) ms pooled, reconnects \(.reconnects), errors \(.frame_errors)" +
         (if .clients then "; fairness \(.fairness)\n" + ([.clients[] | "  client \(.client): \(.fps_processed) fps, p50 \(.e2e_ms.p50) ms, p95 \(.e2e_ms.p95) ms, dropped \(.drop_pct) %"] | join("\n")) else "" end)' \
    "$out/soak-replay.json"
fi

(( growth < rss_limit )) || fail "RSS grew by $growth KiB during the load phase (limit $rss_limit)"
(( max_fds <= warm_fds )) || fail "fds grew during the load phase: $warm_fds at warm-up, max $max_fds"
(( max_threads <= warm_threads )) || fail "threads grew during the load phase: $warm_threads at warm-up, max $max_threads"
(( al_fds <= qb_fds )) || fail "fds leaked by the load's sessions: $qb_fds quiet before, $al_fds after they closed"
(( qa_fds <= qb_fds )) || fail "fds leaked by sessions: $qb_fds quiet before, $qa_fds quiet after churn"
(( qa_threads <= qb_threads )) || fail "threads leaked by sessions: $qb_threads quiet before, $qa_threads after churn"
(( status == 0 )) && echo "soak: ok"
exit "$status"
