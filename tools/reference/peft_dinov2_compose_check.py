#!/usr/bin/env python3
"""Check a `loramix compose` output on a DINOv2 base with Hugging Face PEFT: it loads into
the current transformers' Dinov2Model with no missing or unexpected key, and with loramix's
head it scores what loramix reported.

Usage:
    python tools/reference/peft_dinov2_compose_check.py BASE_DIR COMPOSED_DIR VAL_DIR IMAGE_SIZE [PREDICTIONS_CSV]

BASE_DIR is the Dinov2Model checkpoint the composition was made on, COMPOSED_DIR what
`loramix compose --out` wrote, VAL_DIR the image folder (<class>/ sub-folders) the reported
scores were computed on, IMAGE_SIZE compose's --image-size.

Each image is read as loramix reads it (RGB in [0, 1], a bilinear resize with pixel centres
aligned and edges clamped, ImageNet normalisation), the adapted model's class token state
(`pooler_output`) goes through head.safetensors, and the accuracy is compared with
compose.json's score of the written adapter. With PREDICTIONS_CSV (what `loramix predict` wrote
for VAL_DIR), each image's predicted class and confidence are compared with PEFT's too.
Exit status 1 if a key is missing or unexpected, the accuracies differ, or a prediction
differs (confidence by more than 1e-4).
"""
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_load_check import load_checked, log  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402
from transformers import Dinov2Model  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def resize_bilinear(plane, size):
    """loramix's resize: source = (target + 0.5) * scale - 0.5, edges clamped."""
    h, w = plane.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, None)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, None)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x1] * fx
    bottom = plane[y1][:, x0] * (1 - fx) + plane[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def pixels(path, size):
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    chw = np.stack([resize_bilinear(rgb[:, :, c], size) for c in range(3)])
    return torch.from_numpy((chw - MEAN[:, None, None]) / STD[:, None, None]).float()


def main():
    if len(sys.argv) not in (5, 6):
        sys.exit(__doc__)
    loramix_rows = {}
    if len(sys.argv) == 6:
        with open(sys.argv[5], newline="", encoding="utf-8") as f:
            # Keyed by <class>/<file>, the end of loramix's item path.
            loramix_rows = {"/".join(r["item"].split("/")[-2:]): r for r in csv.DictReader(f)}
    base_dir, composed, val_dir, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    problems = []
    base = Dinov2Model.from_pretrained(base_dir, local_files_only=True).eval()
    model = load_checked(base_dir, composed, problems, base=base)
    modules = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
    log(f"{len(modules)} LoRA modules, e.g. {modules[:2]}")
    with safe_open(os.path.join(composed, "head.safetensors"), "pt") as f:
        classes = json.loads(f.metadata()["classes"])
        weight, bias = f.get_tensor("weight"), f.get_tensor("bias")
    correct = total = 0
    worst = 0.0
    with torch.no_grad():
        for label in sorted(os.listdir(val_dir)):
            for name in sorted(os.listdir(os.path.join(val_dir, label))):
                x = pixels(os.path.join(val_dir, label, name), size)[None]
                feature = model(pixel_values=x).pooler_output[0]
                probabilities = torch.softmax(weight @ feature + bias, 0)
                best = int(probabilities.argmax())
                predicted = classes[best]
                correct += predicted == label
                total += 1
                theirs = loramix_rows.get(f"{label}/{name}")
                if theirs is not None:
                    gap = abs(float(theirs["confidence"]) - float(probabilities[best]))
                    worst = max(worst, gap)
                    if theirs["prediction"] != predicted or gap > 1e-4:
                        problems.append(f"{name}: loramix {theirs['prediction']} "
                                        f"{theirs['confidence']}, PEFT {predicted} "
                                        f"{float(probabilities[best])}")
    accuracy = correct / total
    with open(os.path.join(composed, "compose.json"), encoding="utf-8") as f:
        report = json.load(f)
    written = [s for s in report["scores"] if s["candidate"].startswith("written adapter")][0]
    log(f"PEFT + head.safetensors: {correct}/{total} = {100 * accuracy:.2f}% on {val_dir}")
    log(f"loramix reported for the written adapter: {100 * written['accuracy']:.2f}%")
    if loramix_rows:
        log(f"{len(loramix_rows)} loramix predictions compared; largest confidence gap {worst:.2e}")
    if abs(accuracy - written["accuracy"]) > 1e-9:
        problems.append(f"accuracy {accuracy} differs from loramix's {written['accuracy']}")
    for p in problems:
        log("PROBLEM:", p)
    print(json.dumps({"peft_accuracy": accuracy, "loramix_accuracy": written["accuracy"],
                      "modules": len(modules), "largest_confidence_gap": worst,
                      "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
