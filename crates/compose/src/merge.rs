use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_lora::{Adapter, AdapterHost};
use loramix_rng::{Rng, derive_seed};
use serde::{Deserialize, Serialize};

use crate::error::{ComposeError, Result};

/// Merges that act on single entries of the modules' dense deltas `s_i B_i A_i`, so their result
/// is not low-rank: it is folded into the base weight, or saved as an adapter through a truncated
/// SVD ([`compress_dense`](crate::compress_dense)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum DenseMerge {
    /// TIES-merging (Yadav et al. 2023): keep the `density` fraction of each delta's entries
    /// with the largest magnitude, elect each entry's sign from the sum of what was kept, average
    /// the kept values that agree with it, and scale by `lambda`.
    Ties { density: f32, lambda: f32 },
    /// DARE (Yu et al. 2024): drop each entry with probability `drop`, rescale the survivors by
    /// `1 / (1 - drop)`, then sum the modules with `weights`. Seeded, so reruns agree.
    Dare {
        drop: f32,
        weights: Vec<f32>,
        seed: u64,
    },
}

impl DenseMerge {
    fn check(&self, modules: usize) -> Result<()> {
        let finite = |name, value: f32| {
            if value.is_finite() {
                Ok(())
            } else {
                Err(ComposeError::OutOfRange {
                    name,
                    range: "the finite numbers",
                    value: value.into(),
                })
            }
        };
        let (name, value, range, ok) = match self {
            DenseMerge::Ties { density, lambda } => {
                finite("TIES lambda", *lambda)?;
                (
                    "TIES density",
                    *density,
                    "(0, 1]",
                    *density > 0.0 && *density <= 1.0,
                )
            }
            DenseMerge::Dare { drop, weights, .. } => {
                if weights.len() != modules {
                    return Err(ComposeError::WeightCount {
                        given: weights.len(),
                        modules,
                    });
                }
                for &w in weights {
                    finite("DARE weight", w)?;
                }
                ("DARE drop rate", *drop, "[0, 1)", (0.0..1.0).contains(drop))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ComposeError::OutOfRange {
                name,
                range,
                value: value.into(),
            })
        }
    }

    /// Merge one layer's deltas (each `len` entries, same layout), which `delta(i)` computes
    /// for module `i` (`None` where it adapts nothing) as often as asked: one module's delta
    /// is held at a time, so memory does not grow with the number of modules. `layer` seeds
    /// DARE's masks.
    fn merge(
        &self,
        modules: usize,
        len: usize,
        delta: impl Fn(usize) -> Option<Vec<f32>>,
        layer: usize,
    ) -> Vec<f32> {
        match self {
            DenseMerge::Ties { density, lambda } => ties(modules, len, delta, *density, *lambda),
            DenseMerge::Dare {
                drop,
                weights,
                seed,
            } => dare(
                len,
                delta,
                *drop,
                weights,
                derive_seed(*seed, &format!("dare/{layer}")),
            ),
        }
    }
}

/// Two passes over the modules: the first sums the trimmed deltas to elect each entry's sign,
/// the second averages the trimmed values that agree with it. Sums run in module order, as
/// they would over deltas held all at once.
fn ties(
    modules: usize,
    len: usize,
    delta: impl Fn(usize) -> Option<Vec<f32>>,
    density: f32,
    lambda: f32,
) -> Vec<f32> {
    let trimmed = |i: usize| delta(i).map(|d| keep_largest(&d, density));
    let mut sum = vec![0.0f32; len];
    for t in (0..modules).filter_map(trimmed) {
        sum.iter_mut().zip(&t).for_each(|(s, v)| *s += v);
    }
    let mut agreeing = vec![(0.0f32, 0u32); len];
    for t in (0..modules).filter_map(trimmed) {
        for ((total, count), (&v, &s)) in agreeing.iter_mut().zip(t.iter().zip(&sum)) {
            if v != 0.0 && s != 0.0 && v.signum() == s.signum() {
                *total += v;
                *count += 1;
            }
        }
    }
    agreeing
        .into_iter()
        .map(|(total, count)| match count {
            0 => 0.0,
            n => lambda * total / n as f32,
        })
        .collect()
}

/// Zero all but the `density` fraction of entries with the largest magnitude (ties kept).
fn keep_largest(delta: &[f32], density: f32) -> Vec<f32> {
    if delta.is_empty() {
        return Vec::new();
    }
    let keep = ((density * delta.len() as f32).ceil() as usize).clamp(1, delta.len());
    let mut magnitudes: Vec<f32> = delta.iter().map(|v| v.abs()).collect();
    let (_, threshold, _) = magnitudes.select_nth_unstable_by(keep - 1, |a, b| b.total_cmp(a));
    let threshold = *threshold;
    delta
        .iter()
        .map(|&v| if v.abs() >= threshold { v } else { 0.0 })
        .collect()
}

/// Module by module, each entry drawn in order: a module that adapts nothing on the layer
/// draws for its zero delta as well, so every module's masks stay where they were.
fn dare(
    len: usize,
    delta: impl Fn(usize) -> Option<Vec<f32>>,
    drop: f32,
    weights: &[f32],
    seed: u64,
) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let rescale = 1.0 / (1.0 - drop);
    let mut merged = vec![0.0; len];
    for (i, &weight) in weights.iter().enumerate() {
        let delta = delta(i).unwrap_or_else(|| vec![0.0; len]);
        for (out, &v) in merged.iter_mut().zip(&delta) {
            if rng.unit() >= drop {
                *out += weight * rescale * v;
            }
        }
    }
    merged
}

/// Merge `adapters` with `merge` and add the result to each layer's base weight. Every adapter is
/// checked against the base first: on error `host` is unchanged.
pub fn merge_into_base<B: Backend, H: AdapterHost<B>>(
    host: &mut H,
    adapters: &[Adapter],
    merge: &DenseMerge,
    device: &B::Device,
) -> Result<()> {
    let deltas = merged_deltas(host, adapters, merge, device)?;
    add_to_base(host, deltas);
    Ok(())
}

/// Adds `deltas` (one per adaptable layer of `host`, as [`merged_deltas`] gives them) to the
/// layers' base weights.
pub fn add_to_base<B: Backend, H: AdapterHost<B>>(host: &mut H, deltas: Vec<Option<Tensor<B, 2>>>) {
    for ((_, layer), delta) in host.adaptable_layers_mut().into_iter().zip(deltas) {
        if let Some(delta) = delta {
            layer.base.weight = layer.base.weight.clone().map(|w| w + delta);
        }
    }
}

/// The merged update `[d_in, d_out]` of each adaptable layer of `host` (`None` where no adapter
/// touches it), checked as [`merge_into_base`] checks: what the merge adds to the base, and what
/// [`compress_dense`](crate::compress_dense) turns into an adapter.
pub fn merged_deltas<B: Backend, H: AdapterHost<B>>(
    host: &H,
    adapters: &[Adapter],
    merge: &DenseMerge,
    device: &B::Device,
) -> Result<Vec<Option<Tensor<B, 2>>>> {
    if adapters.is_empty() {
        return Err(ComposeError::NoAdapters);
    }
    merge.check(adapters.len())?;
    let placements = Adapter::check_all_fit(adapters, host)?;
    let shapes: Vec<[usize; 2]> = host
        .adaptable_layers()
        .iter()
        .map(|(_, l)| [l.d_in(), l.d_out()])
        .collect();
    let names: Vec<String> = host
        .adaptable_layers()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    (0..shapes.len())
        .map(|layer| {
            if !placements.iter().any(|p| p.contains(&layer)) {
                return Ok(None);
            }
            let [d_in, d_out] = shapes[layer];
            // The dense delta of module `m` on this layer, if it adapts it.
            let delta = |m: usize| {
                let (adapter, placement) = (&adapters[m], &placements[m]);
                let i = placement.iter().position(|&p| p == layer)?;
                let (a, b) = adapter.factors::<B>(i, device);
                let scale = adapter.layer_scale(&adapter.manifest.layers[i]);
                let dense = a.matmul(b) * scale;
                Some(dense.into_data().convert::<f32>().to_vec().expect("f32"))
            };
            let merged = merge.merge(adapters.len(), d_in * d_out, delta, layer);
            // Finite weights can still overflow f32 once they multiply a delta.
            if let Some(bad) = merged.iter().find(|v| !v.is_finite()) {
                return Err(ComposeError::NotFinite {
                    layer: names[layer].clone(),
                    detail: format!(
                        "an entry of the merge is {bad}: the weights or lambda are too large"
                    ),
                });
            }
            Ok(Some(Tensor::<B, 2>::from_data(
                TensorData::new(merged, shapes[layer]),
                device,
            )))
        })
        .collect()
}
