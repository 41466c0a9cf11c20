//! Initial values drawn on the host from one seeded stream, then moved to the device, so a
//! model starts from the same numbers on every backend. burn's own generators differ by backend
//! (flex's, libtorch's, cubecl's): seeded alike, a cell would start from other values on each
//! and its result would differ by more than float rounding, and shards made on two machines
//! with two backends could not be merged.

use std::sync::Mutex;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_rng::{Rng, derive_seed};

/// The stream every initial value is drawn from, in construction order; seed 0 until [`seed`].
static STREAM: Mutex<Option<Rng>> = Mutex::new(None);

/// Restarts the stream at `seed`, and seeds burn's generator of `B` for what still draws there
/// (dropout masks).
pub fn seed<B: Backend>(device: &B::Device, seed: u64) {
    *stream() = Some(Rng::new(derive_seed(seed, "init")));
    B::seed(device, seed);
}

fn stream() -> std::sync::MutexGuard<'static, Option<Rng>> {
    STREAM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn drawn<B: Backend, const D: usize>(
    shape: [usize; D],
    device: &B::Device,
    mut draw: impl FnMut(&mut Rng) -> f32,
) -> Tensor<B, D> {
    let mut stream = stream();
    let rng = stream.get_or_insert_with(|| Rng::new(derive_seed(0, "init")));
    let values: Vec<f32> = (0..shape.iter().product()).map(|_| draw(rng)).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Uniform in `[-bound, bound)`.
pub fn uniform<B: Backend, const D: usize>(
    shape: [usize; D],
    bound: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let bound = bound as f32;
    drawn(shape, device, |rng| (2.0 * rng.unit() - 1.0) * bound)
}

/// Normal with mean 0 and standard deviation `std`.
pub fn normal<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let std = std as f32;
    drawn(shape, device, |rng| rng.normal() * std)
}

/// A linear layer as burn's `LinearConfig::new(d_in, d_out).init` makes it (Kaiming uniform
/// with gain 1/sqrt(3): weight and bias uniform in `±1/sqrt(d_in)`), drawn from the stream.
pub fn linear<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    let bound = 1.0 / (d_in as f64).sqrt();
    Linear {
        weight: Param::from_tensor(uniform([d_in, d_out], bound, device)),
        bias: Some(Param::from_tensor(uniform([d_out], bound, device))),
    }
}

/// An embedding table of `n` rows of width `d`, normal with standard deviation `std`.
pub fn embedding<B: Backend>(n: usize, d: usize, std: f64, device: &B::Device) -> Embedding<B> {
    Embedding {
        weight: Param::from_tensor(normal([n, d], std, device)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loramix_backend::{Device, Inference};

    fn values<const D: usize>(t: Tensor<Inference, D>) -> Vec<f32> {
        t.into_data().to_vec().unwrap()
    }

    /// The values are the stream's: the same after the same seed, whatever came before, and
    /// computed here from the generator itself (not read back from a backend).
    #[test]
    fn a_seed_fixes_the_values_and_they_come_from_the_host_stream() {
        let device = Device::default();
        seed::<Inference>(&device, 3);
        let first = values(uniform::<Inference, 2>([2, 3], 0.5, &device));
        let _ = normal::<Inference, 1>([7], 1.0, &device);
        seed::<Inference>(&device, 3);
        assert_eq!(values(uniform::<Inference, 2>([2, 3], 0.5, &device)), first);
        let mut rng = Rng::new(derive_seed(3, "init"));
        let expected: Vec<f32> = (0..6).map(|_| (2.0 * rng.unit() - 1.0) * 0.5).collect();
        assert_eq!(first, expected);
        seed::<Inference>(&device, 4);
        assert_ne!(values(uniform::<Inference, 2>([2, 3], 0.5, &device)), first);
    }

    #[test]
    fn a_linear_layer_is_bounded_like_burns_default() {
        let device = Device::default();
        seed::<Inference>(&device, 1);
        let layer = linear::<Inference>(16, 300, &device);
        let weight = values(layer.weight.val());
        let bias = values(layer.bias.unwrap().val());
        assert_eq!((weight.len(), bias.len()), (16 * 300, 300));
        let bound = 0.25;
        assert!(weight.iter().chain(&bias).all(|v| v.abs() <= bound));
        // Uniform: the largest of 4800 draws lies within 1% of the bound.
        let largest = weight.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(largest > 0.99 * bound, "{largest}");
    }
}
