#!/usr/bin/env python3
"""Minimal PEFT Arrow (+GenKnowSub) recipe on tiny-bert; prints mean-pooled last_hidden_state.

usage: python arrow_recipe.py [--top-k K] [--temperature T] [--gks] [--seed S] [--json OUT]
"""
import argparse, json, os, warnings
warnings.filterwarnings("ignore")
os.environ["HF_HUB_OFFLINE"] = "1"
import torch, tokenizers, transformers, peft
from transformers import BertModel
from peft import ArrowConfig, create_arrow_model
transformers.logging.set_verbosity_error()
torch.set_num_threads(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ADAPTERS = os.environ.get("ADAPTERS", "/tmp/arrow-ref/adapters")  # what make_adapters.py wrote
TINY = os.path.join(ROOT, "crates/models/tests/fixtures/tiny-bert")
TASKS = [os.path.join(ROOT, "crates/peft/tests/fixtures/tiny-bert-lora-qv"),  # -> task_0, scaling 2
         os.path.join(ADAPTERS, "task-b"),                          # -> task_1, scaling 4 (alpha 16, r 4)
         os.path.join(ADAPTERS, "task-c")]                          # -> task_2, scaling 4 (rslora 8/sqrt 4)
GENERAL = [os.path.join(ADAPTERS, "gen-0"), os.path.join(ADAPTERS, "gen-1")]  # -> gks_0, gks_1
TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]

ap = argparse.ArgumentParser()
ap.add_argument("--top-k", type=int, default=2)
ap.add_argument("--temperature", type=float, default=1.0)
ap.add_argument("--gks", action="store_true")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--json")
a = ap.parse_args()

base = BertModel.from_pretrained(TINY, add_pooling_layer=False, attn_implementation="eager",
                                 dtype=torch.float32, local_files_only=True).eval()
cfg = ArrowConfig(top_k=a.top_k, router_temperature=a.temperature, use_gks=a.gks, rng_seed=a.seed)
model = create_arrow_model(base, TASKS, cfg, general_adapter_paths=GENERAL if a.gks else None).eval()

tok = tokenizers.Tokenizer.from_file(f"{TINY}/tokenizer.json")
ref = {"versions": {"peft": peft.__version__, "torch": torch.__version__, "transformers": transformers.__version__},
       "config": {"top_k": a.top_k, "router_temperature": a.temperature, "use_gks": a.gks, "rng_seed": a.seed,
                  "task_adapters": TASKS, "general_adapters": GENERAL if a.gks else []},
       "sentences": []}
with torch.no_grad():
    for text in TEXTS:
        ids = torch.tensor([tok.encode(text).ids])
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
        pooled = out.last_hidden_state[0].mean(0)
        print(f"{text!r} ids={ids[0].tolist()}\n  pooled={[float(f'{v:.7g}') for v in pooled.tolist()]}")
        ref["sentences"].append({"text": text, "input_ids": ids[0].tolist(), "arrow_pooled": pooled.tolist()})
if a.json:
    g = torch.Generator(device="cpu"); g.manual_seed(a.seed)
    ref["power_iteration_init"] = torch.randn(base.config.hidden_size, generator=g).tolist()
    ref["modules"] = {}
    for name, m in model.named_modules():
        if hasattr(m, "lora_arrow"):
            ar = m.lora_arrow["arrow_router"]
            ref["modules"][name.removeprefix("base_model.model.")] = {
                "experts": ar.task_adapter_names,
                "scaling": [m.scaling[n] for n in ar.task_adapter_names],
                "prototypes": ar.prototypes.tolist()}
    json.dump(ref, open(a.json, "w"), indent=1, ensure_ascii=False)
    print("wrote", a.json)
