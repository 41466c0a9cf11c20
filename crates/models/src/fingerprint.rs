use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use sha2::{Digest, Sha256};

/// A SHA-256 over a description of the architecture and every float parameter (shape and
/// little-endian f32 bytes, in module order) of `parts`: two models share a fingerprint only if
/// they compute the same function.
pub fn fingerprint<B: Backend>(architecture: &str, parts: &[&dyn Fingerprinted<B>]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(architecture.as_bytes());
    for part in parts {
        part.hash_into(&mut hasher);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{}", &hex[..24])
}

/// Anything whose parameters go into a [`fingerprint`]: every burn module.
pub trait Fingerprinted<B: Backend> {
    fn hash_into(&self, hasher: &mut Sha256);
}

impl<B: Backend, M: Module<B>> Fingerprinted<B> for M {
    fn hash_into(&self, hasher: &mut Sha256) {
        self.visit(&mut HashVisitor { hasher });
    }
}

struct HashVisitor<'a> {
    hasher: &'a mut Sha256,
}

impl<B: Backend> ModuleVisitor<B> for HashVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let data = param.val().into_data().convert::<f32>();
        for dim in data.shape.iter() {
            self.hasher.update((*dim as u64).to_le_bytes());
        }
        self.hasher.update(data.as_bytes());
    }
}
