//! A composition written back as one ordinary adapter: exactly (rank `sum r_i`), or compressed
//! to rank `r` by a truncated SVD whose error is reported. What PEFT export writes.

use std::collections::{BTreeMap, BTreeSet};

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use loramix_lora::{
    ADAPTER_FORMAT, Adapter, AdapterHost, AdapterLayer, AdapterManifest, CompositionRecord,
    LayerShape, Target,
};
use nalgebra::DMatrix;

use crate::error::{ComposeError, Result};

/// A composition as one ordinary adapter.
#[derive(Debug, Clone)]
pub struct Compressed {
    /// Its manifest records the composition (`record`) with the largest layer error.
    pub adapter: Adapter,
    /// Relative Frobenius error `||D - D_r|| / ||D||` of each layer (0 when exact).
    pub layer_errors: Vec<(String, f64)>,
}

/// One layer of an exported adapter: PEFT-layout factors whose product `B A` is the update.
struct ExportLayer {
    name: String,
    d_in: usize,
    d_out: usize,
    rank: usize,
    /// `[rank, d_in]`, row-major.
    a: Vec<f32>,
    /// `[d_out, rank]`, row-major, the whole update (scale 1).
    b: Vec<f32>,
    error: f64,
}

/// Every layer's attached update (trainable LoRA, composition, or both) as one adapter, exactly:
/// a layer composed of modules of ranks `r_i` gets rank `sum r_i`, its `A` the modules' `A`
/// stacked and its `B` the modules' `B` scaled by `w_i s_i / s` (`s` the exported layer's
/// scale). Layers whose rank differs keep it (PEFT's `rank_pattern`).
pub fn export_exact<B: Backend, H: AdapterHost<B>>(
    host: &H,
    task: &str,
    record: CompositionRecord,
) -> Result<Compressed> {
    let mut layers = Vec::new();
    for (name, layer) in host.adaptable_layers() {
        let Some((left, right)) = layer.update_factors() else {
            continue;
        };
        let rank = left.dims()[1];
        let (a, b) = (values(left.transpose()), values(right.transpose()));
        if let Some(bad) = a.iter().chain(&b).find(|v| !v.is_finite()) {
            return Err(not_finite(&name, *bad as f64));
        }
        layers.push(ExportLayer {
            name,
            d_in: layer.d_in(),
            d_out: layer.d_out(),
            rank,
            a,
            b,
            error: 0.0,
        });
    }
    build(host, layers, task, record)
}

/// Re-compress every layer's attached update to rank `rank`.
///
/// Works on the factors `D = L R` (`L: [d_in, k]`, `R: [k, d_out]`, `k = sum r_i`): QR of `L`
/// and of `R^T`, then an SVD of the small `k x k` core, so no `d_in x d_out` matrix is
/// decomposed; when the modules stack wider than the layer (`k > min(d_in, d_out)`), the
/// `d_in x d_out` product is the smaller one and is decomposed instead. The truncation is the
/// best rank-`rank` approximation (Eckart-Young), and its error follows from the dropped
/// singular values.
pub fn compress<B: Backend, H: AdapterHost<B>>(
    host: &H,
    rank: usize,
    task: &str,
    record: CompositionRecord,
) -> Result<Compressed> {
    check_rank(host, rank)?;
    let mut layers = Vec::new();
    for (name, layer) in host.adaptable_layers() {
        let Some((left, right)) = layer.update_factors() else {
            continue;
        };
        let (left, right) = (
            finite(&name, to_matrix(left))?,
            finite(&name, to_matrix(right))?,
        );
        let (a, b, error) = truncate_factors(&name, &left, &right, rank)?;
        layers.push(export_layer(name, a, b, error));
    }
    build(host, layers, task, record)
}

/// Compress dense updates (`deltas[i]` for the `i`-th adaptable layer of `host`, `[d_in, d_out]`,
/// `None` where nothing changes) to rank `rank` by a truncated SVD: how a TIES or DARE merge,
/// whose result is not low-rank, becomes an adapter.
pub fn compress_dense<B: Backend, H: AdapterHost<B>>(
    host: &H,
    deltas: Vec<Option<Tensor<B, 2>>>,
    rank: usize,
    task: &str,
    record: CompositionRecord,
) -> Result<Compressed> {
    check_rank(host, rank)?;
    let mut layers = Vec::new();
    for ((name, _), delta) in host.adaptable_layers().into_iter().zip(deltas) {
        let Some(delta) = delta else { continue };
        let delta = finite(&name, to_matrix(delta))?;
        let (a, b, error) = truncate_dense(&name, delta, rank)?;
        layers.push(export_layer(name, a, b, error));
    }
    build(host, layers, task, record)
}

/// Refuses a rank of 0 or above the widest layer's `min(d_in, d_out)`: no layer's update has a
/// higher rank, and the zero-padded factors of a larger one would only cost memory.
fn check_rank<B: Backend, H: AdapterHost<B>>(host: &H, rank: usize) -> Result<()> {
    let most = max_rank(host);
    if rank == 0 || rank > most {
        return Err(ComposeError::RankOutOfRange { rank, most });
    }
    Ok(())
}

/// The highest rank any adaptable layer of `host` can have: its largest `min(d_in, d_out)`.
pub fn max_rank<B: Backend, H: AdapterHost<B>>(host: &H) -> usize {
    host.adaptable_layers()
        .iter()
        .map(|(_, l)| l.d_in().min(l.d_out()))
        .max()
        .unwrap_or(0)
}

fn not_finite(layer: &str, value: f64) -> ComposeError {
    ComposeError::NotFinite {
        layer: layer.to_string(),
        detail: format!("an entry is {value}"),
    }
}

/// `matrix`, if every entry is finite.
fn finite(layer: &str, matrix: DMatrix<f64>) -> Result<DMatrix<f64>> {
    match matrix.iter().find(|v| !v.is_finite()) {
        Some(&bad) => Err(not_finite(layer, bad)),
        None => Ok(matrix),
    }
}

/// A layer from factors `a: [d_in, rank]`, `b: [rank, d_out]` in this crate's layout.
fn export_layer(name: String, a: DMatrix<f64>, b: DMatrix<f64>, error: f64) -> ExportLayer {
    ExportLayer {
        name,
        d_in: a.nrows(),
        d_out: b.ncols(),
        rank: a.ncols(),
        a: row_major(&a.transpose()),
        b: row_major(&b.transpose()),
        error,
    }
}

/// The adapter of `layers`, with `alpha` the largest rank: each layer's `B` is divided by its
/// scale `alpha / rank` so that the stored update is exactly the given one.
fn build<B: Backend, H: AdapterHost<B>>(
    host: &H,
    layers: Vec<ExportLayer>,
    task: &str,
    mut record: CompositionRecord,
) -> Result<Compressed> {
    if layers.is_empty() {
        return Err(ComposeError::NothingComposed { action: "export" });
    }
    let alpha = layers.iter().map(|l| l.rank).max().unwrap_or(1);
    let mut targets = BTreeSet::new();
    let mut shapes = Vec::new();
    let mut factors = Vec::new();
    let mut layer_errors = Vec::new();
    for layer in layers {
        if let Some(target) = layer
            .name
            .rsplit('.')
            .next()
            .and_then(|t| t.parse::<Target>().ok())
        {
            targets.insert(target);
        }
        let unscale = layer.rank as f32 / alpha as f32;
        factors.push(AdapterLayer {
            a: layer.a,
            b: layer.b.into_iter().map(|v| v * unscale).collect(),
        });
        shapes.push(LayerShape {
            name: layer.name.clone(),
            d_in: layer.d_in,
            d_out: layer.d_out,
            rank: layer.rank,
        });
        layer_errors.push((layer.name, layer.error));
    }
    record.approximation_error = layer_errors.iter().map(|(_, e)| *e).fold(0.0, f64::max);
    let adapter = Adapter {
        manifest: AdapterManifest {
            format: ADAPTER_FORMAT.to_string(),
            task: task.to_string(),
            rank: alpha,
            alpha: alpha as f32,
            targets: targets.into_iter().collect(),
            base_fingerprint: host.fingerprint(),
            layers: shapes,
            metrics: BTreeMap::new(),
            composition: Some(record),
        },
        layers: factors,
        origin: None,
    };
    Ok(Compressed {
        adapter,
        layer_errors,
    })
}

/// Best rank-`rank` factors `(A: [d_in, rank], B: [rank, d_out])` of `left * right`, zero-padded
/// when the product has lower rank, and the relative error of the truncation.
fn truncate_factors(
    layer: &str,
    left: &DMatrix<f64>,
    right: &DMatrix<f64>,
    rank: usize,
) -> Result<(DMatrix<f64>, DMatrix<f64>, f64)> {
    // Stacked wider than the layer (many modules): the dense product is the smaller matrix.
    if left.ncols() > left.nrows().min(right.ncols()) {
        return truncate_dense(layer, finite(layer, left * right)?, rank);
    }
    let left_qr = left.clone().qr();
    let right_qr = right.transpose().qr();
    let core = finite(layer, left_qr.r() * right_qr.r().transpose())?;
    let (u, sigma, v) = svd(layer, core)?;
    Ok(truncated(
        &(left_qr.q() * u),
        &sigma,
        &(right_qr.q() * v),
        rank,
    ))
}

/// The same for a dense `[d_in, d_out]` update.
fn truncate_dense(
    layer: &str,
    delta: DMatrix<f64>,
    rank: usize,
) -> Result<(DMatrix<f64>, DMatrix<f64>, f64)> {
    let (u, sigma, v) = svd(layer, delta)?;
    Ok(truncated(&u, &sigma, &v, rank))
}

/// `m = u diag(sigma) v^T` with `sigma` sorted in decreasing order. nalgebra's plain `svd` has
/// no iteration cap (it spins forever on input it cannot converge on); this one has.
fn svd(layer: &str, m: DMatrix<f64>) -> Result<(DMatrix<f64>, Vec<f64>, DMatrix<f64>)> {
    let iterations = 10_000.max(100 * m.nrows().max(m.ncols()));
    let svd = m
        .try_svd(true, true, f64::EPSILON, iterations)
        .ok_or_else(|| ComposeError::SvdDiverged {
            layer: layer.to_string(),
            iterations,
        })?;
    let (u, v_t) = (svd.u.expect("requested"), svd.v_t.expect("requested"));
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
    let u = DMatrix::from_columns(&order.iter().map(|&i| u.column(i)).collect::<Vec<_>>());
    let v = DMatrix::from_columns(
        &order
            .iter()
            .map(|&i| v_t.row(i).transpose())
            .collect::<Vec<_>>(),
    );
    let sigma = order.iter().map(|&i| svd.singular_values[i]).collect();
    Ok((u, sigma, v))
}

/// Rank-`rank` factors `(u_r sqrt(s_r), sqrt(s_r) v_r^T)` and the relative error of dropping the
/// rest; columns beyond the available singular values are zero.
fn truncated(
    u: &DMatrix<f64>,
    sigma: &[f64],
    v: &DMatrix<f64>,
    rank: usize,
) -> (DMatrix<f64>, DMatrix<f64>, f64) {
    let mut a = DMatrix::zeros(u.nrows(), rank);
    let mut b = DMatrix::zeros(rank, v.nrows());
    for (k, s) in sigma.iter().take(rank).enumerate() {
        let root = s.sqrt();
        a.set_column(k, &(u.column(k) * root));
        b.set_row(k, &(v.column(k) * root).transpose());
    }
    let total: f64 = sigma.iter().map(|s| s * s).sum();
    let dropped: f64 = sigma.iter().skip(rank).map(|s| s * s).sum();
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

fn values<B: Backend>(tensor: Tensor<B, 2>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32")
}

fn row_major(matrix: &DMatrix<f64>) -> Vec<f32> {
    (0..matrix.nrows())
        .flat_map(|i| (0..matrix.ncols()).map(move |j| matrix[(i, j)] as f32))
        .collect()
}
