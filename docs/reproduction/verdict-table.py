#!/usr/bin/env python3
"""The tables of docs/reproduction.md §0 from the full-length run folders.

usage: docs/reproduction/verdict-table.py RUNS_DIR [EPOCHS]
  RUNS_DIR holds one folder per run (e.g. runs/v800/abg-seed9291), as written by
  docs/reproduction/run-verdicts.sh; EPOCHS are the epochs of the per-epoch table
  (default 1,5,10,20,50,100,150). Prints Markdown: per run, per variant over seeds, the
  training loss at epochs 1, 5, 10 and 20, and the per-epoch unit statistics. Only the
  standard library is used.
"""
import json
import math
import os
import statistics
import sys


def runs(root):
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "metrics.jsonl")
        if os.path.exists(path):
            with open(path) as f:
                yield name, [json.loads(line) for line in f if line.endswith("\n")]


def first(records, below):
    for m in records:
        if m["test_error"] is not None and m["test_error"] <= below:
            return m["epoch"], m["elapsed_seconds"]
    return None, None


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def reached(epochs):
    """Epochs to a target over seeds; runs that never reached it are counted, not averaged."""
    hit = [e for e in epochs if e is not None]
    if not hit:
        return "never"
    text = " / ".join(str(e) for e in hit)
    return text if len(hit) == len(epochs) else f"{text} ({len(epochs) - len(hit)} of {len(epochs)} not yet / never)"


def loss_spread(values):
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def main():
    root = sys.argv[1]
    epochs = [int(e) for e in (sys.argv[2] if len(sys.argv) > 2 else "1,5,10,20,50,100,150").split(",")]
    by_variant = {}
    print("| run | epochs | final test % | best test % (epoch) | ≤ 2.0 %: epoch, s | ≤ 1.5 %: epoch, s | re-estimations | largest Δout |")
    print("|---|---|---|---|---|---|---|---|")
    for name, records in runs(root):
        variant = name.split("-seed")[0]
        best = min(records, key=lambda m: m["test_error"])
        e2, s2 = first(records, 2.0)
        e15, s15 = first(records, 1.5)
        fmt = lambda e, s: "–" if e is None else f"{e}, {s:.0f}"
        changes = [t["max_output_change"] for m in records for t in m["transform_events"]]
        measured = [c for c in changes if c is not None]
        largest = f"{max(measured):.1e}" if measured else "–"
        print(f"| {name} | {records[-1]['epoch']} | {records[-1]['test_error']:.2f} | "
              f"{best['test_error']:.2f} ({best['epoch']}) | {fmt(e2, s2)} | {fmt(e15, s15)} | "
              f"{len(changes)} | {largest} |")
        by_variant.setdefault(variant, []).append(records)
    print()
    print("Per variant over seeds: errors as mean (min–max), epochs to a target per seed (runs still going count as not yet):")
    print()
    print("| variant | runs | final test % | best test % | epochs to ≤ 2.0 % | epochs to ≤ 1.5 % |")
    print("|---|---|---|---|---|---|")
    for variant, all_records in sorted(by_variant.items()):
        print(f"| {variant} | {len(all_records)} | {spread([r[-1]['test_error'] for r in all_records])} | "
              f"{spread([min(m['test_error'] for m in r) for r in all_records])} | "
              f"{reached([first(r, 2.0)[0] for r in all_records])} | "
              f"{reached([first(r, 1.5)[0] for r in all_records])} |")
    print()
    print("Training loss, mean (min–max) over seeds:")
    print()
    loss_epochs = [1, 5, 10, 20]
    print("| variant | " + " | ".join(f"epoch {e}" for e in loss_epochs) + " |")
    print("|---|" + "---|" * len(loss_epochs))
    for variant, all_records in sorted(by_variant.items()):
        cells = []
        for e in loss_epochs:
            values = [m["train_loss"] for r in all_records for m in r if m["epoch"] == e]
            cells.append(loss_spread(values))
        print(f"| {variant} | " + " | ".join(cells) + " |")
    print()
    print("Per epoch (first seed of each variant): test error %, and per hidden layer the collapsed "
          "fraction, the fraction of units at γ's cap, the mean pre-activation std and the mean "
          "output std (√ of the mean output variance):")
    print()
    print("| variant | epoch | test % | collapsed | at γ cap | std x | std out |")
    print("|---|---|---|---|---|---|---|")
    for variant, all_records in sorted(by_variant.items()):
        records = all_records[0]
        for e in epochs:
            m = next((m for m in records if m["epoch"] == e), None)
            if m is None:
                continue
            layers = m["layers"]
            join = lambda f: " / ".join(f(l) for l in layers)
            collapsed = join(lambda l: "%.0f%%" % (100 * l["collapsed_fraction"]))
            capped = join(lambda l: "%.0f%%" % (100 * l.get("gamma_capped_fraction", 0.0)))
            std_x = join(lambda l: "%.2f" % l["std_pre"])
            std_out = join(lambda l: "%.2f" % math.sqrt(max(l["var_out"], 0.0)))
            print(f"| {variant} | {e} | {m['test_error']:.2f} | {collapsed} | {capped} | "
                  f"{std_x} | {std_out} |")


if __name__ == "__main__":
    main()
