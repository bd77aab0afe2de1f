#!/usr/bin/env bash
# The full-length reproduction runs of docs/reproduction.md, resumable: each call runs its
# cells one after another; a finished cell (summary.json "finished") is skipped and an
# interrupted one resumes from its checkpoint. Start two calls (two slots) for two cores.
#
# usage: docs/reproduction/run-verdicts.sh PRESET OUTDIR DATA "variant:seed variant:seed …" [--set k=v …]
# e.g.   nohup nice docs/reproduction/run-verdicts.sh presets/mnist-800x2.toml runs/v800 \
#            ../shared/data/mnist "abg:9291 none:9291 ab:9292" > runs/slot1.log 2>&1 &
set -u
BIN=${LTMLP:-./target/release/ltmlp}
preset=$1; out=$2; data=$3; cells=$4; shift 4
for cell in $cells; do
  v=${cell%%:*}; s=${cell##*:}
  dir=$out/$v-seed$s
  if [ -f "$dir/summary.json" ] && grep -q '"state": "finished"' "$dir/summary.json"; then continue; fi
  if [ -f "$dir/checkpoint.bin" ]; then
    "$BIN" run --resume "$dir" --data "$data"
  else
    # A folder without a checkpoint holds a run that ended before its first epoch: move it aside.
    force=(); [ -d "$dir" ] && force=(--force)
    "$BIN" run "$preset" --variant "$v" --seed "$s" --data "$data" \
      --set data.monitor=test --out "$dir" "${force[@]}" "$@"
  fi
done
