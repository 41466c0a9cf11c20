#!/usr/bin/env python3
"""PyTorch reference for `loramix bench`: the reference ViT of DESIGN.md, the same rows.

    python benches/torch_vit.py [--threads 2] [--device cuda] [--batch 64] [--infer-batch 256]
                                [--json OUT]

The ViT: 28x28x1 images cut into 4x4 patches, a linear patch embedding, a class token, learned
positions, 4 pre-norm blocks of dim 64 (4 heads, separate query/key/value/output linears, MLP
256 with exact GELU), a final LayerNorm and a 10-class head on the class token: loramix's
`VitConfig::new()`. Rows (samples/s, median of 3 runs of 10 timed steps after 3 warm-up steps,
batch 64, AdamW lr 1e-3, weight decay 1e-4, cross-entropy, like loramix):
  * full fine-tuning, head only (backbone frozen), LoRA from scratch (rank 8 on query and value);
  * uniform composition N=8 (unmerged): eight frozen rank-8 modules stacked on query and value,
    head trained; learned composition N=8: per-layer softmax weights and the head trained;
  * inference b256.
Random inputs. `--json` writes the reference `loramix bench --reference` reads. `--device cuda`
runs on the GPU (the clock waits for the queued work: `reference.synchronize`); `--batch` and
`--infer-batch` match `loramix bench --batch / --infer-batch`. Run by hand.
"""
import argparse
import math

import torch
from torch import nn

from reference import report, timed

DIM, DEPTH, HEADS, MLP, PATCH, CLASSES, RANK = 64, 4, 4, 256, 4, 10, 8


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value, self.output = (nn.Linear(DIM, DIM) for _ in range(4))

    def forward(self, x):
        b, t, _ = x.shape
        split = lambda y: y.view(b, t, HEADS, DIM // HEADS).transpose(1, 2)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(DIM // HEADS)
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, DIM)
        return self.output(out)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = Attention()
        self.mlp = nn.Sequential(nn.Linear(DIM, MLP), nn.GELU(), nn.Linear(MLP, DIM))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Vit(nn.Module):
    def __init__(self):
        super().__init__()
        patches = (28 // PATCH) ** 2
        self.embed = nn.Linear(PATCH * PATCH, DIM)
        self.cls = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, patches + 1, DIM) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(DEPTH))
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, images):
        b = images.shape[0]
        p = images.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH).reshape(b, -1, PATCH * PATCH)
        x = torch.cat([self.cls.expand(b, 1, DIM), self.embed(p)], 1) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


class Stacked(nn.Module):
    """A frozen linear plus `modules` rank-8 updates as one rank-8N path, `x A diag(w) B`; the
    weights come from `weights()` (uniform constants, or a learned softmax row)."""

    def __init__(self, base, modules, weights):
        super().__init__()
        self.base, self.weights = base, weights
        self.a = nn.Parameter(torch.randn(DIM, RANK * modules) * 0.1, requires_grad=False)
        self.b = nn.Parameter(torch.randn(RANK * modules, DIM) * 0.1, requires_grad=False)

    def forward(self, x):
        columns = self.weights().repeat_interleave(RANK)
        return self.base(x) + ((x @ self.a) * columns) @ self.b


class Lora(nn.Module):
    def __init__(self, base):
        super().__init__()
        self.base = base
        self.a = nn.Parameter(torch.randn(DIM, RANK) * 0.1)
        self.b = nn.Parameter(torch.zeros(RANK, DIM))

    def forward(self, x):
        return self.base(x) + (x @ self.a) @ self.b


def with_adapters(model, wrap):
    for i, block in enumerate(model.blocks):
        block.attn.query = wrap(block.attn.query, 2 * i)
        block.attn.value = wrap(block.attn.value, 2 * i + 1)
    return model


def trainable(model, keep):
    """Freezes every parameter whose name `keep` rejects; returns the others."""
    for name, p in model.named_parameters():
        p.requires_grad = keep(name)
    return [p for p in model.parameters() if p.requires_grad]


def head(name):
    return name.startswith("head.")


def lora_or_head(name):
    return head(name) or name.endswith((".a", ".b"))


def train_rates(model, params, batch, device):
    model = model.to(device)
    images = torch.rand(batch, 1, 28, 28, device=device)
    targets = torch.arange(batch, device=device) % CLASSES
    optim = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)

    def step():
        optim.zero_grad()
        nn.functional.cross_entropy(model(images), targets).backward()
        optim.step()

    return timed(step, batch)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--infer-batch", type=int, default=256)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device, batch = torch.device(args.device), args.batch
    train = lambda model, params: train_rates(model, params, batch, device)

    rows = {}
    model = Vit()
    rows["full fine-tuning"] = train(model, trainable(model, lambda _: True))
    model = Vit()
    rows["head only"] = train(model, trainable(model, head))
    model = with_adapters(Vit(), lambda base, _: Lora(base))
    rows["LoRA from scratch"] = train(model, trainable(model, lora_or_head))
    uniform = torch.full((8,), 1 / 8, device=device)
    model = with_adapters(Vit(), lambda base, _: Stacked(base, 8, lambda: uniform))
    rows["uniform composition N=8 (unmerged)"] = train(model, trainable(model, head))
    logits = nn.Parameter(torch.zeros(2 * DEPTH, 8, device=device))
    model = with_adapters(Vit(), lambda base, i: Stacked(base, 8, lambda: logits[i].softmax(0)))
    params = trainable(model, head) + [logits]
    rows["learned composition N=8"] = train(model, params)
    model = Vit().eval().to(device)
    images = torch.rand(args.infer_batch, 1, 28, 28, device=device)
    with torch.no_grad():
        rows[f"inference b{args.infer_batch}"] = timed(lambda: model(images), args.infer_batch)

    report(rows, args.threads, args.json, device.type)


if __name__ == "__main__":
    main()
