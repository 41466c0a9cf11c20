#!/usr/bin/env python3
"""Tiny random BERT and DINOv2 checkpoints, with PyTorch outputs, for tests that run on every
`cargo test` (the real checkpoints are tested only after the fetch step).

    HF_HUB_OFFLINE=1 python tools/reference/make_tiny_models.py crates/models/tests/fixtures

Writes `tiny-bert/` (config.json, model.safetensors, tokenizer.json, reference.json) and
`tiny-dinov2/` (config.json, model.safetensors, reference.json). Weights are random
(torch.manual_seed(0)), LayerNorm and LayerScale parameters included, so no parameter is at its
default. The tokenizer is a WordPiece over [PAD] [UNK] [CLS] [SEP] [MASK], a-z, 0-9 and their
`##` continuations, lower-casing and accent-stripping like BERT's, so any text tokenizes.
The references: transformers' BertModel mean-pooled embeddings (sentence-transformers pooling)
of three texts, and Dinov2Model class-token states of two images at 24 px (the 4x4 position
grid of 16 px interpolated to 6x6) and at 8 px (2x2). Nothing here is downloaded.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]


def randomise(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * (0.5 if "weight" in name or "lambda" in name else 0.1))
            if name.endswith("LayerNorm.weight") or ".norm" in name and name.endswith("weight"):
                p.add_(1.0)


def save(model, out, expected):
    """`save_pretrained` writes the checkpoint names (transformers 5 renames some modules in
    memory, e.g. DINOv2's `attention.attention.query` to `q_proj`, and back on saving)."""
    model.save_pretrained(out)
    from safetensors import safe_open
    names = safe_open(os.path.join(out, "model.safetensors"), "np").keys()
    assert expected in names, sorted(names)[:20]


def tiny_bert(out):
    os.makedirs(out, exist_ok=True)
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=None)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    tok.save(os.path.join(out, "tokenizer.json"))

    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, type_vocab_size=2,
        layer_norm_eps=1e-12, hidden_act="gelu", pad_token_id=0)
    model = transformers.BertModel(config, add_pooling_layer=False).eval()
    randomise(model)
    save(model, out, "encoder.layer.0.attention.self.query.weight")

    encodings = [tok.encode(t) for t in TEXTS]
    rows = []
    with torch.no_grad():
        for text, enc in zip(TEXTS, encodings):
            ids = torch.tensor([enc.ids])
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            rows.append({"text": text, "input_ids": enc.ids,
                         "mean_pooled": hidden.mean(1)[0].tolist()})
    ref = {"generator": "tools/reference/make_tiny_models.py",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "sentences": rows}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


def image(kind, size):
    y, x = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if kind == "gradient":
        chans = [x / (size - 1), y / (size - 1), ((x + y) % 5) / 4]
    else:
        chans = [((x // 2 + y // 2) % 2).astype(float), ((3 * x + 5 * y) % 7) / 6, ((x * y) % 3) / 2]
    return np.stack(chans).astype(np.float32)


def tiny_dinov2(out):
    os.makedirs(out, exist_ok=True)
    config = transformers.Dinov2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, patch_size=4,
        image_size=16, num_channels=3, layer_norm_eps=1e-6, layerscale_value=1.0,
        hidden_act="gelu", use_swiglu_ffn=False, qkv_bias=True)
    model = transformers.Dinov2Model(config).eval()
    randomise(model)
    save(model, out, "encoder.layer.0.attention.attention.query.weight")
    results = {}
    with torch.no_grad():
        for size in (24, 8):
            for kind in ("gradient", "pattern"):
                pixels = torch.from_numpy(image(kind, size))[None]
                hidden = model(pixel_values=pixels).last_hidden_state
                results[f"{kind}_{size}"] = {"cls": hidden[0, 0].tolist(),
                                             "tokens": hidden.shape[1]}
    ref = {"generator": "tools/reference/make_tiny_models.py",
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "images": {"gradient": "R = x/(S-1), G = y/(S-1), B = ((x+y) % 5)/4",
                      "pattern": "R = (x/2 + y/2) % 2 (integer division), G = ((3x+5y) % 7)/6, B = ((x*y) % 3)/2"},
           "note": "pixel values go in as they are (no normalisation)",
           "results": results}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    root = sys.argv[1]
    tiny_bert(os.path.join(root, "tiny-bert"))
    tiny_dinov2(os.path.join(root, "tiny-dinov2"))
