use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::{LoraConfig, RoutedDelta, StackedDelta, materialize};

/// The low-rank update `s * B A` of one linear layer.
///
/// `a` is `[d_in, r]` and `b` is `[r, d_out]`, so the update of `y = x W + b` is `s * (x a) b`:
/// two thin matmuls, never a `d_in x d_out` matrix.
#[derive(Module, Debug)]
pub struct LoraDelta<B: Backend> {
    /// Down projection `A`, `[d_in, r]`.
    pub a: Param<Tensor<B, 2>>,
    /// Up projection `B`, `[r, d_out]`.
    pub b: Param<Tensor<B, 2>>,
    /// `alpha / r`.
    pub scale: f32,
    /// Dropout on the input of the low-rank path (training only).
    pub dropout: Dropout,
}

impl<B: Backend> LoraDelta<B> {
    /// A fresh update: `A` Kaiming-uniform as in PEFT (`U(-1/sqrt(d_in), 1/sqrt(d_in))`) and
    /// `B = 0`, so the adapted layer starts exactly equal to its base.
    pub fn init(d_in: usize, d_out: usize, config: &LoraConfig, device: &B::Device) -> Self {
        let bound = 1.0 / (d_in as f64).sqrt();
        let a = Param::from_tensor(crate::init::uniform([d_in, config.rank], bound, device));
        let b = Initializer::Zeros.init([config.rank, d_out], device);
        materialize(Self {
            a,
            b,
            scale: config.scale(),
            dropout: DropoutConfig::new(config.dropout).init(),
        })
    }

    /// An update from given factors in this crate's layout (`a: [d_in, r]`, `b: [r, d_out]`).
    pub fn from_factors(a: Tensor<B, 2>, b: Tensor<B, 2>, scale: f32) -> Self {
        Self {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale,
            dropout: DropoutConfig::new(0.0).init(),
        }
    }

    /// Rank `r`.
    pub fn rank(&self) -> usize {
        self.a.dims()[1]
    }

    /// `s * x A B` for input `[..., d_in]`.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let x = self.dropout.forward(input);
        let low = x.matmul(self.a.val().unsqueeze::<D>());
        low.matmul((self.b.val() * self.scale).unsqueeze::<D>())
    }

    /// The dense weight update `s * A B`, `[d_in, d_out]`: for folding and tests, never per step.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        self.a.val().matmul(self.b.val()) * self.scale
    }
}

/// A linear layer whose base weight can carry a LoRA update.
///
/// Without an update it is exactly the wrapped [`Linear`].
#[derive(Module, Debug)]
pub struct AdaptedLinear<B: Backend> {
    /// The pretrained layer (frozen while an update is trained).
    pub base: Linear<B>,
    /// The trainable low-rank update, if one is attached.
    pub lora: Option<LoraDelta<B>>,
    /// A frozen composition of upstream updates, if one is attached.
    pub composition: Option<StackedDelta<B>>,
    /// Frozen upstream updates routed per input row, if attached: unlike the others, it
    /// depends on the input, so it is never folded into the base.
    pub routing: Option<RoutedDelta<B>>,
}

impl<B: Backend> From<Linear<B>> for AdaptedLinear<B> {
    fn from(base: Linear<B>) -> Self {
        Self {
            base,
            lora: None,
            composition: None,
            routing: None,
        }
    }
}

impl<B: Backend> AdaptedLinear<B> {
    /// Input width.
    pub fn d_in(&self) -> usize {
        self.base.weight.dims()[0]
    }

    /// Output width.
    pub fn d_out(&self) -> usize {
        self.base.weight.dims()[1]
    }

    /// Attach a fresh update (replacing any previous one).
    pub fn with_lora(self, config: &LoraConfig, device: &B::Device) -> Self {
        let lora = LoraDelta::init(self.d_in(), self.d_out(), config, device);
        Self {
            lora: Some(lora),
            ..self
        }
    }

    /// Remove every low-rank update (trainable, composed and routed), keeping the base as it is.
    pub fn without_lora(self) -> Self {
        Self::from(self.base)
    }

    /// Stop gradients to the base weight and bias; the updates keep their own setting.
    pub fn freeze_base(self) -> Self {
        Self {
            base: self.base.no_grad(),
            ..self
        }
    }

    /// `x W + b` plus every attached update, for input `[..., d_in]`.
    ///
    /// The leading axes are flattened into one first: with the weights as plain `[d_in, d_out]`
    /// matrices (not broadcast over a batch axis) each weight gradient is one matmul, where a
    /// batched one costs a matmul per example, their sum and a copy of the transposed input
    /// (BENCHMARKS.md, kernel launches per step).
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let mut shape = input.dims();
        let rows = shape[..D - 1].iter().product::<usize>();
        let input: Tensor<B, 2> = input.reshape([rows, self.d_in()]);
        let mut output = self.base.forward(input.clone());
        if let Some(lora) = &self.lora {
            output = output + lora.forward(input.clone());
        }
        if let Some(composition) = &self.composition {
            output = output + composition.forward(input.clone());
        }
        if let Some(routing) = &self.routing {
            output = output + routing.forward(input);
        }
        shape[D - 1] = self.d_out();
        output.reshape(shape)
    }

    /// Two factors `(L: [d_in, k], R: [k, d_out])` whose product is the sum of the attached
    /// fixed updates (not the routed one, which depends on the input), if any is attached: what re-compression works on instead of a dense matrix.
    pub fn update_factors(&self) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
        let lora = self.lora.as_ref().map(|l| (l.a.val(), l.b.val() * l.scale));
        let composition = self.composition.as_ref().map(StackedDelta::factors);
        match (lora, composition) {
            (Some((la, lb)), Some((ca, cb))) => {
                Some((Tensor::cat(vec![la, ca], 1), Tensor::cat(vec![lb, cb], 0)))
            }
            (l, c) => l.or(c),
        }
    }

    /// The total rank `k` of the attached updates (the inner size of [`Self::update_factors`]),
    /// read from their shapes without building the factors; 0 when none is attached.
    pub fn update_rank(&self) -> usize {
        let lora = self.lora.as_ref().map_or(0, LoraDelta::rank);
        lora + self.composition.as_ref().map_or(0, StackedDelta::rank)
    }

    /// The sum of the attached updates as a dense `[d_in, d_out]` matrix, if any is attached.
    pub fn delta_weight(&self) -> Option<Tensor<B, 2>> {
        self.update_factors()
            .map(|(left, right)| left.matmul(right))
    }

    /// Merge every fixed update into the base weight: the same outputs at the base's inference
    /// cost. A routed update stays attached (no single matrix equals it).
    pub fn fold(self) -> Self {
        let Some(delta) = self.delta_weight() else {
            return self;
        };
        let mut base = self.base;
        base.weight = base.weight.map(|w| w + delta);
        Self {
            routing: self.routing,
            ..Self::from(base)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::AutodiffModule;
    use burn::nn::LinearConfig;
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use burn::tensor::{Distribution, Tolerance};
    use loramix_backend::{Inference, Train};

    fn layer<B: Backend>(device: &B::Device) -> AdaptedLinear<B> {
        AdaptedLinear::from(LinearConfig::new(12, 7).init(device))
    }

    fn input<B: Backend>(device: &B::Device) -> Tensor<B, 3> {
        Tensor::random([2, 5, 12], Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn zero_initialised_lora_equals_the_base_exactly() {
        let device = loramix_backend::device();
        let plain = layer::<Inference>(&device);
        let x = input(&device);
        let expected = plain.forward(x.clone()).into_data();
        let adapted = plain.with_lora(&LoraConfig::new().with_rank(4), &device);
        adapted.forward(x).into_data().assert_eq(&expected, true);
    }

    #[test]
    fn folded_equals_unfolded_after_training() {
        let device = loramix_backend::device();
        let mut model = layer::<Train>(&device)
            .freeze_base()
            .with_lora(&LoraConfig::new().with_rank(3), &device);
        let mut optim = AdamWConfig::new().init();
        let x = input::<Train>(&device);
        let target = Tensor::<Train, 3>::random([2, 5, 7], Distribution::Default, &device);
        for _ in 0..5 {
            let loss = (model.forward(x.clone()) - target.clone())
                .powf_scalar(2.0)
                .mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-2, model, grads);
        }
        let model = model.valid();
        let lora = model.lora.as_ref().unwrap();
        assert!(
            lora.b.val().abs().max().into_scalar() > 0.0,
            "B was not trained"
        );

        let x = x.inner();
        let unfolded = model.forward(x.clone()).into_data();
        let folded = model.fold();
        assert!(folded.lora.is_none());
        folded
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&unfolded, Tolerance::absolute(1e-5));
    }

    #[test]
    fn delta_weight_is_scaled_product_of_factors() {
        let device = loramix_backend::device();
        let a = Tensor::<Inference, 2>::from_floats([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], &device);
        let b = Tensor::<Inference, 2>::from_floats([[1.0, 0.0], [0.0, -1.0]], &device);
        let delta = LoraDelta::from_factors(a, b, 0.5).delta_weight();
        let expected =
            Tensor::<Inference, 2>::from_floats([[0.5, -1.0], [1.5, -2.0], [2.5, -3.0]], &device);
        delta.into_data().assert_eq(&expected.into_data(), true);
    }
}
