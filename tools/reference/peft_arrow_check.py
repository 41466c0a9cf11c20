#!/usr/bin/env python3
"""Check a `loramix compose --method arrow` output with Hugging Face PEFT: PEFT's own
`create_arrow_model` loads the written folders with the written settings, and with loramix's
head it predicts what `loramix predict` predicted, with the same confidences.

Usage:
    python tools/reference/peft_arrow_check.py BASE_DIR COMPOSED_DIR DATA_CSV PREDICTIONS_CSV [MAX_LEN]

BASE_DIR is the BertModel checkpoint (with tokenizer.json), COMPOSED_DIR what compose wrote
(arrow_config.json, experts/, general/, head.safetensors, compose.json), DATA_CSV the CSV
(`text`, `label`) and PREDICTIONS_CSV what `loramix predict --adapter COMPOSED_DIR --data
DATA_CSV --label-column label` wrote for it. MAX_LEN is the token limit used (default 128).
Each text is embedded alone (mean-pooled last hidden state). Exit status 1 if a prediction
differs or a confidence differs by more than 1e-4.
"""
import csv
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_load_check import log, pooled, read_head, text_tokenizer  # noqa: E402

import torch  # noqa: E402
from peft import ArrowConfig, create_arrow_model  # noqa: E402
from transformers import BertModel  # noqa: E402


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    base_dir, composed, data, predictions = sys.argv[1:5]
    max_len = int(sys.argv[5]) if len(sys.argv) == 6 else 128
    torch.set_num_threads(1)
    with open(os.path.join(composed, "arrow_config.json"), encoding="utf-8") as f:
        c = json.load(f)
    base = BertModel.from_pretrained(base_dir, add_pooling_layer=False, attn_implementation="eager",
                                     dtype=torch.float32, local_files_only=True).eval()
    config = ArrowConfig(top_k=c["top_k"], router_temperature=c["router_temperature"],
                         use_gks=c["use_gks"], rng_seed=c["rng_seed"])
    path = lambda p: os.path.join(composed, p)  # noqa: E731
    model = create_arrow_model(base, [path(p) for p in c["task_adapters"]], config,
                               general_adapter_paths=[path(p) for p in c["general_adapters"]] or None).eval()
    classes, weight, bias = read_head(composed)
    tok = text_tokenizer(base_dir, max_len)
    with open(data, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(predictions, newline="", encoding="utf-8") as f:
        theirs = list(csv.DictReader(f))
    problems, worst, correct = [], 0.0, 0
    with torch.no_grad():
        for row, loramix in zip(rows, theirs, strict=True):
            p = torch.softmax(weight @ pooled(model, tok.encode(row["text"]).ids) + bias, 0)
            best = int(p.argmax())
            correct += classes[best] == row["label"].strip()
            if classes[best] != loramix["prediction"]:
                problems.append(f"row {loramix['item']}: PEFT predicts {classes[best]}, loramix {loramix['prediction']}")
            worst = max(worst, abs(float(p[best]) - float(loramix["confidence"])))
    if worst > 1e-4:
        problems.append(f"confidences differ by up to {worst:.2e}")
    log(f"{len(c['task_adapters'])} routed adapters, top_k {c['top_k']}, GenKnowSub {c['use_gks']}")
    log(f"PEFT create_arrow_model + head.safetensors: {correct}/{len(rows)} correct; "
        f"largest confidence difference from loramix predict {worst:.2e}")
    for p in problems:
        log("PROBLEM:", p)
    print(json.dumps({"peft_correct": correct, "rows": len(rows), "max_confidence_difference": worst,
                      "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
