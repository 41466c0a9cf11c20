# Arrow (+GenKnowSub) reference on tiny-bert with PEFT 0.21.2, plus an independent
# re-implementation (exact SVD prototypes, no PEFT) to cross-check the spec.
import os, sys, json, warnings
warnings.filterwarnings("ignore")
os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np, torch, tokenizers, peft, transformers
from safetensors.torch import load_file
from transformers import BertModel
from peft import ArrowConfig, create_arrow_model
transformers.logging.set_verbosity_error()
torch.set_num_threads(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = os.path.join(ROOT, "crates/models/tests/fixtures/tiny-bert")
FIX = os.path.join(ROOT, "crates/peft/tests/fixtures")
AD = os.environ.get("ADAPTERS", "/tmp/arrow-ref/adapters")  # what make_adapters.py wrote
TASKS = [f"{FIX}/tiny-bert-lora-qv", f"{AD}/task-b", f"{AD}/task-c"]
GENS = [f"{AD}/gen-0", f"{AD}/gen-1"]
TEXTS = ["Hello, world!", "A longer sentence about the 3 café tables.", "x"]

def base():
    m = BertModel.from_pretrained(TINY, add_pooling_layer=False, attn_implementation="eager",
                                  dtype=torch.float32, local_files_only=True)
    return m.eval()

tok = tokenizers.Tokenizer.from_file(f"{TINY}/tokenizer.json"); tok.no_padding(); tok.no_truncation()

@torch.no_grad()
def pooled(model, text):
    ids = torch.tensor([tok.encode(text).ids])
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=torch.zeros_like(ids))
    return out.last_hidden_state[0].mean(0)

def peft_arrow(top_k, temp, use_gks, seed=0):
    cfg = ArrowConfig(top_k=top_k, router_temperature=temp, use_gks=use_gks, rng_seed=seed)
    m = create_arrow_model(base(), TASKS, cfg, general_adapter_paths=GENS if use_gks else None)
    return m.eval()

# ---------------- independent re-implementation ----------------
def load_adapter(d):
    cfg = json.load(open(f"{d}/adapter_config.json"))
    w = load_file(f"{d}/adapter_model.safetensors")
    mods = {}
    for k, v in w.items():
        # base_model.model.<module>.lora_A.weight
        mod, ab = k[len("base_model.model."):].rsplit(".lora_", 1)
        mods.setdefault(mod, {})[ab[0]] = v.double()
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scale = alpha / (r ** 0.5) if cfg["use_rslora"] else alpha / r
    return mods, scale

class ArrowLinear(torch.nn.Module):
    def __init__(self, lin, As, Bs, scales, top_k, temp):
        super().__init__()
        self.lin, self.As, self.Bs, self.s = lin, As, Bs, torch.tensor(scales, dtype=torch.float64)
        self.k, self.T = top_k, temp
        protos = []
        for A, B in zip(As, Bs):
            _, _, Vh = torch.linalg.svd(B @ A)   # exact SVD in float64
            protos.append(Vh[0])                   # top right singular vector (in_features)
        self.P = torch.stack(protos)              # (E, in)
    def forward(self, x):
        y = self.lin(x)
        t = x.reshape(-1, x.shape[-1]).double()
        sim = (t @ self.P.T).abs()                # (t, E)
        v, idx = sim.topk(self.k, dim=1)
        logits = torch.full_like(sim, float("-inf")).scatter(1, idx, v)
        c = torch.softmax(logits / self.T, dim=1)  # (t, E)
        d = sum(c[:, e:e+1] * self.s[e] * (t @ self.As[e].T @ self.Bs[e].T) for e in range(len(self.As)))
        return y + d.reshape(*x.shape[:-1], -1).to(y.dtype)

def indep_arrow(top_k, temp, use_gks):
    m = base()
    tasks = [load_adapter(d) for d in TASKS]
    gens = [load_adapter(d) for d in GENS] if use_gks else []
    for mod in tasks[0][0]:
        As = [t[0][mod]["A"] for t in tasks]; Bs = [t[0][mod]["B"] for t in tasks]
        if use_gks:
            Ab = torch.stack([g[0][mod]["A"] for g in gens]).mean(0)
            Bb = torch.stack([g[0][mod]["B"] for g in gens]).mean(0)
            As = [A - Ab for A in As]; Bs = [B - Bb for B in Bs]
        parent, leaf = mod.rsplit(".", 1)
        p = m.get_submodule(parent)
        setattr(p, leaf, ArrowLinear(getattr(p, leaf), As, Bs, [t[1] for t in tasks], top_k, temp))
    return m.eval()

if __name__ == "__main__":
    print("versions", peft.__version__, torch.__version__, transformers.__version__)
    b = base()
    for text in TEXTS[:1]:
        print("base pooled", [round(v, 6) for v in pooled(b, text).tolist()])
    for (k, T, g) in [(2, 1.0, False), (2, 1.0, True), (3, 0.5, False), (1, 1.0, True)]:
        pm = peft_arrow(k, T, g)
        im = indep_arrow(k, T, g)
        for text in TEXTS:
            p, q = pooled(pm, text), pooled(im, text)
            print(f"top_k={k} T={T} gks={g} {text!r}: max|peft-indep|={float((p-q).abs().max()):.2e}"
                  f"  max|peft-base|={float((p-pooled(b,text)).abs().max()):.3e}")
        if (k, T, g) == (2, 1.0, True):
            print("  peft pooled 'Hello, world!':", pooled(pm, TEXTS[0]).tolist())
