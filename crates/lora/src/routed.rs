use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{IndexingUpdateOp, Int, Tensor};

use crate::ModuleFactors;
use crate::stacked::side_by_side;

/// Frozen modules routed per token (Arrow, Ostapenko et al. 2024, as PEFT implements it): each
/// input row `x` scores module `e` by `|x . p_e|` against the module's prototype, keeps the
/// `top_k` best, weighs them by a softmax of their scores over `temperature`, and adds
/// `sum_e c_e s_e x A_e B_e`.
///
/// Every module's factors sit side by side as in a [`StackedDelta`](crate::StackedDelta), so
/// the update is two thin matmuls with per-row column weights; no module is gathered per token.
#[derive(Module, Debug)]
pub struct RoutedDelta<B: Backend> {
    /// One unit-norm prototype per module, `[E, d_in]`.
    pub prototypes: Tensor<B, 2>,
    /// Every module's `A` side by side, `[d_in, R]`.
    pub a: Tensor<B, 2>,
    /// Every module's `s_e B_e` stacked, `[R, d_out]`.
    pub b: Tensor<B, 2>,
    /// Module index of each rank column, `[R]`.
    pub column_module: Tensor<B, 1, Int>,
    /// Modules combined per row.
    pub top_k: usize,
    /// Softmax temperature of the routing scores.
    pub temperature: f32,
}

impl<B: Backend> RoutedDelta<B> {
    /// Routes over `factors` (one per module, numbered `0..E` in order) with `prototypes`
    /// (`[E, d_in]`); `top_k` is at most `E`.
    pub fn new(
        factors: Vec<ModuleFactors<B>>,
        prototypes: Tensor<B, 2>,
        top_k: usize,
        temperature: f32,
    ) -> Self {
        let modules = prototypes.dims()[0];
        assert!(
            (1..=modules).contains(&top_k),
            "top_k {top_k} with {modules} modules"
        );
        let (a, b, column_module) = side_by_side(factors, &prototypes.device());
        Self {
            prototypes,
            a,
            b,
            column_module,
            top_k,
            temperature,
        }
    }

    /// Number of routed modules `E`.
    pub fn n_modules(&self) -> usize {
        self.prototypes.dims()[0]
    }

    /// Each row's module weights, `[rows, E]`: a softmax over its `top_k` scores, 0 elsewhere.
    pub fn routing(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        let scores = input.matmul(self.prototypes.clone().transpose()).abs();
        let zeros = scores.zeros_like();
        let (top, chosen) = scores.topk_with_indices(self.top_k, 1);
        let weights = softmax(top / self.temperature, 1);
        zeros.scatter(1, chosen, weights, IndexingUpdateOp::Add)
    }

    /// The routed update for input rows `[rows, d_in]`.
    pub fn forward(&self, input: Tensor<B, 2>) -> Tensor<B, 2> {
        let columns = self
            .routing(input.clone())
            .select(1, self.column_module.clone());
        (input.matmul(self.a.clone()) * columns).matmul(self.b.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use loramix_backend::Inference;

    fn values(t: Tensor<Inference, 2>) -> Vec<Vec<f32>> {
        let [rows, cols] = t.dims();
        let flat = t.into_data().to_vec::<f32>().unwrap();
        (0..rows)
            .map(|r| flat[r * cols..(r + 1) * cols].to_vec())
            .collect()
    }

    fn dot(x: &[f32], y: &[f32]) -> f32 {
        x.iter().zip(y).map(|(a, b)| a * b).sum()
    }

    /// Per row, by hand: score every module, keep the best `k`, softmax, sum their updates.
    #[test]
    fn each_row_adds_its_top_k_modules_weighted_by_a_softmax_of_their_scores() {
        let device = Default::default();
        let (d_in, d_out, ranks, k, temperature) = (5, 4, [2, 1, 3], 2, 0.7);
        let normal = Distribution::Normal(0.0, 1.0);
        let factors: Vec<ModuleFactors<Inference>> = (ranks.iter().enumerate())
            .map(|(module, &r)| ModuleFactors {
                module,
                a: Tensor::random([d_in, r], normal, &device),
                b: Tensor::random([r, d_out], normal, &device),
                scale: 0.5 + module as f32,
            })
            .collect();
        let expected_factors: Vec<_> = (factors.iter())
            .map(|f| (values(f.a.clone()), values(f.b.clone()), f.scale))
            .collect();
        let prototypes = Tensor::<Inference, 2>::random([3, d_in], normal, &device);
        let input = Tensor::<Inference, 2>::random([6, d_in], normal, &device);
        let routed = RoutedDelta::new(factors, prototypes.clone(), k, temperature);
        let got = values(routed.forward(input.clone()));

        let prototypes = values(prototypes);
        for (x, row) in values(input).iter().zip(got) {
            let scores: Vec<f32> = prototypes.iter().map(|p| dot(x, p).abs()).collect();
            let mut order: Vec<usize> = (0..3).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let top = &order[..k];
            let total: f32 = top.iter().map(|&e| (scores[e] / temperature).exp()).sum();
            let mut expected = vec![0.0f32; d_out];
            for &e in top {
                let c = (scores[e] / temperature).exp() / total;
                let (a, b, s) = &expected_factors[e];
                // x A: one value per rank column of the module.
                let low: Vec<f32> = (0..a[0].len())
                    .map(|j| (0..d_in).map(|i| x[i] * a[i][j]).sum())
                    .collect();
                for (o, out) in expected.iter_mut().enumerate() {
                    *out += c * s * (0..low.len()).map(|j| low[j] * b[j][o]).sum::<f32>();
                }
            }
            for (g, e) in row.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-4, "{row:?} vs {expected:?}");
            }
        }
    }
}
