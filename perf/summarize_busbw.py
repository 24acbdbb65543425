#!/usr/bin/env python3
"""summarize_busbw.py OUT TITLE ALGO... - busbw and time, min and median over
repetitions, per algorithm and size, from the nccl-tests rows of rank 0's
outputs OUT/<algo>.<rep>.txt (out-of-place columns).  With several
algorithms it also gives, per size, each algorithm's median time over the
best median time, so the automatic choice can be set against the best
forced one."""
import glob
import statistics
import sys
import time

out, title, algos = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = {}
for a in algos:
    for f in sorted(glob.glob(f"{out}/{a}.*.txt")):
        for line in open(f):
            w = line.split()
            if w and w[0].startswith("["):  # hring-run's rank prefix
                w = w[1:]
            if len(w) > 8 and w[0].isdigit():
                try:  # rows of other tools (hring-choice's "median / min") are not summed up
                    v = (float(w[5]), float(w[7]))
                except ValueError:
                    continue
                rows.setdefault((int(w[0]), a), []).append(v)
print(f"# {title}, {time.strftime('%Y-%m-%d')}\n")
print("| size (B) | algorithm | runs | time min (us) | time median (us) | busbw min (GB/s) "
      "| busbw median (GB/s) | median / best median |")
print("|---|---|---|---|---|---|---|---|")
best = {}
for (size, a), v in rows.items():
    m = statistics.median(t for t, _ in v)
    best[size] = min(best.get(size, m), m)
for (size, a), v in sorted(rows.items()):
    t = [x for x, _ in v]
    b = [y for _, y in v]
    print(f"| {size} | {a} | {len(v)} | {min(t):.1f} | {statistics.median(t):.1f} | "
          f"{min(b):.4f} | {statistics.median(b):.4f} | {statistics.median(t) / best[size]:.2f} |")
