//! Arrow routing (Ostapenko et al. 2024) with optional GenKnowSub, as Hugging Face PEFT's
//! `create_arrow_model` builds it (tools/reference/arrow/SPEC.md): no training, per token the
//! `top_k` modules whose prototype best matches the layer's input.
//!
//! Per adapted layer and module, the prototype is the top right singular vector of `B A` (the
//! factors without their scale), found by PEFT's 15 power-iteration steps from
//! `torch.randn(d_in)` under `seed`. The steps do not converge on modules with close singular
//! values, so the start vector is torch's own ([`loramix_rng::torch::randn`]): another start
//! routes some tokens differently from PEFT. GenKnowSub first subtracts the general adapters'
//! mean `A` from every module's `A`, and their mean `B` from every `B` (the factors apart, as
//! PEFT does, not the product).

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_lora::{Adapter, AdapterHost, LayerShape, ModuleFactors, RoutedDelta};
use serde::{Deserialize, Serialize};

use crate::error::{ComposeError, Result};

/// PEFT's power-iteration steps per prototype.
const POWER_STEPS: usize = 15;
/// The epsilon PEFT adds to every norm it divides by.
const EPS: f32 = 1e-8;
/// Torch's vectorised `randn` (the start vector) needs at least this many entries.
const MIN_WIDTH: usize = 16;

/// How the modules are routed (PEFT's `ArrowConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ArrowConfig {
    /// Modules combined per token.
    pub top_k: usize,
    /// Softmax temperature of the routing scores.
    pub temperature: f32,
    /// Seed of the power iteration's start vector (PEFT's `rng_seed`).
    pub seed: u64,
}

impl Default for ArrowConfig {
    /// PEFT's defaults, with seed 0 where PEFT's `None` draws from torch's global state.
    fn default() -> Self {
        Self {
            top_k: 3,
            temperature: 1.0,
            seed: 0,
        }
    }
}

impl ArrowConfig {
    pub fn with_top_k(self, top_k: usize) -> Self {
        Self { top_k, ..self }
    }
}

/// Attach `experts` to `host` as one routed update per layer, after subtracting `general`
/// (GenKnowSub) when any is given. Every adapter must cover the same layers with the same
/// ranks (PEFT stacks them per layer). On error `host` is unchanged.
pub fn route<B: Backend, H: AdapterHost<B>>(
    host: &mut H,
    experts: &[Adapter],
    general: &[Adapter],
    config: &ArrowConfig,
    device: &B::Device,
) -> Result<()> {
    check_routable(experts, general, config)?;
    let placement = Adapter::check_all_fit(experts.iter().chain(general), host)?.swap_remove(0);
    let shapes = &experts[0].manifest.layers;
    let mut routed: Vec<Option<RoutedDelta<B>>> =
        host.adaptable_layers().iter().map(|_| None).collect();
    for (i, shape) in shapes.iter().enumerate() {
        routed[placement[i]] = Some(routed_layer(experts, general, i, shape, config, device));
    }
    for ((_, layer), routing) in host.adaptable_layers_mut().into_iter().zip(routed) {
        if routing.is_some() {
            layer.routing = routing;
        }
    }
    Ok(())
}

/// The checks of [`route`] that need no model: settings in range, one layout for every
/// adapter, layers wide enough for torch's start vector.
pub fn check_routable(
    experts: &[Adapter],
    general: &[Adapter],
    config: &ArrowConfig,
) -> Result<()> {
    check_config(config, experts.len())?;
    for adapter in experts.iter().chain(general) {
        check_layout(&experts[0], adapter)?;
    }
    let shapes = &experts[0].manifest.layers;
    if let Some(narrow) = shapes.iter().find(|s| s.d_in < MIN_WIDTH) {
        return Err(ComposeError::Unroutable {
            origin: experts[0].origin(),
            problem: format!(
                "layer `{}` takes {} inputs; Arrow's start vector needs at least {MIN_WIDTH}",
                narrow.name, narrow.d_in
            ),
        });
    }
    Ok(())
}

fn check_config(config: &ArrowConfig, experts: usize) -> Result<()> {
    if experts == 0 {
        return Err(ComposeError::NoAdapters);
    }
    if !(1..=experts).contains(&config.top_k) {
        return Err(ComposeError::OutOfRange {
            name: "top_k",
            range: "1 to the number of routed adapters",
            value: config.top_k as f64,
        });
    }
    if !(config.temperature > 0.0 && config.temperature.is_finite()) {
        return Err(ComposeError::OutOfRange {
            name: "temperature",
            range: "(0, inf)",
            value: config.temperature.into(),
        });
    }
    Ok(())
}

/// Refuses an adapter whose layers or ranks differ from the first expert's.
fn check_layout(first: &Adapter, adapter: &Adapter) -> Result<()> {
    let describe = |s: &LayerShape| format!("`{}` at rank {}", s.name, s.rank);
    let (ours, theirs) = (&first.manifest.layers, &adapter.manifest.layers);
    let differs = (ours.len() != theirs.len()).then(|| {
        format!(
            "it adapts {} layers, {} adapts {}",
            theirs.len(),
            first.origin(),
            ours.len()
        )
    });
    let differs = differs.or_else(|| {
        ours.iter().zip(theirs).find(|(a, b)| a != b).map(|(a, b)| {
            format!(
                "it has {} where {} has {}",
                describe(b),
                first.origin(),
                describe(a)
            )
        })
    });
    match differs {
        Some(problem) => Err(ComposeError::Unroutable {
            origin: adapter.origin(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Layer `i`'s routed update over every expert (GenKnowSub applied), with their prototypes.
fn routed_layer<B: Backend>(
    experts: &[Adapter],
    general: &[Adapter],
    i: usize,
    shape: &LayerShape,
    config: &ArrowConfig,
    device: &B::Device,
) -> RoutedDelta<B> {
    let (r, d_in, d_out) = (shape.rank, shape.d_in, shape.d_out);
    let mean_a = mean(general.iter().map(|g| g.layers[i].a.as_slice()));
    let mean_b = mean(general.iter().map(|g| g.layers[i].b.as_slice()));
    let start = loramix_rng::torch::randn(d_in, config.seed);
    let mut prototypes = Vec::with_capacity(experts.len() * d_in);
    let mut factors = Vec::with_capacity(experts.len());
    for (module, expert) in experts.iter().enumerate() {
        let a = subtract(&expert.layers[i].a, mean_a.as_deref());
        let b = subtract(&expert.layers[i].b, mean_b.as_deref());
        prototypes.extend(top_right_singular_vector(&a, &b, r, d_in, &start));
        let tensor = |values, shape: [usize; 2]| {
            Tensor::<B, 2>::from_data(TensorData::new(values, shape), device).transpose()
        };
        factors.push(ModuleFactors {
            module,
            a: tensor(a, [r, d_in]),
            b: tensor(b, [d_out, r]),
            scale: expert.layer_scale(shape),
        });
    }
    let prototypes = Tensor::from_data(TensorData::new(prototypes, [experts.len(), d_in]), device);
    RoutedDelta::new(factors, prototypes, config.top_k, config.temperature)
}

/// The entrywise mean of equally long slices; `None` when there are none.
fn mean<'a>(rows: impl Iterator<Item = &'a [f32]>) -> Option<Vec<f32>> {
    let mut count = 0;
    let mut sum: Option<Vec<f32>> = None;
    for row in rows {
        count += 1;
        match &mut sum {
            None => sum = Some(row.to_vec()),
            Some(sum) => sum.iter_mut().zip(row).for_each(|(s, v)| *s += v),
        }
    }
    sum.map(|s| s.into_iter().map(|v| v / count as f32).collect())
}

fn subtract(values: &[f32], mean: Option<&[f32]>) -> Vec<f32> {
    match mean {
        Some(mean) => values.iter().zip(mean).map(|(v, m)| v - m).collect(),
        None => values.to_vec(),
    }
}

/// PEFT's prototype: [`POWER_STEPS`] steps of `v <- A^T (B^T B) A v`, normalised, from `start`
/// (`a: [r, d_in]`, `b: [d_out, r]`, row-major, PEFT's layout).
fn top_right_singular_vector(
    a: &[f32],
    b: &[f32],
    r: usize,
    d_in: usize,
    start: &[f32],
) -> Vec<f32> {
    let mut gram = vec![0.0f32; r * r];
    for row in b.chunks_exact(r) {
        for (i, &x) in row.iter().enumerate() {
            for (j, &y) in row.iter().enumerate() {
                gram[i * r + j] += x * y;
            }
        }
    }
    let mut v = normalised(start.to_vec());
    for _ in 0..POWER_STEPS {
        let low: Vec<f32> = a.chunks_exact(d_in).map(|row| dot(row, &v)).collect();
        let mixed: Vec<f32> = gram.chunks_exact(r).map(|row| dot(row, &low)).collect();
        let mut w = vec![0.0f32; d_in];
        for (row, &m) in a.chunks_exact(d_in).zip(&mixed) {
            w.iter_mut().zip(row).for_each(|(w, x)| *w += x * m);
        }
        v = normalised(w);
    }
    v
}

fn dot(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn normalised(v: Vec<f32>) -> Vec<f32> {
    let norm = dot(&v, &v).sqrt() + EPS;
    v.into_iter().map(|x| x / norm).collect()
}
