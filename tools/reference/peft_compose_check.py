#!/usr/bin/env python3
"""Check a `loramix compose` output with Hugging Face PEFT: it loads with no missing or
unexpected key, and with loramix's head it scores what loramix reported.

Usage:
    python tools/reference/peft_compose_check.py BASE_DIR COMPOSED_DIR DATA_CSV [MAX_LEN]

BASE_DIR is the BertModel checkpoint the composition was made on (with tokenizer.json),
COMPOSED_DIR what `loramix compose --out` wrote (adapter_config.json,
adapter_model.safetensors, head.safetensors, compose.json), DATA_CSV the CSV (`text`, `label`)
the reported scores were computed on (compose's validation data). MAX_LEN is the token limit
compose used (default 128, as loramix's).

It loads the adapter through PeftModel.from_pretrained (checks of peft_load_check.py), embeds
each text alone (mean-pooled last hidden state, as sentence-transformers and loramix do),
applies head.safetensors, and compares the accuracy with compose.json's score of the written
adapter. Exit status 1 if a key is missing or unexpected or the accuracies differ.
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_load_check import load_checked, log, pooled, read_head, text_tokenizer  # noqa: E402

import torch  # noqa: E402


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base_dir, composed, data = sys.argv[1:4]
    max_len = int(sys.argv[4]) if len(sys.argv) == 5 else 128
    problems = []
    model = load_checked(base_dir, composed, problems)

    classes, weight, bias = read_head(composed)
    tok = text_tokenizer(base_dir, max_len)
    with open(data, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    correct = 0
    with torch.no_grad():
        for row in rows:
            emb = pooled(model, tok.encode(row["text"]).ids)
            predicted = classes[int((weight @ emb + bias).argmax())]
            correct += predicted == row["label"].strip()
    accuracy = correct / len(rows)

    with open(os.path.join(composed, "compose.json"), encoding="utf-8") as f:
        report = json.load(f)
    written = [s for s in report["scores"] if s["candidate"].startswith("written adapter")][0]
    log(f"PEFT + head.safetensors: {correct}/{len(rows)} = {100 * accuracy:.2f}% on {data}")
    log(f"loramix reported for the written adapter: {100 * written['accuracy']:.2f}% "
        f"({report['scored_on']}, {report['validation_examples'] or report['train_examples']} examples)")
    if abs(accuracy - written["accuracy"]) > 1e-9:
        problems.append(f"accuracy {accuracy} differs from loramix's {written['accuracy']}")
    for p in problems:
        log("PROBLEM:", p)
    print(json.dumps({"peft_accuracy": accuracy, "loramix_accuracy": written["accuracy"],
                      "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
