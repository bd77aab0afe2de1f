#!/usr/bin/env python3
"""Test error and training loss against epoch for the full-length runs (docs/reproduction.md).

usage: docs/reproduction/plot-curves.py RUNS_DIR TITLE > FILE.svg
  RUNS_DIR holds one folder per run (e.g. runs/v400/abg-seed9291), as written by
  docs/reproduction/run-verdicts.sh; every folder with a metrics.jsonl is drawn, finished or
  not. Left panel: test error % (the monitored test set), log scale, with the 2.0 % and 1.5 %
  marks; right panel: training loss, log scale. One colour per variant, one dash pattern per
  seed. Only the standard library is used.
"""
import html
import json
import math
import os
import sys

COLOURS = {"none": "#555555", "ab": "#1f66c2", "abg": "#d2461e"}
NAMES = {"none": "none", "ab": "α β", "abg": "α β γ"}
DASHES = ["", "7,4", "2,3", "10,3,2,3"]

W, H = 1000, 470
PANEL_W, PANEL_H = 400, 320
LEFT = [80, 580]
TOP = 50


def load(root):
    runs = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "metrics.jsonl")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            records = [json.loads(line) for line in f if line.endswith("\n")]
        if not records:
            continue
        variant, _, seed = name.partition("-seed")
        runs.append((variant, seed, records))
    return runs


def log_ticks(lo, hi, candidates):
    return [t for t in candidates if lo <= t <= hi]


def panel(out, x0, runs, key, label, y_lo, y_hi, ticks, marks, max_epoch, seeds):
    ly = lambda v: TOP + PANEL_H * (math.log(y_hi) - math.log(v)) / (math.log(y_hi) - math.log(y_lo))
    lx = lambda e: x0 + PANEL_W * (e - 1) / max(max_epoch - 1, 1)
    out.append(f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#999"/>')
    for t in ticks:
        y = ly(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#eee"/>')
        text = f"{t:g}"
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">{text}</text>')
    for t, name in marks:
        y = ly(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + PANEL_W}" y2="{y:.1f}" stroke="#999" '
                   f'stroke-dasharray="3,3"/>')
        out.append(f'<text x="{x0 + PANEL_W - 4}" y="{y - 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#777">{name}</text>')
    step = 25 if max_epoch > 60 else 5
    for e in [1] + list(range(step, max_epoch + 1, step)):
        x = lx(e)
        out.append(f'<line x1="{x:.1f}" y1="{TOP + PANEL_H}" x2="{x:.1f}" y2="{TOP + PANEL_H + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + PANEL_H + 18}" text-anchor="middle" font-size="12">{e}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 36}" text-anchor="middle" '
               f'font-size="13">epoch</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 10}" text-anchor="middle" font-size="14">'
               f'{html.escape(label)}</text>')
    out.append(f'<clipPath id="clip{x0}"><rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}"/></clipPath>')
    for variant, seed, records in runs:
        points = [(m["epoch"], m.get(key)) for m in records]
        points = [(e, v) for e, v in points if isinstance(v, (int, float)) and v > 0 and math.isfinite(v)]
        if not points:
            continue
        path = " ".join(f"{'M' if i == 0 else 'L'}{lx(e):.1f},{ly(min(max(v, y_lo), y_hi)):.1f}"
                        for i, (e, v) in enumerate(points))
        dash = DASHES[seeds.index(seed) % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{path}" fill="none" stroke="{COLOURS.get(variant, "#000")}" '
                   f'stroke-width="1.6"{dash_attr} clip-path="url(#clip{x0})"/>')


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    root, title = sys.argv[1], sys.argv[2]
    runs = load(root)
    if not runs:
        sys.exit(f"no metrics.jsonl under {root}")
    seeds = sorted({seed for _, seed, _ in runs})
    max_epoch = max(150, max(r[-1]["epoch"] for _, _, r in runs))
    errors = [m["test_error"] for _, _, r in runs for m in r if m.get("test_error")]
    losses = [m["train_loss"] for _, _, r in runs for m in r if m.get("train_loss")]
    e_lo = min(0.8, min(errors) * 0.95)
    e_hi = max(12.0, min(max(errors), 100.0) * 1.05)
    l_lo = 10 ** math.floor(math.log10(max(min(losses), 1e-6)))
    l_hi = 10 ** math.ceil(math.log10(max(losses)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15">{html.escape(title)}</text>']
    panel(out, LEFT[0], runs, "test_error", "test error % (monitored test set, log scale)",
          e_lo, e_hi, log_ticks(e_lo, e_hi, [0.8, 1, 1.2, 1.5, 2, 3, 5, 7, 10, 20, 50, 100]),
          [(2.0, "2.0 %"), (1.5, "1.5 %")], max_epoch, seeds)
    loss_ticks = [10 ** k for k in range(-6, 2)]
    panel(out, LEFT[1], runs, "train_loss", "training loss (log scale)", l_lo, l_hi,
          log_ticks(l_lo, l_hi, loss_ticks), [], max_epoch, seeds)
    # legend: variants (colour) and seeds (dash), with the last epoch each run reached
    for i, (variant, seed, records) in enumerate(runs):
        x = LEFT[0] + 300 * (i % 3)
        y = TOP + PANEL_H + 62 + 20 * (i // 3)
        dash = DASHES[seeds.index(seed) % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" stroke="{COLOURS.get(variant, "#000")}" '
                   f'stroke-width="2"{dash_attr}/>')
        last = records[-1]["epoch"]
        text = f"{NAMES.get(variant, variant)}, seed {seed}" + ("" if last >= 150 else f" (to epoch {last})")
        out.append(f'<text x="{x + 33}" y="{y + 4}" font-size="12">{html.escape(text)}</text>')
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
