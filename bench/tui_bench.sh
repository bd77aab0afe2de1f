#!/usr/bin/env bash
# Headless vs dashboard throughput, alternated; and the time to the first frame.
cd "$(dirname "$0")/.."
B=./target/release/ltmlp
for i in 1 2 3; do
  rm -rf /tmp/hb /tmp/tb
  $B run presets/default.toml --set train.epochs=3 --out /tmp/hb > /dev/null 2>&1
  h=$(grep examples_per_second /tmp/hb/summary.json | tr -dc '0-9.')
  tmux -L tb new-session -d -s s -x 100 -y 30 "$B tui --set train.epochs=3 --out /tmp/tb"
  while [ ! -f /tmp/tb/summary.json ]; do sleep 0.2; done
  sleep 0.5; tmux -L tb send-keys -t s q; sleep 0.5; tmux -L tb kill-server 2>/dev/null
  t=$(grep examples_per_second /tmp/tb/summary.json | tr -dc '0-9.')
  echo "round $i headless $h dashboard $t"
done
for i in 1 2 3; do
  tmux -L ff new-session -d -s s -x 100 -y 30 "sleep 0.3; $B tui --set train.epochs=50 --out /tmp/ff$i"
  start=$(date +%s.%N); sleep 0.3
  while ! tmux -L ff capture-pane -p -t s | grep -q "default \[ab\]"; do sleep 0.01; done
  end=$(date +%s.%N)
  echo "first frame $(echo "$end - $start - 0.3" | bc) s"
  tmux -L ff send-keys -t s C-c; sleep 1; tmux -L ff kill-server 2>/dev/null
done
