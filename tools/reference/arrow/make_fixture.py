#!/usr/bin/env python3
"""Writes loramix's Arrow test fixture, crates/compose/tests/fixtures/arrow/: the four extra
tiny-bert adapters of make_adapters.py, and reference.json with PEFT's own Arrow outputs
(create_arrow_model, PEFT 0.21.2) for several settings, its prototypes for one, and torch's
CPU randn (the power iteration's start vector) for a few lengths and seeds.

usage: /work/pyenv/venv/bin/python tools/reference/arrow/make_fixture.py
"""
import json, os, subprocess, sys, warnings
warnings.filterwarnings("ignore")
os.environ["HF_HUB_OFFLINE"] = "1"
import torch, tokenizers, transformers, peft
from transformers import BertModel
from peft import ArrowConfig, create_arrow_model
transformers.logging.set_verbosity_error()
torch.set_num_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIXTURE = os.path.join(ROOT, "crates/compose/tests/fixtures/arrow")
ADAPTERS = os.path.join(FIXTURE, "adapters")
subprocess.run([sys.executable, os.path.join(HERE, "make_adapters.py")],
               env={**os.environ, "OUT": ADAPTERS}, check=True)

TINY = os.path.join(ROOT, "crates/models/tests/fixtures/tiny-bert")
# Paths relative to the repository root, as the Rust test reads them.
TASKS = ["crates/peft/tests/fixtures/tiny-bert-lora-qv", "crates/compose/tests/fixtures/arrow/adapters/task-b",
         "crates/compose/tests/fixtures/arrow/adapters/task-c"]
GENERAL = ["crates/compose/tests/fixtures/arrow/adapters/gen-0",
           "crates/compose/tests/fixtures/arrow/adapters/gen-1"]
TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]
# (top_k, temperature, use_gks, rng_seed)
SETTINGS = [(2, 1.0, False, 0), (2, 1.0, True, 0), (3, 0.5, True, 42), (1, 1.0, False, 0), (2, 2.0, True, 1)]
tok = tokenizers.Tokenizer.from_file(f"{TINY}/tokenizer.json")

def arrow(top_k, temperature, gks, seed):
    base = BertModel.from_pretrained(TINY, add_pooling_layer=False, attn_implementation="eager",
                                     dtype=torch.float32, local_files_only=True).eval()
    cfg = ArrowConfig(top_k=top_k, router_temperature=temperature, use_gks=gks, rng_seed=seed)
    paths = lambda ps: [os.path.join(ROOT, p) for p in ps]
    return create_arrow_model(base, paths(TASKS), cfg,
                              general_adapter_paths=paths(GENERAL) if gks else None).eval()

ref = {"made_by": "tools/reference/arrow/make_fixture.py",
       "versions": {"peft": peft.__version__, "torch": torch.__version__, "transformers": transformers.__version__},
       "task_adapters": TASKS, "general_adapters": GENERAL, "texts": TEXTS,
       "input_ids": [tok.encode(t).ids for t in TEXTS], "runs": []}
with torch.no_grad():
    for top_k, temperature, gks, seed in SETTINGS:
        model = arrow(top_k, temperature, gks, seed)
        pooled = []
        for ids in ref["input_ids"]:
            ids = torch.tensor([ids])
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
            pooled.append(out.last_hidden_state[0].mean(0).tolist())
        run = {"top_k": top_k, "router_temperature": temperature, "use_gks": gks, "rng_seed": seed,
               "pooled": pooled}
        if gks and seed == 0:
            run["prototypes"] = {
                name.removeprefix("base_model.model."): m.lora_arrow["arrow_router"].prototypes.tolist()
                for name, m in model.named_modules() if hasattr(m, "lora_arrow")}
        ref["runs"].append(run)
randn = []
for n, seed in [(16, 0), (16, 42), (20, 3), (384, 7)]:
    g = torch.Generator(device="cpu"); g.manual_seed(seed)
    randn.append({"n": n, "seed": seed, "values": torch.randn(n, generator=g).tolist()})
ref["randn"] = randn
with open(os.path.join(FIXTURE, "reference.json"), "w") as f:
    json.dump(ref, f, indent=1, ensure_ascii=False)
print("wrote", FIXTURE)
