#!/usr/bin/env python3
"""Hugging Face PEFT LoRA adapter fixtures for loramix's PEFT reader.

Usage:
    HF_HUB_OFFLINE=1 python tools/reference/make_peft_fixtures.py OUT_DIR [MINILM_DIR]

OUT_DIR is normally crates/peft/tests/fixtures/. MINILM_DIR is a local
all-MiniLM-L6-v2 folder (config.json, model.safetensors, tokenizer.json), e.g.
datasets/cache/minilm-l6. Nothing is downloaded.

Writes, on top of crates/models/tests/fixtures/tiny-bert (BertModel, 2 layers,
hidden 16, 2 heads):

  tiny-bert-lora-qv/        r=4, lora_alpha=8, target_modules=["query","value"]
                            (scale alpha/r = 2.0), lora_B ~ N(0, 0.1^2), untrained
  tiny-bert-lora-patterns/  r=4, lora_alpha=8, use_rslora=True (scale alpha/sqrt(r)),
                            target_modules regex string (query, key, attention
                            output dense, FFN output dense), rank_pattern and
                            alpha_pattern overrides, lora_B ~ N(0, 0.1^2)
  tiny-bert-lora-dense/     r=4, lora_alpha=8, target_modules=["query","value","dense"]
                            on tiny-bert given a (seeded, random) pooler: "dense" also
                            catches pooler.dense, which loramix never reads (mean
                            pooling) and so leaves out with a note; lora_B ~ N(0, 0.1^2)
  tiny-bert-dora/           use_dora=True (adds lora_magnitude_vector); a format
                            loramix should refuse. Files only, no reference.json.

and, when MINILM_DIR is given:

  minilm-lora-qv/           r=8, lora_alpha=16, ["query","value"] on
                            all-MiniLM-L6-v2, trained 5 AdamW steps (lr 1e-3) on a
                            toy 3-class loss, so lora_A and lora_B are both trained.

Each adapter folder gets PEFT's own save_pretrained output (adapter_config.json +
adapter_model.safetensors; the boiler-plate model card README.md that PEFT also
writes is deleted) and, except for DoRA, reference.json:

  * texts run one at a time (batch 1, no padding, attention mask all ones,
    token_type_ids all zeros), BertModel in eval mode, float32, CPU, eager
    attention;
  * pooled = mean of last_hidden_state over the tokens (= sentence-transformers
    mean pooling with an all-ones mask), not normalized;
  * "base_pooled" is the same model without adapter, "peft_pooled" with it;
  * "modules" gives, for every LoRA-wrapped module, the r / lora_alpha / scaling
    PEFT actually used (after rank_pattern / alpha_pattern / use_rslora).
Floats are written with the shortest text that round-trips float32.
"""
import json
import math
import re
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import peft
import safetensors
import tokenizers
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from safetensors import safe_open
from transformers import BertModel

TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]
LABELS = [0, 1, 2]
SEED = 20240611
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TINY_DIR = os.path.join(REPO_ROOT, "crates", "models", "tests", "fixtures", "tiny-bert")
# Written into adapter_config.json's base_model_name_or_path instead of an
# absolute path of this machine.
TINY_NAME = "crates/models/tests/fixtures/tiny-bert"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def r32(a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True))
    return [r32(v) for v in a]


def dump_json(obj, path):
    """indent=1 JSON, but each list of numbers on one line."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    text = re.sub(r"\[\s*(-?[0-9][^\[\]{}\"]*?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    assert json.loads(text) == obj
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def versions():
    return {
        "peft": peft.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
    }


def load_tokenizer(path):
    tok = tokenizers.Tokenizer.from_file(path)
    tok.no_padding()
    tok.no_truncation()
    return tok


def load_bert(model_dir, name, pooler=None):
    # The tiny-bert checkpoint has no pooler; skip it there so that nothing is
    # randomly initialised (and the RNG stream stays the same), unless asked for.
    if pooler is None:
        with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
            pooler = any("pooler" in k for k in f.keys())
    model = BertModel.from_pretrained(
        model_dir,
        add_pooling_layer=pooler,
        attn_implementation="eager",
        dtype=torch.float32,
        local_files_only=True,
    )
    model.name_or_path = name
    model.config._name_or_path = name
    model.eval()
    return model


def encode(tok, text):
    return tok.encode(text).ids


@torch.no_grad()
def pooled(model, ids):
    input_ids = torch.tensor([ids], dtype=torch.long)
    mask = torch.ones_like(input_ids)
    tt = torch.zeros_like(input_ids)
    out = model(input_ids=input_ids, attention_mask=mask, token_type_ids=tt)
    return out.last_hidden_state[0].mean(0)


def lora_modules(pm):
    mods = {}
    prefix = "base_model.model."
    for name, m in pm.named_modules():
        if isinstance(m, LoraLayer) and "default" in m.r:
            key = name[len(prefix):] if name.startswith(prefix) else name
            mods[key] = {
                "r": int(m.r["default"]),
                "lora_alpha": float(m.lora_alpha["default"]),
                "scaling": float(m.scaling["default"]),
                "in_features": int(m.in_features),
                "out_features": int(m.out_features),
                "use_dora": bool(m.use_dora.get("default", False)),
            }
    return mods


def randomize_B(pm, std=0.1):
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if ".lora_B." in name:
                p.normal_(0.0, std)


def save_adapter(pm, out):
    # save_embedding_layers=False: no embedding layer is ever targeted here, and
    # "auto" would try to look the base model's config up on the Hub.
    pm.save_pretrained(out, save_embedding_layers=False)
    card = os.path.join(out, "README.md")
    if os.path.exists(card):
        os.remove(card)


def tensor_listing(out):
    with safe_open(os.path.join(out, "adapter_model.safetensors"), "pt") as f:
        return {k: {"shape": list(f.get_tensor(k).shape), "dtype": str(f.get_tensor(k).dtype)} for k in f.keys()}


def write_reference(out, pm, base_fresh, tok, base_name, note, extra=None):
    pm.eval()
    texts = []
    max_diff = 0.0
    for text in TEXTS:
        ids = encode(tok, text)
        b = pooled(base_fresh, ids)
        p = pooled(pm, ids)
        with pm.disable_adapter():
            b2 = pooled(pm, ids)
        assert torch.equal(b, b2), "disable_adapter output differs from a fresh base model"
        d = float((p - b).abs().max())
        max_diff = max(max_diff, d)
        texts.append({
            "text": text,
            "input_ids": ids,
            "base_pooled": r32(b.numpy()),
            "peft_pooled": r32(p.numpy()),
            "max_abs_diff_peft_vs_base": d,
        })
    assert max_diff > 1e-3, f"adapter barely changes the outputs ({max_diff})"
    ref = {
        "generator": "tools/reference/make_peft_fixtures.py",
        "versions": versions(),
        "base_model": base_name,
        "note": note,
        "pooling": "mean of last_hidden_state over all tokens; batch of 1, no padding, "
                   "attention_mask all ones, token_type_ids all zeros; eval mode, float32, CPU, eager attention",
        "modules": lora_modules(pm),
        "tensors": tensor_listing(out),
        "texts": texts,
    }
    if extra:
        ref.update(extra)
    dump_json(ref, os.path.join(out, "reference.json"))
    return ref


def check_reload(out, model_dir, name, tok, ref, pooler=None):
    """Reload the saved adapter on a fresh base and compare to reference.json exactly."""
    base = load_bert(model_dir, name, pooler)
    pm = PeftModel.from_pretrained(base, out)
    pm.eval()
    for t in ref["texts"]:
        p = r32(pooled(pm, t["input_ids"]).numpy())
        assert p == t["peft_pooled"], f"{out}: reloaded adapter differs for {t['text']!r}"


def make_tiny(out_root):
    tok = load_tokenizer(os.path.join(TINY_DIR, "tokenizer.json"))
    results = {}

    # (a) plain q/v LoRA
    torch.manual_seed(SEED)
    base = load_bert(TINY_DIR, TINY_NAME)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0, bias="none")
    pm = get_peft_model(base, cfg)
    randomize_B(pm)
    out = os.path.join(out_root, "tiny-bert-lora-qv")
    save_adapter(pm, out)
    ref = write_reference(out, pm, load_bert(TINY_DIR, TINY_NAME), tok, TINY_NAME,
                          "untrained: lora_A = PEFT default init (kaiming uniform), lora_B ~ N(0, 0.1^2); "
                          f"torch.manual_seed({SEED})")
    check_reload(out, TINY_DIR, TINY_NAME, tok, ref)
    results["tiny-bert-lora-qv"] = ref

    # (b) regex target_modules + rank_pattern + alpha_pattern + rsLoRA
    torch.manual_seed(SEED + 1)
    base = load_bert(TINY_DIR, TINY_NAME)
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,
        # a str is re.fullmatch'ed against each module name (relative to the
        # BertModel, e.g. "encoder.layer.0.attention.output.dense")
        target_modules=r".*\.(query|key|output\.dense)$",
        # keys are regexes matched as re.match(rf"(.*\.)?({key})$", module_name);
        # the first key (in dict order) that matches wins
        rank_pattern={
            "encoder.layer.1.attention.self.key": 2,
            "layer.0.output.dense": 6,  # only the FFN output of layer 0
        },
        alpha_pattern={"encoder.layer.1.attention.output.dense": 2},
        use_rslora=True,
        lora_dropout=0.0,
        bias="none",
    )
    pm = get_peft_model(base, cfg)
    randomize_B(pm)
    out = os.path.join(out_root, "tiny-bert-lora-patterns")
    save_adapter(pm, out)
    ref = write_reference(out, pm, load_bert(TINY_DIR, TINY_NAME), tok, TINY_NAME,
                          "untrained: lora_A = PEFT default init (kaiming uniform), lora_B ~ N(0, 0.1^2); "
                          f"torch.manual_seed({SEED + 1}); use_rslora => scaling = lora_alpha / sqrt(r)")
    check_reload(out, TINY_DIR, TINY_NAME, tok, ref)
    for k, m in ref["modules"].items():
        want = m["lora_alpha"] / math.sqrt(m["r"])
        assert abs(m["scaling"] - want) < 1e-12, (k, m)
    results["tiny-bert-lora-patterns"] = ref

    # (d) "dense" in target_modules also catches the pooler, which mean pooling never reads
    torch.manual_seed(SEED + 3)
    base = load_bert(TINY_DIR, TINY_NAME, pooler=True)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value", "dense"], lora_dropout=0.0,
                     bias="none")
    pm = get_peft_model(base, cfg)
    randomize_B(pm)
    out = os.path.join(out_root, "tiny-bert-lora-dense")
    save_adapter(pm, out)
    ref = write_reference(out, pm, load_bert(TINY_DIR, TINY_NAME), tok, TINY_NAME,
                          "untrained: lora_A = PEFT default init (kaiming uniform), lora_B ~ N(0, 0.1^2); "
                          f"torch.manual_seed({SEED + 3}); the base was given a random pooler, which "
                          "target_modules 'dense' catches (pooler.dense); the pooled outputs do not read it")
    check_reload(out, TINY_DIR, TINY_NAME, tok, ref, pooler=True)
    assert "pooler.dense" in ref["modules"], ref["modules"].keys()
    results["tiny-bert-lora-dense"] = ref

    # (c) DoRA: PEFT saves it, loramix should refuse it
    torch.manual_seed(SEED + 2)
    base = load_bert(TINY_DIR, TINY_NAME)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0, bias="none",
                     use_dora=True)
    pm = get_peft_model(base, cfg)
    randomize_B(pm)
    out = os.path.join(out_root, "tiny-bert-dora")
    save_adapter(pm, out)
    results["tiny-bert-dora"] = {"tensors": tensor_listing(out)}
    return results


def make_minilm(out_root, minilm_dir):
    tok = load_tokenizer(os.path.join(minilm_dir, "tokenizer.json"))
    torch.manual_seed(SEED + 3)
    base = load_bert(minilm_dir, MINILM_NAME)
    cfg = LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"], lora_dropout=0.0, bias="none")
    pm = get_peft_model(base, cfg)
    hidden = base.config.hidden_size
    head = torch.nn.Linear(hidden, len(LABELS))
    head.requires_grad_(False)
    trainable = [p for n, p in pm.named_parameters() if p.requires_grad]
    assert all(".lora_" in n for n, p in pm.named_parameters() if p.requires_grad)
    opt = torch.optim.AdamW(trainable, lr=1e-3)

    ids = [encode(tok, t) for t in TEXTS]
    n = max(len(x) for x in ids)
    input_ids = torch.tensor([x + [0] * (n - len(x)) for x in ids], dtype=torch.long)
    mask = torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids], dtype=torch.long)
    labels = torch.tensor(LABELS)
    # Dropout stays off (eval mode) so the training run is deterministic; only
    # the LoRA parameters get gradients.
    pm.eval()
    a_init = {n: p.detach().clone() for n, p in pm.named_parameters() if ".lora_A." in n}
    losses = []
    for _ in range(5):
        h = pm(input_ids=input_ids, attention_mask=mask, token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        m = mask.unsqueeze(-1).float()
        pool = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        loss = torch.nn.functional.cross_entropy(head(pool), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))

    for n, p in pm.named_parameters():
        if ".lora_A." in n:
            assert not torch.equal(p, a_init[n]), f"{n} was not trained"
        if ".lora_B." in n:
            assert bool((p != 0).all()), f"{n} still has zeros"
    out = os.path.join(out_root, "minilm-lora-qv")
    save_adapter(pm, out)
    ref = write_reference(
        out, pm, load_bert(minilm_dir, MINILM_NAME), tok, MINILM_NAME,
        f"trained 5 AdamW steps (lr 1e-3, weight_decay 0.01) on cross-entropy of a frozen random "
        f"Linear({hidden}, 3) head over the masked mean pool of the 3 texts (labels 0,1,2, one padded batch, "
        f"dropout off); torch.manual_seed({SEED + 3})",
        extra={"train_losses": losses},
    )
    check_reload(out, minilm_dir, MINILM_NAME, tok, ref)
    return {"minilm-lora-qv": ref}


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out_root = sys.argv[1]
    os.makedirs(out_root, exist_ok=True)
    torch.set_num_threads(1)  # bit-reproducible CPU reductions
    results = make_tiny(out_root)
    if len(sys.argv) == 3:
        results.update(make_minilm(out_root, sys.argv[2]))
    for name, ref in results.items():
        path = os.path.join(out_root, name, "adapter_model.safetensors")
        print(f"== {name}: {os.path.getsize(path)} bytes")
        for k, v in ref["tensors"].items():
            print(f"   {k} {v['shape']} {v['dtype']}")
        for k, m in ref.get("modules", {}).items():
            print(f"   module {k}: r={m['r']} alpha={m['lora_alpha']} scaling={m['scaling']:.6g}")
        for t in ref.get("texts", []):
            print(f"   {t['text']!r}: max |peft - base| = {t['max_abs_diff_peft_vs_base']:.4g}")
        if "train_losses" in ref:
            print(f"   train losses {ref['train_losses']}")


if __name__ == "__main__":
    main()
