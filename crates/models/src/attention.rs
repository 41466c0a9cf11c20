use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use loramix_lora::AdaptedLinear;

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
        let linear = || AdaptedLinear::from(LinearConfig::new(dim, dim).init(device));
        Self {
            query: linear(),
            key: linear(),
            value: linear(),
            output: linear(),
            heads,
        }
    }

    /// `x: [batch, tokens, dim]`; `key_bias`, broadcast to `[batch, heads, tokens, tokens]`, is
    /// added to the attention scores (a large negative value hides a padded key).
    pub fn forward(&self, x: Tensor<B, 3>, key_bias: Option<Tensor<B, 4>>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let head_dim = dim / self.heads;
        let split = |t: Tensor<B, 3>| {
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
            .reshape([batch, tokens, dim]);
        self.output.forward(context)
    }
}
