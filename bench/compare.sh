#!/usr/bin/env bash
# Runs `ltmlp bench` and bench/pytorch_mlp.py one after the other, interleaved (A, B, A, B…),
# for 1 and 2 threads (THREADS="1" for one), and prints the medians and the ratios. Usage:
#   bench/compare.sh [ROUNDS] [extra arguments for both, e.g. --batch 1000 --net plain]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
shift || true
LTMLP=${LTMLP:-${CARGO_TARGET_DIR:-target}/release/ltmlp}
LOG=${LOG:-bench/compare.log}
: >"$LOG"
for round in $(seq "$ROUNDS"); do
  for threads in ${THREADS:-1 2}; do
    echo "## round $round threads $threads ltmlp $(uptime)" >>"$LOG"
    "$LTMLP" bench --threads "$threads" "$@" >>"$LOG"
    echo "## round $round threads $threads pytorch $(uptime)" >>"$LOG"
    python3 bench/pytorch_mlp.py --threads "$threads" "$@" >>"$LOG"
  done
done
python3 bench/summarize.py "$LOG"
