#!/usr/bin/env python3
"""The table of docs/baselines.md's full-MNIST comparison, from one or more sweep folders.

Each variant × optimizer is taken at its best rate over every folder given, chosen on the mean
over seeds of the best validation error (as `ltmlp report` chooses; test figures never choose).

usage: docs/baselines/full-table.py TARGET_ERROR DIR [DIR ...]
"""
import glob
import json
import os
import statistics
import sys
import tomllib
from collections import defaultdict

target = float(sys.argv[1])
cells = defaultdict(list)  # (variant, optimizer, rate) -> [run]
for folder in sys.argv[2:]:
    for run in sorted(glob.glob(os.path.join(folder, "*-seed*"))):
        try:
            summary = json.load(open(os.path.join(run, "summary.json")))
            config = tomllib.load(open(os.path.join(run, "config.toml"), "rb"))
            rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
        except (OSError, ValueError):
            continue
        train = config["train"]
        key = (config["variant"], train.get("optimizer", "sgd"), train["learning_rate"])
        cells[key].append((summary, rows))


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def first(rows, field, bound):
    for r in rows:
        if r.get("validation_error") is not None and r["validation_error"] <= bound:
            return r[field]
    return None


best = {}
for (variant, optimizer, rate), runs in cells.items():
    finished = [r for r in runs if r[0].get("state") == "finished"]
    if len(finished) < len(runs) or not finished:
        score = float("inf")
    else:
        score = statistics.mean(s["best_validation_error"] for s, _ in finished)
    k = (variant, optimizer)
    if k not in best or score < best[k][0]:
        best[k] = (score, rate, runs)

rates = defaultdict(list)
for (variant, optimizer, rate), runs in sorted(cells.items()):
    finished = [s for s, _ in runs if s.get("state") == "finished"]
    score = statistics.mean(s["best_validation_error"] for s in finished) if finished else None
    rates[(variant, optimizer)].append(
        f"{rate:g}: {score:.2f}" if score is not None and len(finished) == len(runs) else f"{rate:g}: failed")

order = ["none", "ab", "abg", "bn", "ln"]
print(f"| variant | optimizer | rates tried (mean best validation %) | chosen rate | best validation % | test % at best | epochs to ≤ {target:g} % | seconds to ≤ {target:g} % | examples/s (median) |")
print("|---|---|---|---|---|---|---|---|---|")
for (variant, optimizer) in sorted(best, key=lambda k: (k[1] != "sgd", order.index(k[0]) if k[0] in order else 9)):
    score, rate, runs = best[(variant, optimizer)]
    summaries = [s for s, _ in runs]
    reach_epochs = [first(rows, "epoch", target) for _, rows in runs]
    reach_seconds = [first(rows, "elapsed_seconds", target) for _, rows in runs]
    speed = statistics.median(r["examples_per_second"] for _, rows in runs for r in rows)
    reached = ", ".join("never" if e is None else str(e) for e in reach_epochs)
    seconds = ", ".join("–" if s is None else f"{s:.0f}" for s in reach_seconds)
    print(
        f"| {variant} | {optimizer} | {'; '.join(rates[(variant, optimizer)])} | {rate:g} | "
        f"{mean_std([s.get('best_validation_error') for s in summaries])} | "
        f"{mean_std([s.get('test_error_at_best') for s in summaries])} | {reached} | {seconds} | {speed:,.0f} |"
    )
