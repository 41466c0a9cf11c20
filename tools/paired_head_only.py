#!/usr/bin/env python3
"""Paired comparison of two backbones' head-only (linear probe) accuracy.

    python3 tools/paired_head_only.py BASELINE/results.csv CANDIDATE/results.csv [METHOD]

Pairs the METHOD rows (default `head-only`) of two `loramix report` results.csv files on
(task, k, seed) - the same k-shot sets, since sampling depends only on the suite, task, k and
seed - and prints, per task and k, both means and the mean paired difference with its 95%
Student-t half-width over seeds, then the same pooled over tasks per k. Standard library only.
"""
import csv
import math
import statistics
import sys
from collections import defaultdict

# Two-sided 95% Student-t quantiles by degrees of freedom (exact to 3 decimals).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
       17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
       25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def rows(path, method):
    with open(path, newline="") as f:
        return {(r["task"], r["k"], r["seed"]): float(r["accuracy"])
                for r in csv.DictReader(f) if r["method"] == method}


def interval(diffs):
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, float("nan")
    t = T95.get(len(diffs) - 1, 1.96)
    return mean, t * statistics.stdev(diffs) / math.sqrt(len(diffs))


def k_order(k):
    return (1, 0) if k == "full" else (0, int(k))


def main():
    base_path, cand_path = sys.argv[1], sys.argv[2]
    method = sys.argv[3] if len(sys.argv) > 3 else "head-only"
    base, cand = rows(base_path, method), rows(cand_path, method)
    shared = sorted(set(base) & set(cand))
    if not shared:
        sys.exit("no (task, k, seed) in common")
    by_task = defaultdict(list)
    by_k = defaultdict(list)
    for key in shared:
        task, k, _ = key
        by_task[(task, k)].append(key)
        by_k[k].append(key)
    print(f"{method}: {base_path} (A) vs {cand_path} (B), accuracy in %, B - A paired on seeds")
    print("| task | k | A | B | B - A |\n|---|---|---:|---:|---:|")
    for task, k in sorted(by_task, key=lambda tk: (tk[0], k_order(tk[1]))):
        keys = by_task[(task, k)]
        a = [100 * base[x] for x in keys]
        b = [100 * cand[x] for x in keys]
        mean, half = interval([y - x for x, y in zip(a, b)])
        print(f"| {task} | {k} | {statistics.fmean(a):.1f} | {statistics.fmean(b):.1f} "
              f"| {mean:+.1f} ± {half:.1f} |")
    print("\nPooled over tasks (each (task, seed) one pair):")
    print("| k | A | B | B - A | pairs |\n|---|---:|---:|---:|---:|")
    for k in sorted(by_k, key=k_order):
        keys = by_k[k]
        a = [100 * base[x] for x in keys]
        b = [100 * cand[x] for x in keys]
        mean, half = interval([y - x for x, y in zip(a, b)])
        print(f"| {k} | {statistics.fmean(a):.1f} | {statistics.fmean(b):.1f} "
              f"| {mean:+.1f} ± {half:.1f} | {len(keys)} |")


if __name__ == "__main__":
    main()
