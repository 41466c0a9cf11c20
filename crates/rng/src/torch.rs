//! PyTorch's CPU `torch.randn(n, generator=torch.Generator().manual_seed(seed))`, reproduced:
//! PEFT's Arrow routing starts each prototype's power iteration from that vector, and 15
//! iterations do not converge far enough for another start to give PEFT's routing
//! (tools/reference/arrow/SPEC.md, section 5).
//!
//! Torch draws one MT19937 word per float uniform (its low 24 bits over 2^24), fills the whole
//! vector with uniforms, then turns each block of 16 into normals by Box-Muller (the first 8
//! with the cosine, the last 8 with the sine). A tail shorter than 16 redraws 16 fresh uniforms
//! for the last 16 entries and transforms those.

/// The 32-bit Mersenne Twister (Matsumoto & Nishimura 1998), seeded as `init_genrand`.
struct Mt19937 {
    state: [u32; 624],
    index: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let previous = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(previous ^ (previous >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index == 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C_5680;
        y ^= (y << 15) & 0xEFC6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7FFF_FFFF);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= 0x9908_B0DF;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// Torch's float uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u32() & 0x00FF_FFFF) as f32 / (1u32 << 24) as f32
    }
}

/// `torch.randn(n)` from a CPU generator seeded with `seed` (its low 32 bits, as torch's
/// MT19937 takes them), for `n >= 16` (torch takes another path below 16).
pub fn randn(n: usize, seed: u64) -> Vec<f32> {
    assert!(n >= 16, "torch draws fewer than 16 normals another way");
    let mut mt = Mt19937::new(seed as u32);
    let mut values: Vec<f32> = (0..n).map(|_| mt.unit()).collect();
    for block in values.chunks_exact_mut(16) {
        box_muller(block);
    }
    if !n.is_multiple_of(16) {
        let tail = &mut values[n - 16..];
        for value in tail.iter_mut() {
            *value = mt.unit();
        }
        box_muller(tail);
    }
    values
}

/// Sixteen uniforms into sixteen standard normals, in place.
fn box_muller(block: &mut [f32]) {
    for j in 0..8 {
        let radius = (-2.0 * (1.0 - block[j]).ln()).sqrt();
        let angle = std::f32::consts::TAU * block[j + 8];
        block[j] = radius * angle.cos();
        block[j + 8] = radius * angle.sin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_twister_gives_its_published_outputs() {
        // The reference implementation's first outputs for init_genrand(5489).
        let mut mt = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| mt.next_u32()).collect();
        assert_eq!(first, [3_499_211_612, 581_869_302, 3_890_346_734]);
    }

    #[test]
    fn seed_zero_gives_torchs_first_normals() {
        // torch 2.9.0: torch.randn(16, generator=torch.Generator().manual_seed(0)).
        let torch = [
            -1.1258398,
            -1.1523602,
            -0.25057858,
            -0.4338788,
            0.84871036,
            0.69200915,
            -0.31601277,
            -2.1152194,
            0.32227492,
            -1.2633348,
            0.349_983_2,
            0.30813393,
            0.11984151,
            1.2376579,
            1.1167772,
            -0.24727815,
        ];
        for (ours, theirs) in randn(16, 0).iter().zip(torch) {
            assert!((ours - theirs).abs() < 1e-6, "{ours} vs {theirs}");
        }
    }
}
