use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use loramix_lora::{
    ADAPTER_FORMAT, Adapter, AdapterHost, AdapterLayer, AdapterManifest, CompositionRecord,
    LayerShape, Target,
};
use nalgebra::DMatrix;

use crate::error::{ComposeError, Result};

/// A composition re-compressed to one ordinary adapter.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// Rank `rank` in every layer, `alpha = rank` (scale 1); its manifest records `record`.
    pub adapter: Adapter,
    /// Relative Frobenius error `||D - D_r|| / ||D||` of each layer (0 when `rank` sufficed).
    pub layer_errors: Vec<(String, f64)>,
}

/// Re-compress every layer's update (trainable LoRA, composition, or both) to rank `rank`.
///
/// Works on the factors `D = L R` (`L: [d_in, k]`, `R: [k, d_out]`, `k = sum r_i`): QR of `L`
/// and of `R^T`, then an SVD of the small `k x k` core, so no `d_in x d_out` matrix is
/// decomposed. The truncation is the best rank-`rank` approximation (Eckart-Young), and its error
/// follows from the dropped singular values. `record.approximation_error` is set to the largest
/// layer error.
pub fn compress<B: Backend, H: AdapterHost<B>>(
    host: &H,
    rank: usize,
    task: &str,
    mut record: CompositionRecord,
) -> Result<Compressed> {
    if rank == 0 {
        return Err(ComposeError::OutOfRange {
            name: "rank",
            range: "1 or more",
            value: 0.0,
        });
    }
    let mut shapes = Vec::new();
    let mut layers = Vec::new();
    let mut layer_errors = Vec::new();
    let mut targets = BTreeSet::new();
    for (name, layer) in host.adaptable_layers() {
        let Some((left, right)) = layer.update_factors() else {
            continue;
        };
        let (a, b, error) = truncate(&to_matrix(left), &to_matrix(right), rank);
        if let Some(target) = name
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<Target>().ok())
        {
            targets.insert(target);
        }
        shapes.push(LayerShape {
            name: name.clone(),
            d_in: layer.d_in(),
            d_out: layer.d_out(),
            rank,
        });
        // PEFT layout: lora_A [rank, d_in] = a^T, lora_B [d_out, rank] = b^T, both row-major.
        layers.push(AdapterLayer {
            a: row_major(&a.transpose()),
            b: row_major(&b.transpose()),
        });
        layer_errors.push((name, error));
    }
    if layers.is_empty() {
        return Err(ComposeError::NothingComposed { action: "compress" });
    }
    record.approximation_error = layer_errors.iter().map(|(_, e)| *e).fold(0.0, f64::max);
    let adapter = Adapter {
        manifest: AdapterManifest {
            format: ADAPTER_FORMAT.to_string(),
            task: task.to_string(),
            rank,
            alpha: rank as f32,
            targets: targets.into_iter().collect(),
            base_fingerprint: host.fingerprint(),
            layers: shapes,
            metrics: BTreeMap::new(),
            composition: Some(record),
        },
        layers,
        origin: None,
    };
    Ok(Compressed {
        adapter,
        layer_errors,
    })
}

/// Best rank-`rank` factors `(A: [d_in, rank], B: [rank, d_out])` of `left * right`, zero-padded
/// when the product has lower rank, and the relative error of the truncation.
fn truncate(
    left: &DMatrix<f64>,
    right: &DMatrix<f64>,
    rank: usize,
) -> (DMatrix<f64>, DMatrix<f64>, f64) {
    let (d_in, d_out) = (left.nrows(), right.ncols());
    let left_qr = left.clone().qr();
    let right_qr = right.transpose().qr();
    let core = left_qr.r() * right_qr.r().transpose();
    let svd = core.svd(true, true);
    let (u, v_t) = (svd.u.expect("requested"), svd.v_t.expect("requested"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));

    let q_left = left_qr.q();
    let q_right = right_qr.q();
    let mut a = DMatrix::zeros(d_in, rank);
    let mut b = DMatrix::zeros(rank, d_out);
    for (k, &i) in order.iter().take(rank).enumerate() {
        let root = svd.singular_values[i].sqrt();
        a.set_column(k, &(&q_left * u.column(i) * root));
        b.set_row(k, &(&q_right * v_t.row(i).transpose() * root).transpose());
    }
    let total: f64 = svd.singular_values.iter().map(|s| s * s).sum();
    let dropped: f64 = order
        .iter()
        .skip(rank)
        .map(|&i| svd.singular_values[i].powi(2))
        .sum();
    let error = if total > 0.0 {
        (dropped / total).sqrt()
    } else {
        0.0
    };
    (a, b, error)
}

fn to_matrix<B: Backend>(tensor: Tensor<B, 2>) -> DMatrix<f64> {
    let [rows, cols] = tensor.dims();
    let values = tensor
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("f64");
    DMatrix::from_row_slice(rows, cols, &values)
}

fn row_major(matrix: &DMatrix<f64>) -> Vec<f32> {
    (0..matrix.nrows())
        .flat_map(|i| (0..matrix.ncols()).map(move |j| matrix[(i, j)] as f32))
        .collect()
}
