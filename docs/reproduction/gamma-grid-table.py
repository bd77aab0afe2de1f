#!/usr/bin/env python3
"""The table of docs/reproduction.md §8 from the sweep folder of the γ control grid.

usage: python3 docs/reproduction/gamma-grid-table.py SWEEP_DIR

A run "blows up" when its final validation error is above 1.2 × its best or more than 20 %
of the units of some layer are saturated at the end (issue 36's criterion). Each cell shows
final validation % per seed, with ✗ on a run that blew up; runs not finished show "…".
"""
import json
import os
import re
import sys

ROWS = ["ab", "abg-off", "abg-rollback"]


def run_of(path):
    summary = os.path.join(path, "summary.json")
    metrics = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(summary):
        return None
    s = json.load(open(summary))
    if s.get("state") != "finished" or s.get("final_validation_error") is None:
        return None
    last = None
    for line in open(metrics):
        d = json.loads(line)
        if "layers" in d:
            last = d
    saturated = max((l["saturated_fraction"] for l in last["layers"]), default=0.0)
    rollbacks = 0
    for line in open(metrics):
        rollbacks += line.count('"rollback"')
    final, best = s["final_validation_error"], s["best_validation_error"]
    blew_up = final > 1.2 * best or saturated >= 0.2
    return final, best, saturated, blew_up, rollbacks


def main(root):
    cells = {}
    for name in sorted(os.listdir(root)):
        m = re.match(
            r"(ab|abg)-learning_rate=([\d.]+)-input_noise=([\d.]+)-momentum=([\d.]+)"
            r"-batch_size=(\d+)(?:-gamma_control=(\w+))?-seed(\d+)$",
            name,
        )
        if not m:
            continue
        variant, rate, noise, mom, batch, control, seed = m.groups()
        row = variant if variant == "ab" else f"abg-{control}"
        key = (float(rate), float(noise), float(mom), int(batch))
        cells.setdefault(key, {}).setdefault(row, []).append(
            (int(seed), run_of(os.path.join(root, name)))
        )
    print("| rate | noise | momentum | batch | α β | α β γ, papers' rule | α β γ, rollback (rollbacks) |")
    print("|---|---|---|---|---|---|---|")
    tally = {r: [0, 0] for r in ROWS}
    for key in sorted(cells):
        out = []
        for r in ROWS:
            runs = sorted(cells[key].get(r, []))
            parts = []
            for _, res in runs:
                if res is None:
                    parts.append("…")
                    continue
                final, best, sat, blew, rb = res
                tally[r][0] += 1
                tally[r][1] += blew
                text = f"{final:.1f}{' ✗' if blew else ''}"
                if r == "abg-rollback":
                    text += f" ({rb})"
                parts.append(text)
            out.append(", ".join(parts) or "–")
        print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | " + " | ".join(out) + " |")
    print()
    for r in ROWS:
        print(f"{r}: {tally[r][1]} of {tally[r][0]} finished runs blew up")


if __name__ == "__main__":
    main(sys.argv[1])
