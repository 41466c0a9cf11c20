use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Several frozen low-rank updates of one layer applied as one rank-`R = sum r_i` path:
/// `x A diag(c) B`, where `A = [A_1 .. A_N]`, `B = [s_1 B_1; ..; s_N B_N]` and the rank columns of
/// module `i` are scaled by its weight `w_i`. This is exactly `sum_i w_i s_i x A_i B_i` (no cross
/// terms between modules) at the cost of two thin matmuls, and no `d_in x d_out` matrix is built.
///
/// The factors are constants, not parameters: only `weights` may change, and a learned
/// composition sets it from its own parameters before each forward.
#[derive(Module, Debug)]
pub struct StackedDelta<B: Backend> {
    /// Every module's `A` side by side, `[d_in, R]`.
    pub a: Tensor<B, 2>,
    /// Every module's `s_i B_i` stacked, `[R, d_out]`.
    pub b: Tensor<B, 2>,
    /// Module index of each rank column, `[R]`.
    pub column_module: Tensor<B, 1, Int>,
    /// Weight of each module, `[N]`.
    pub weights: Tensor<B, 1>,
}

/// One module's factors for a layer: `a: [d_in, r]`, `b: [r, d_out]`, its scale and its index
/// among all modules of the composition.
pub struct ModuleFactors<B: Backend> {
    pub module: usize,
    pub a: Tensor<B, 2>,
    pub b: Tensor<B, 2>,
    pub scale: f32,
}

/// The modules' factors side by side: every `A` as `[d_in, R]`, every `s_i B_i` stacked as
/// `[R, d_out]`, and the module of each of the `R` rank columns.
pub(crate) fn side_by_side<B: Backend>(
    factors: Vec<ModuleFactors<B>>,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 1, Int>) {
    let columns: Vec<i64> = factors
        .iter()
        .flat_map(|f| std::iter::repeat_n(f.module as i64, f.a.dims()[1]))
        .collect();
    let rank = columns.len();
    let (a, b): (Vec<_>, Vec<_>) = factors.into_iter().map(|f| (f.a, f.b * f.scale)).unzip();
    (
        Tensor::cat(a, 1),
        Tensor::cat(b, 0),
        Tensor::from_data(TensorData::new(columns, [rank]), device),
    )
}

impl<B: Backend> StackedDelta<B> {
    /// Stack `factors` (at least one) for a composition of `weights.dims()[0]` modules; a module
    /// with no factors for this layer contributes nothing here.
    pub fn new(factors: Vec<ModuleFactors<B>>, weights: Tensor<B, 1>) -> Self {
        assert!(
            !factors.is_empty(),
            "a stacked update needs at least one module"
        );
        let (a, b, column_module) = side_by_side(factors, &weights.device());
        Self {
            a,
            b,
            column_module,
            weights,
        }
    }

    /// Number of modules `N` of the composition.
    pub fn n_modules(&self) -> usize {
        self.weights.dims()[0]
    }

    /// Total rank `R`.
    pub fn rank(&self) -> usize {
        self.a.dims()[1]
    }

    /// The same factors with other module weights (`[N]`).
    pub fn with_weights(self, weights: Tensor<B, 1>) -> Self {
        Self { weights, ..self }
    }

    /// Per rank column weight `c_j = w_{module(j)}`, `[R]`.
    fn column_weights(&self) -> Tensor<B, 1> {
        self.weights.clone().select(0, self.column_module.clone())
    }

    /// `x A diag(c) B` for input `[..., d_in]`.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let low = input.matmul(self.a.clone().unsqueeze::<D>());
        (low * self.column_weights().unsqueeze::<D>()).matmul(self.b.clone().unsqueeze::<D>())
    }

    /// `(A, diag(c) B)`: two factors whose product is the update. The weights go on the `B`
    /// side so that an exported composition keeps every module's `A` as it was trained.
    pub fn factors(&self) -> (Tensor<B, 2>, Tensor<B, 2>) {
        (
            self.a.clone(),
            self.b.clone() * self.column_weights().unsqueeze_dim::<2>(1),
        )
    }

    /// The dense update `A diag(c) B`, `[d_in, d_out]`: for folding and tests, never per step.
    pub fn delta_weight(&self) -> Tensor<B, 2> {
        let (left, right) = self.factors();
        left.matmul(right)
    }
}
