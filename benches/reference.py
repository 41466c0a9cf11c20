"""What the PyTorch reference scripts share: loramix's timing protocol and the JSON that
`loramix bench --reference` reads."""
import json
import statistics
import time

import torch


def synchronize():
    """Waits for queued GPU work, so that a timer read after it counts that work (a no-op on
    the CPU, where every call has finished when it returns)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timed(step, batch, runs=3, steps=10, warmup=3):
    """Samples/s of `runs` runs of `steps` timed calls of `step` after `warmup` untimed ones,
    as `loramix bench` measures (it reports the median). On a GPU the clock stops when the
    queued work has finished."""
    rates = []
    for _ in range(runs):
        for _ in range(warmup):
            step()
        synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize()
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def report(rows, threads, path, device="cpu"):
    """Prints each row's median and, if `path` is given, writes the reference JSON:
    `{"tool", "threads", "device", "rows": [{"method", "samples_per_sec", "runs"}]}`."""
    reference = {
        "tool": f"PyTorch {torch.__version__}",
        "threads": threads,
        "device": str(device),
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
