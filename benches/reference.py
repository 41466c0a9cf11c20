"""What the PyTorch reference scripts share: loramix's timing protocol and the JSON that
`loramix bench --reference` reads."""
import json
import statistics
import time

import torch


def timed(step, batch, runs=3, steps=10, warmup=3):
    """Samples/s of `runs` runs of `steps` timed calls of `step` after `warmup` untimed ones,
    as `loramix bench` measures (it reports the median)."""
    rates = []
    for _ in range(runs):
        for _ in range(warmup):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def report(rows, threads, path):
    """Prints each row's median and, if `path` is given, writes the reference JSON:
    `{"tool", "threads", "rows": [{"method", "samples_per_sec", "runs"}]}`."""
    reference = {
        "tool": f"PyTorch {torch.__version__}",
        "threads": threads,
        "rows": [
            {"method": name, "samples_per_sec": statistics.median(runs), "runs": runs}
            for name, runs in rows.items()
        ],
    }
    for row in reference["rows"]:
        print(f"{row['method']}: {row['samples_per_sec']:.1f} samples/s")
    if path:
        with open(path, "w") as f:
            json.dump(reference, f, indent=2)
