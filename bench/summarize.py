#!/usr/bin/env python3
"""Medians and ratios from a bench/compare.sh log (ltmlp and PyTorch rows, interleaved)."""
import re
import statistics
import sys
from collections import defaultdict

rows = defaultdict(list)  # (tool, threads, net, batch) -> [(ex/s, GFLOP/s, %peak, mm %peak)]
peaks = defaultdict(list)  # (tool, threads) -> [GFLOP/s]
loads = []
tool = threads = None
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"## round \d+ threads (\d+) (\w+) .*load average: ([\d.]+)", line)
    if m:
        threads, tool = int(m[1]), m[2]
        loads.append(float(m[3]))
        continue
    m = re.match(r"peak: ([\d.]+) GFLOP/s", line)
    if m:
        peaks[(tool, threads)].append(float(m[1]))
        continue
    f = line.split()
    if len(f) >= 4 and f[1].isdigit() and not f[0].startswith("#"):
        pct = lambda i: float(f[i].rstrip("%")) if len(f) > i else float("nan")
        rows[(tool, threads, f[0], int(f[1]))].append((float(f[2]), float(f[3]), pct(4), pct(6)))
        if len(f) >= 10:  # ltmlp measures the peak in every round and prints it last in each row
            peaks[(tool, threads)].append(float(f[9]))

med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"load average (1 min) during the runs: {min(loads):.2f}–{max(loads):.2f}")
for t in sorted({k[1] for k in peaks}):
    print(
        f"peak {t} thread(s): ltmlp {med(peaks[('ltmlp', t)]):.1f} GFLOP/s, "
        f"pytorch {med(peaks[('pytorch', t)]):.1f} GFLOP/s"
    )
print(
    "| network | batch | threads | ltmlp ex/s | PyTorch ex/s | ratio | ltmlp GFLOP/s "
    "| ltmlp % of peak | ltmlp products % of peak | PyTorch GFLOP/s | PyTorch % of peak | runs |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
keys = sorted({(k[2], k[3], k[1]) for k in rows if k[0] == "ltmlp"}, key=lambda k: (k[1], k[0], k[2]))
for net, batch, t in keys:
    a = rows[("ltmlp", t, net, batch)]
    b = rows[("pytorch", t, net, batch)]
    ra, rb = med([x[0] for x in a]), med([x[0] for x in b])
    ga, gb = med([x[1] for x in a]), med([x[1] for x in b])
    pa, ma = med([x[2] for x in a]), med([x[3] for x in a])
    pb = med([x[2] for x in b])
    print(
        f"| {net} | {batch} | {t} | {ra:,.0f} | {rb:,.0f} | {ra / rb:.2f}× | {ga:.1f} "
        f"| {pa:.0f}% | {ma:.0f}% | {gb:.1f} | {pb:.0f}% | {len(a)} |"
    )
