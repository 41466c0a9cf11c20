# Re-implements torch's CPU float32 torch.randn(n, generator=Generator().manual_seed(seed)) for n >= 16
import numpy as np, torch, math
def torch_randn_cpu_f32(n, seed):
    assert n >= 16
    rs = np.random.RandomState(seed)  # MT19937 init_genrand(seed), same as torch's CPU generator
    def unif(k):
        raw = rs.randint(0, 2**32, size=k, dtype=np.uint64)  # raw 32-bit draws... checked below
        return ((raw & ((1 << 24) - 1)).astype(np.float64) * 2.0**-24).astype(np.float32)
    d = unif(n)
    def fill16(b):
        u1 = (np.float32(1) - b[:8]).astype(np.float32); u2 = b[8:16]
        r = np.sqrt(np.float32(-2) * np.log(u1)).astype(np.float32)
        th = (np.float32(2.0 * math.pi) * u2).astype(np.float32)
        return np.concatenate([r * np.cos(th), r * np.sin(th)]).astype(np.float32)
    for i in range(0, n - 15, 16):
        d[i:i+16] = fill16(d[i:i+16])
    if n % 16:
        d[n-16:] = fill16(unif(16))
    return d
if __name__ == '__main__':
  for n, seed in [(16, 0), (16, 42), (384, 0), (768, 7), (20, 3)]:
    g = torch.Generator(device="cpu"); g.manual_seed(seed)
    t = torch.randn(n, generator=g).numpy()
    mine = torch_randn_cpu_f32(n, seed)
    print(n, seed, "max abs diff", float(np.abs(t - mine).max()))
