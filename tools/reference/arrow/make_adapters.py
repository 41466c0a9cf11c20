# Makes extra PEFT LoRA adapters on tiny-bert, compatible with tiny-bert-lora-qv
# (r=4, target_modules ["query","value"]), for the Arrow reference.
import os, sys, torch
from peft import LoraConfig, get_peft_model
from transformers import BertModel
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = os.path.join(ROOT, "crates/models/tests/fixtures/tiny-bert")
OUT = os.environ.get("OUT", "/tmp/arrow-ref/adapters")
def base():
    m = BertModel.from_pretrained(TINY, add_pooling_layer=False, attn_implementation="eager",
                                  dtype=torch.float32, local_files_only=True)
    m.eval(); return m
# name, seed, lora_alpha, use_rslora
SPECS = [("task-b", 101, 16, False),   # scaling 16/4 = 4
         ("task-c", 102, 8, True),     # rslora: 8/sqrt(4) = 4
         ("gen-0", 201, 8, False),
         ("gen-1", 202, 8, False)]
for name, seed, alpha, rs in SPECS:
    torch.manual_seed(seed)
    cfg = LoraConfig(r=4, lora_alpha=alpha, target_modules=["query", "value"], use_rslora=rs, lora_dropout=0.0)
    pm = get_peft_model(base(), cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if ".lora_B." in n:
                p.normal_(0.0, 0.1)
    out = os.path.join(OUT, name)
    pm.save_pretrained(out, save_embedding_layers=False)
    if os.path.exists(os.path.join(out, "README.md")): os.remove(os.path.join(out, "README.md"))
    print("wrote", out)
