use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use loramix_lora::{AdaptedLinear, init};

/// Added to the attention score of a padded key: hides it without the NaNs of `-inf`.
const MASKED: f32 = -1e9;

/// The `key_bias` of [`SelfAttention::forward`] that hides padded keys: `keep` is
/// `[batch, len]`, 1 for a real token and 0 for padding.
pub fn padding_bias<B: Backend>(keep: Tensor<B, 2>) -> Tensor<B, 4> {
    let [batch, len] = keep.dims();
    (keep - 1.0).mul_scalar(-MASKED).reshape([batch, 1, 1, len])
}

/// The mean of `states` (`[batch, len, dim]`) over the real tokens that `keep` marks, as
/// sentence-transformers pools. A row of padding only gives zeros (its count is clamped to 1).
pub fn mean_over_tokens<B: Backend>(states: Tensor<B, 3>, keep: Tensor<B, 2>) -> Tensor<B, 2> {
    let [batch, _, dim] = states.dims();
    let summed = (states * keep.clone().unsqueeze_dim(2))
        .sum_dim(1)
        .reshape([batch, dim]);
    summed / keep.sum_dim(1).clamp_min(1.0)
}

/// Multi-head self-attention written out with four adaptable linears (query, key, value,
/// output), so each can carry a LoRA update.
#[derive(Module, Debug)]
pub struct SelfAttention<B: Backend> {
    pub query: AdaptedLinear<B>,
    pub key: AdaptedLinear<B>,
    pub value: AdaptedLinear<B>,
    pub output: AdaptedLinear<B>,
    pub heads: usize,
}

impl<B: Backend> SelfAttention<B> {
    /// `dim` must be divisible by `heads`.
    pub fn new(dim: usize, heads: usize, device: &B::Device) -> Self {
        assert!(
            heads > 0 && dim.is_multiple_of(heads),
            "attention width {dim} is not divisible by {heads} heads"
        );
        let linear = || AdaptedLinear::from(init::linear(dim, dim, device));
        Self {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            heads,
        }
    }

    /// `x: [batch * tokens, dim]`, the tokens of each example in consecutive rows; `key_bias`,
    /// broadcast to `[batch, heads, tokens, tokens]`, is added to the attention scores (a large
    /// negative value hides a padded key).
    pub fn forward(
        &self,
        x: Tensor<B, 2>,
        tokens: usize,
        key_bias: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 2> {
        let [rows, dim] = x.dims();
        let batch = rows / tokens;
        let head_dim = dim / self.heads;
        let split = |t: Tensor<B, 2>| {
            t.reshape([batch, tokens, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.query.forward(x.clone()));
        let k = split(self.key.forward(x.clone()));
        let v = split(self.value.forward(x));

        let mut scores = q.matmul(k.transpose()) / (head_dim as f64).sqrt();
        if let Some(bias) = key_bias {
            scores = scores + bias;
        }
        let context = softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([rows, dim]);
        self.output.forward(context)
    }
}
