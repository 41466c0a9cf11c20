use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Draw every lazily initialised parameter of `module` now.
///
/// burn initialises parameters on first use, and a clone taken before that draws its own
/// random values: `let b = a.clone()` would give two different models. Every constructor in
/// loramix returns materialised modules so that clones are copies.
pub fn materialize<B: Backend, M: Module<B>>(module: M) -> M {
    struct Materialize;
    impl<B: Backend> ModuleMapper<B> for Materialize {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            Param::from_mapped_value(id, tensor, mapper)
        }
    }
    module.map(&mut Materialize)
}
