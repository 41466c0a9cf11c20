#!/usr/bin/env python3
"""Check that Hugging Face PEFT loads a LoRA adapter completely, and print its outputs.

Usage:
    HF_HUB_OFFLINE=1 python tools/reference/peft_load_check.py BASE_DIR ADAPTER_DIR [TOKENIZER_JSON]

BASE_DIR holds a BertModel checkpoint (config.json, model.safetensors);
ADAPTER_DIR a PEFT adapter (adapter_config.json, adapter_model.safetensors),
for instance one written by loramix. TOKENIZER_JSON defaults to
BASE_DIR/tokenizer.json (padding and truncation are switched off).

What it checks (exit status 1 if any check fails):
  1. PeftModel.from_pretrained(base, ADAPTER_DIR) with every Python warning
     recorded: PEFT warns ("Found missing adapter keys ...") when the model
     expects adapter tensors the file lacks. Every warning is printed.
  2. PEFT does NOT report tensors of the file that match no module (it loads
     with strict=False and drops them silently), so the file is loaded a second
     time through set_peft_model_state_dict, whose load result lists the
     unexpected keys, and
  3. get_peft_model_state_dict(model) -- what PEFT would save from the loaded
     model -- is compared with the file: same key set, same shapes, and every
     tensor bit-identical (so every tensor in the file really was loaded, and
     none was left at its initial value). Keys that still carry the adapter
     name (".lora_A.default.weight") load in PEFT and only give a note.
  4. Prints, as JSON on stdout, the mean-pooled last_hidden_state (batch of 1,
     no padding, attention mask all ones, token_type_ids zeros, eval mode,
     float32, eager attention) of the three texts used by
     make_peft_fixtures.py, for the base model and with the adapter, plus the
     LoRA modules PEFT built (r, lora_alpha, scaling). If ADAPTER_DIR has a
     reference.json (the fixtures do), the outputs are compared with it.
Human-readable diagnostics go to stderr.
"""
import json
import os
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import peft
import tokenizers
import torch
import transformers
from peft import PeftModel
from peft.mapping import PEFT_TYPE_TO_PREFIX_MAPPING
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import BertModel

TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]


def log(*a):
    print(*a, file=sys.stderr)


def r32(a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a, unique=True))
    return [r32(v) for v in a]


def load_base(base_dir):
    with safe_open(os.path.join(base_dir, "model.safetensors"), "pt") as f:
        has_pooler = any("pooler" in k for k in f.keys())
    model = BertModel.from_pretrained(
        base_dir,
        add_pooling_layer=has_pooler,
        attn_implementation="eager",
        dtype=torch.float32,
        local_files_only=True,
    )
    return model.eval()


@torch.no_grad()
def pooled(model, ids):
    input_ids = torch.tensor([ids], dtype=torch.long)
    out = model(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        token_type_ids=torch.zeros_like(input_ids),
    )
    return out.last_hidden_state[0].mean(0)


def read_head(composed):
    """The classes, weight and bias of the head.safetensors compose wrote in `composed`."""
    with safe_open(os.path.join(composed, "head.safetensors"), "pt") as f:
        return json.loads(f.metadata()["classes"]), f.get_tensor("weight"), f.get_tensor("bias")


def text_tokenizer(base_dir, max_len):
    """The base's tokenizer as loramix applies it: one text at a time, cut to max_len."""
    tok = tokenizers.Tokenizer.from_file(os.path.join(base_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok


def load_checked(base_dir, adapter_dir, problems, base=None):
    """Steps 1-3: PeftModel.from_pretrained with every key accounted for; appends to problems.
    `base` is the model to load onto (default: the BertModel in base_dir)."""
    # 1. load through the public API, recording warnings
    if base is None:
        base = load_base(base_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, adapter_dir)
    model.eval()
    for w in caught:
        msg = f"{w.category.__name__}: {w.message}"
        log("warning during PeftModel.from_pretrained:", msg)
        if "missing adapter keys" in str(w.message):
            problems.append(msg)

    # 2. second load of the same tensors, to get PEFT's load result
    file_sd = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, file_sd, adapter_name="default")
    prefix = PEFT_TYPE_TO_PREFIX_MAPPING.get(model.peft_config["default"].peft_type, "lora_")
    missing = [k for k in result.missing_keys if prefix in k and "default" in k]
    unexpected = list(result.unexpected_keys)
    log(f"load result: {len(missing)} missing adapter keys, {len(unexpected)} unexpected keys")
    for k in missing:
        problems.append(f"missing adapter key: {k}")
    for k in unexpected:
        problems.append(f"unexpected key (in file, matched no module): {k}")

    # 3. what PEFT would save now vs the file
    model_sd = get_peft_model_state_dict(model, adapter_name="default", save_embedding_layers=False)
    notes = []
    # PEFT also accepts keys that still carry the adapter name
    # ("...lora_A.default.weight"); they load, but are not what save_pretrained writes.
    renamed = {}
    for k in sorted(set(file_sd) - set(model_sd)):
        canon = k.replace(".default.", ".").replace(".default", "")
        if canon != k and canon in model_sd and canon not in file_sd:
            renamed[k] = canon
            notes.append(f"non-canonical key {k} (PEFT loads it; save_pretrained writes {canon})")
        else:
            problems.append(f"file tensor not loaded: {k}")
    file_sd = {renamed.get(k, k): v for k, v in file_sd.items()}
    for k in sorted(set(model_sd) - set(file_sd)):
        problems.append(f"model adapter tensor absent from file: {k}")
    same = 0
    for k in sorted(set(file_sd) & set(model_sd)):
        a, b = file_sd[k], model_sd[k].detach().cpu()
        if a.shape != b.shape:
            problems.append(f"shape mismatch {k}: file {list(a.shape)} model {list(b.shape)}")
        elif a.dtype != b.dtype:
            problems.append(f"dtype mismatch {k}: file {a.dtype} model {b.dtype}")
        elif not torch.equal(a, b):
            problems.append(f"value mismatch {k}: max |diff| {float((a.float() - b.float()).abs().max())}")
        else:
            same += 1
    log(f"{same}/{len(file_sd)} tensors of the file are bit-identical in the loaded model "
        f"({len(model_sd)} adapter tensors in the model)")
    return model


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    base_dir, adapter_dir = sys.argv[1], sys.argv[2]
    tok_path = sys.argv[3] if len(sys.argv) == 4 else os.path.join(base_dir, "tokenizer.json")
    problems = []

    tok = tokenizers.Tokenizer.from_file(tok_path)
    tok.no_padding()
    tok.no_truncation()

    # base outputs first, from a model PEFT has not touched
    base_only = load_base(base_dir)
    ids = [tok.encode(t).ids for t in TEXTS]
    base_out = [pooled(base_only, x) for x in ids]
    del base_only

    model = load_checked(base_dir, adapter_dir, problems)

    modules = {}
    for name, m in model.named_modules():
        if isinstance(m, LoraLayer) and "default" in m.r:
            key = name[len("base_model.model."):] if name.startswith("base_model.model.") else name
            modules[key] = {
                "r": int(m.r["default"]),
                "lora_alpha": float(m.lora_alpha["default"]),
                "scaling": float(m.scaling["default"]),
            }
    log(f"{len(modules)} LoRA modules:")
    for k, v in modules.items():
        log(f"  {k}: r={v['r']} lora_alpha={v['lora_alpha']:g} scaling={v['scaling']:.6g}")

    # 4. outputs
    texts = []
    for text, x, b in zip(TEXTS, ids, base_out):
        p = pooled(model, x)
        texts.append({
            "text": text,
            "input_ids": x,
            "base_pooled": r32(b.numpy()),
            "peft_pooled": r32(p.numpy()),
            "max_abs_diff_peft_vs_base": float((p - b).abs().max()),
        })

    ref_path = os.path.join(adapter_dir, "reference.json")
    if os.path.exists(ref_path):
        with open(ref_path, encoding="utf-8") as f:
            ref = json.load(f)
        for got, want in zip(texts, ref["texts"]):
            if got["input_ids"] != want["input_ids"]:
                problems.append(f"input_ids differ from reference.json for {got['text']!r}")
                continue
            for field in ("base_pooled", "peft_pooled"):
                d = float(np.abs(np.array(got[field], np.float32) - np.array(want[field], np.float32)).max())
                log(f"reference.json {field} {got['text']!r}: max |diff| = {d:.3g}")
                if d > 1e-5:
                    problems.append(f"{field} for {got['text']!r} differs from reference.json by {d:.3g}")
        if ref.get("modules") and {k: {f: v[f] for f in ("r", "lora_alpha", "scaling")} for k, v in ref["modules"].items()} != modules:
            problems.append("LoRA modules (r / lora_alpha / scaling) differ from reference.json")

    print(json.dumps({
        "base_dir": base_dir,
        "adapter_dir": adapter_dir,
        "versions": {"peft": peft.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__},
        "missing_keys": missing,
        "unexpected_keys": unexpected,
        "problems": problems,
        "notes": notes,
        "modules": modules,
        "texts": texts,
    }, indent=1, ensure_ascii=False))

    for n in notes:
        log("note: " + n)
    if problems:
        log(f"FAIL: {len(problems)} problem(s):")
        for p in problems:
            log("  " + p)
        sys.exit(1)
    log("OK: every adapter tensor loaded, no missing or unexpected keys")


if __name__ == "__main__":
    main()
