#!/usr/bin/env bash
# Flame graphs of every service under the lifecycle closed loop (issue 18: profile before cutting).
#
#   bench/profile_lifecycle.sh [OUT_DIR] [SECONDS]
#
# Starts `python -m bench.lifecycle` (its own isolated stack) with a long closed loop, waits for the loop to be
# measuring, then samples each service process with py-spy at the same time for SECONDS (20) and writes
# OUT_DIR/<service>.svg (bench/results/profiles by default) and the folded stacks OUT_DIR/<service>.folded
# (read them with `python -m bench.folded OUT_DIR/<service>.folded`: the frames with the most samples). py-spy reads other processes' memory: run it as root (or with CAP_SYS_PTRACE).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/profiles}
SECONDS_=${2:-20}
mkdir -p "$OUT"
LOG=$(mktemp /tmp/motcua-profile-XXXX.log)
.venv/bin/python -m bench.lifecycle --concurrency 12 --duration $((SECONDS_ + 20)) --warmup 5 --rate 2 \
    --baseline-duration 0 --lag-samples 5 --out "$(mktemp -d)" >"$LOG" 2>&1 &
BENCH=$!
trap 'kill $BENCH 2>/dev/null || true' EXIT
until grep -q "closed loop, " "$LOG"; do
  kill -0 $BENCH 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 1
done
sleep 8   # past the warm-up
pids=()
for svc in intake workflow digitization payments reporting; do
  pid=$(pgrep -P $BENCH -f "motcua.cli serve $svc$")
  .venv/bin/py-spy record --nonblocking --rate 67 --duration "$SECONDS_" --pid "$pid" -o "$OUT/$svc.svg" \
      >/dev/null 2>&1 &
  pids+=($!)
  .venv/bin/py-spy record --nonblocking --rate 67 --duration "$SECONDS_" --pid "$pid" --format raw \
      -o "$OUT/$svc.folded" >/dev/null 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
echo "flame graphs in $OUT; the bench goes on (log $LOG)"
wait $BENCH || true
