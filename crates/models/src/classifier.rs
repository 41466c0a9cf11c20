use burn::module::{Module, ModuleDisplay, ModuleMapper, ModuleVisitor, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use loramix_lora::{AdaptedLinear, AdapterHost, LoraConfig, init};

use crate::{Encoder, Learner, Trainable};
use std::collections::BTreeMap;

/// A model that maps an input to class logits through features and a linear head: the
/// [`Learner`] a trainer steps, plus the transformer body adapters attach to.
pub trait Classifier<B: Backend>: Learner<B> + ModuleDisplay + AdapterHost<B> {
    /// Pooled features `[batch, dim]`, the input of the head.
    fn features(&self, input: Self::Input) -> Tensor<B, 2>;

    /// The transformer body.
    fn encoder(&self) -> &Encoder<B>;

    /// This model with its body replaced by `f(body)`.
    fn map_encoder(self, f: impl FnOnce(Encoder<B>) -> Encoder<B>) -> Self;

    /// This model with `head` as its head.
    fn with_new_head(self, head: Linear<B>) -> Self;

    /// Replace the head with a fresh one for `n_classes` classes.
    fn with_head(self, n_classes: usize, device: &B::Device) -> Self {
        let dim = self.head().weight.dims()[0];
        self.with_new_head(init::linear(dim, n_classes, device))
    }

    /// Attach fresh LoRA updates to `config.targets` in every block.
    fn with_lora(self, config: &LoraConfig, device: &B::Device) -> Self {
        self.map_encoder(|e| e.with_lora(config, device))
    }

    /// Remove every low-rank update (trainable or composed), keeping the base weights.
    fn without_lora(self) -> Self {
        self.map_encoder(|e| e.map_layers(AdaptedLinear::without_lora))
    }

    /// Merge every low-rank update into its base weight.
    fn fold_lora(self) -> Self {
        self.map_encoder(|e| e.map_layers(AdaptedLinear::fold))
    }

    /// Freeze all but the parameters `which` names.
    fn trainable(self, which: Trainable) -> Self;
}

/// Number of parameter values that require a gradient (on an autodiff backend).
pub fn trainable_params<B: Backend, M: Module<B>>(module: &M) -> usize {
    struct Count(usize);
    impl<B: Backend> ModuleVisitor<B> for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if param.val().is_require_grad() {
                self.0 += param.shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    module.visit(&mut count);
    count.0
}

/// Every float parameter by its path (`encoder.blocks.0.attn.query.lora.a`), with its values:
/// what tests compare to prove which parameters an optimiser changed.
pub fn named_params<B: Backend, M: Module<B>>(module: &M) -> BTreeMap<String, TensorData> {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        params: BTreeMap<String, TensorData>,
    }
    impl<B: Backend> ModuleVisitor<B> for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.params
                .insert(self.path.join("."), param.val().into_data());
        }
    }
    let mut collect = Collect::default();
    module.visit(&mut collect);
    collect.params
}

/// `module` with every float parameter requiring a gradient. `trainable` starts from here so
/// that its result depends only on what it is asked, not on where the module came from: a module
/// brought to the autodiff backend with `from_inner` has no parameter requiring a gradient.
pub fn require_grad<B: Backend, M: Module<B>>(module: M) -> M {
    struct RequireGrad;
    impl<B: Backend> ModuleMapper<B> for RequireGrad {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.set_require_grad(true)
        }
    }
    module.map(&mut RequireGrad)
}
