#!/usr/bin/env python3
"""PyTorch reference for `loramix bench --minilm`: all-MiniLM-L6-v2 at batch 32 x 64 tokens.

    python benches/torch_minilm.py datasets/cache/minilm-l6 [--threads 2] [--json OUT]

Rows (samples/s, median of 3 runs of 10 timed steps after 3 warm-up steps, like loramix):
  * inference: mean-pooled features + a linear head, no gradients;
  * LoRA train step: rank 8, alpha 16 on query and value, a fresh 3-class head, AdamW,
    cross-entropy; the base is frozen;
  * full fine-tuning: every parameter and the head trained.
`--json` writes the reference `loramix bench --minilm DIR --reference` reads.
Inputs are random token ids (no padding) of the same shape in both tools. Needs torch and
transformers; run by hand, never in CI. Everything is offline (the model is a local folder).
"""
import argparse
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import BertModel

from reference import report, timed

BATCH, TOKENS, CLASSES, RANK, ALPHA = 32, 64, 3, 8, 16.0


class LoraLinear(torch.nn.Module):
    """`base(x) + (alpha / r) * x A^T B^T`, A Kaiming-uniform, B = 0 (PEFT's initialisation)."""

    def __init__(self, base):
        super().__init__()
        self.base = base
        self.a = torch.nn.Parameter(torch.empty(RANK, base.in_features))
        self.b = torch.nn.Parameter(torch.zeros(base.out_features, RANK))
        torch.nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))
        self.scale = ALPHA / RANK

    def forward(self, x):
        return self.base(x) + (x @ self.a.t() @ self.b.t()) * self.scale


def with_lora(model):
    for layer in model.encoder.layer:
        attn = layer.attention.self
        attn.query = LoraLinear(attn.query)
        attn.value = LoraLinear(attn.value)
    for name, p in model.named_parameters():
        p.requires_grad = name.endswith((".a", ".b"))
    return model


def pooled(model, ids):
    states = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    return states.mean(1)


def train_rates(model, ids, targets):
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    head = torch.nn.Linear(model.config.hidden_size, CLASSES)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optim = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)

    def train_step():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(pooled(model, ids)), targets)
        loss.backward()
        optim.step()

    return timed(train_step, BATCH)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = torch.randint(1000, 30000, (BATCH, TOKENS))
    targets = torch.arange(BATCH) % CLASSES

    load = lambda: BertModel.from_pretrained(args.model_dir, add_pooling_layer=False,
                                             attn_implementation="eager")
    model = load().eval()
    head = torch.nn.Linear(model.config.hidden_size, CLASSES)
    with torch.no_grad():
        infer = timed(lambda: head(pooled(model, ids)), BATCH)
    lora = train_rates(with_lora(load()).train(), ids, targets)
    full = train_rates(load().train(), ids, targets)

    # Row names as `loramix bench --minilm DIR` prints them.
    label = f"{os.path.basename(os.path.normpath(args.model_dir))} b{BATCH}x{TOKENS}"
    rows = {f"{label} inference": infer, f"{label} LoRA train step": lora,
            f"{label} full fine-tuning": full}
    report(rows, args.threads, args.json)


if __name__ == "__main__":
    main()
