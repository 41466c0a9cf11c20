use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_lora::{Adapter, AdapterHost, ModuleFactors, StackedDelta};

use crate::error::{ComposeError, Result};

/// `1/N` for each of `n` modules.
pub fn uniform_weights(n: usize) -> Vec<f32> {
    vec![1.0 / n as f32; n]
}

/// Attach `adapters` to `host` as one frozen stacked update per layer with module weights
/// `weights` (any sign: task arithmetic allows negation). Adapters may differ in rank and in
/// which layers they adapt; a layer no adapter touches gets no update. Every adapter is checked
/// against the base first (fingerprint, layer names and shapes): on error `host` is unchanged.
pub fn attach<B: Backend, H: AdapterHost<B>>(
    host: &mut H,
    adapters: &[Adapter],
    weights: &[f32],
    device: &B::Device,
) -> Result<()> {
    if adapters.is_empty() {
        return Err(ComposeError::NoAdapters);
    }
    if weights.len() != adapters.len() {
        return Err(ComposeError::WeightCount {
            given: weights.len(),
            modules: adapters.len(),
        });
    }
    let placements = Adapter::check_all_fit(adapters, host)?;

    let mut per_layer: Vec<Vec<ModuleFactors<B>>> =
        host.adaptable_layers().iter().map(|_| Vec::new()).collect();
    for (module, (adapter, placement)) in adapters.iter().zip(&placements).enumerate() {
        for (i, &layer) in placement.iter().enumerate() {
            let (a, b) = adapter.factors::<B>(i, device);
            let scale = adapter.layer_scale(&adapter.manifest.layers[i]);
            per_layer[layer].push(ModuleFactors {
                module,
                a,
                b,
                scale,
            });
        }
    }
    let weights = weight_tensor::<B>(weights, device);
    for ((_, layer), factors) in host.adaptable_layers_mut().into_iter().zip(per_layer) {
        layer.composition =
            (!factors.is_empty()).then(|| StackedDelta::new(factors, weights.clone()));
    }
    Ok(())
}

/// Replace the module weights of every composed layer of `host`. On error `host` is unchanged.
pub fn set_weights<B: Backend, H: AdapterHost<B>>(
    host: &mut H,
    weights: &[f32],
    device: &B::Device,
) -> Result<()> {
    let modules: Vec<usize> = host
        .adaptable_layers()
        .iter()
        .filter_map(|(_, layer)| layer.composition.as_ref().map(StackedDelta::n_modules))
        .collect();
    if modules.is_empty() {
        return Err(ComposeError::NothingComposed { action: "weight" });
    }
    if let Some(&n) = modules.iter().find(|&&n| n != weights.len()) {
        return Err(ComposeError::WeightCount {
            given: weights.len(),
            modules: n,
        });
    }
    let weights = weight_tensor::<B>(weights, device);
    for (_, layer) in host.adaptable_layers_mut() {
        if let Some(stack) = layer.composition.take() {
            layer.composition = Some(stack.with_weights(weights.clone()));
        }
    }
    Ok(())
}

fn weight_tensor<B: Backend>(weights: &[f32], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(weights.to_vec(), [weights.len()]), device)
}
