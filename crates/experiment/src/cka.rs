//! Linear centred kernel alignment (Kornblith et al. 2019) between two representations of the
//! same examples: 1 for representations equal up to rotation and scale, near 0 for unrelated.

/// Linear CKA of `x` `[n, d1]` and `y` `[n, d2]` (rows are the same `n` examples):
/// `||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)` with column-centred `Xc`, `Yc`.
/// Returns 0 when either representation is constant.
///
/// # Panics
/// If the row counts differ.
pub fn linear_cka(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    assert_eq!(
        x.len(),
        y.len(),
        "CKA needs the same examples on both sides"
    );
    let (x, y) = (centred(x), centred(y));
    let cross = gram_norm_sq(&x, &y);
    let (xx, yy) = (gram_norm_sq(&x, &x).sqrt(), gram_norm_sq(&y, &y).sqrt());
    if xx == 0.0 || yy == 0.0 {
        return 0.0;
    }
    cross / (xx * yy)
}

/// Debiased linear CKA (Kornblith et al. 2019, after the unbiased HSIC estimator of Song et al.
/// 2012): plain linear CKA is biased upwards when the examples are fewer than the feature
/// dimensions, and two unrelated representations can score near 1; this one is near 0 for
/// them. From the Gram matrices `K = X X^T`, `L = Y Y^T` with zeroed diagonals,
/// `HSIC(K, L) = [tr(K L) + (1'K1)(1'L1) / ((n-1)(n-2)) - 2/(n-2) 1'K L 1] / (n(n-3))` and
/// CKA `= HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`. `None` under 4 examples or where either
/// representation's own HSIC is not positive (constant, or too few examples to say).
///
/// # Panics
/// If the row counts differ.
pub fn debiased_linear_cka(x: &[Vec<f64>], y: &[Vec<f64>]) -> Option<f64> {
    assert_eq!(
        x.len(),
        y.len(),
        "CKA needs the same examples on both sides"
    );
    let n = x.len();
    if n < 4 {
        return None;
    }
    let (k, l) = (hollow_gram(x), hollow_gram(y));
    let hsic = |a: &[Vec<f64>], b: &[Vec<f64>]| {
        let trace: f64 = (a.iter().zip(b))
            .map(|(ra, rb)| ra.iter().zip(rb).map(|(u, v)| u * v).sum::<f64>())
            .sum();
        let row_sums = |m: &[Vec<f64>]| -> Vec<f64> { m.iter().map(|r| r.iter().sum()).collect() };
        let (sa, sb) = (row_sums(a), row_sums(b));
        let (total_a, total_b): (f64, f64) = (sa.iter().sum(), sb.iter().sum());
        let cross: f64 = sa.iter().zip(&sb).map(|(u, v)| u * v).sum();
        let n = n as f64;
        (trace + total_a * total_b / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * cross)
            / (n * (n - 3.0))
    };
    let (kk, ll) = (hsic(&k, &k), hsic(&l, &l));
    (kk > 0.0 && ll > 0.0).then(|| hsic(&k, &l) / (kk * ll).sqrt())
}

/// `X X^T` with its diagonal set to 0.
fn hollow_gram(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..rows.len())
        .map(|i| {
            (0..rows.len())
                .map(|j| match i == j {
                    true => 0.0,
                    false => rows[i].iter().zip(&rows[j]).map(|(u, v)| u * v).sum(),
                })
                .collect()
        })
        .collect()
}

fn centred(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = rows.len().max(1) as f64;
    let d = rows.first().map_or(0, Vec::len);
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    rows.iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect()
}

/// `||A^T B||_F^2` for row-major `a` `[n, da]` and `b` `[n, db]`.
fn gram_norm_sq(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let da = a.first().map_or(0, Vec::len);
    let db = b.first().map_or(0, Vec::len);
    let mut sum = 0.0;
    for i in 0..da {
        for j in 0..db {
            let dot: f64 = a.iter().zip(b).map(|(ra, rb)| ra[i] * rb[j]).sum();
            sum += dot * dot;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use loramix_rng::Rng;

    fn random(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| (0..d).map(|_| rng.normal() as f64).collect())
            .collect()
    }

    #[test]
    fn identical_representations_score_one() {
        let x = random(50, 6, 1);
        assert!((linear_cka(&x, &x) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn invariant_to_rotation_scale_and_shift() {
        let x = random(50, 2, 2);
        let (c, s) = (0.6_f64, 0.8_f64);
        let y: Vec<Vec<f64>> = x
            .iter()
            .map(|r| {
                vec![
                    3.0 * (c * r[0] - s * r[1]) + 5.0,
                    3.0 * (s * r[0] + c * r[1]) - 1.0,
                ]
            })
            .collect();
        assert!((linear_cka(&x, &y) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn unrelated_representations_score_low() {
        let cka = linear_cka(&random(400, 4, 3), &random(400, 4, 4));
        assert!(cka < 0.1, "{cka}");
    }

    /// Six examples with 3 and 2 features; the expected values are numpy's, from the
    /// feature-space formulas of Kornblith et al.'s reference code (another derivation than
    /// the Gram one here): `x -= x.mean(0); ||x'y||^2 / (||x'x|| ||y'y||)` and, debiased,
    /// each product corrected by `- n/(n-2) s_x.s_y + |x|^2 |y|^2 / ((n-1)(n-2))` with `s` the
    /// rows' squared norms.
    #[test]
    fn match_numpy_on_a_small_example() {
        let rows = |m: &[&[f64]]| -> Vec<Vec<f64>> { m.iter().map(|r| r.to_vec()).collect() };
        let x = rows(&[
            &[1., 2., 0.],
            &[0., 1., 3.],
            &[2., 2., 1.],
            &[1., 0., 0.],
            &[3., 1., 2.],
            &[0., 2., 2.],
        ]);
        let y = rows(&[
            &[1., 0.],
            &[2., 1.],
            &[0., 0.],
            &[1., 1.],
            &[2., 3.],
            &[1., 2.],
        ]);
        assert!((linear_cka(&x, &y) - 0.3040441311945017).abs() < 1e-12);
        let debiased = debiased_linear_cka(&x, &y).unwrap();
        assert!(
            (debiased - -0.12704931690339716).abs() < 1e-12,
            "{debiased}"
        );
    }

    #[test]
    fn debiased_scores_one_for_the_same_representation_up_to_rotation_scale_and_shift() {
        let x = random(30, 2, 6);
        let (c, s) = (0.6_f64, 0.8_f64);
        let y: Vec<Vec<f64>> = (x.iter())
            .map(|r| {
                vec![
                    3.0 * (c * r[0] - s * r[1]) + 5.0,
                    3.0 * (s * r[0] + c * r[1]) - 1.0,
                ]
            })
            .collect();
        assert!((debiased_linear_cka(&x, &x).unwrap() - 1.0).abs() < 1e-12);
        assert!((debiased_linear_cka(&x, &y).unwrap() - 1.0).abs() < 1e-9);
    }

    /// What the debiasing is for: 50 examples in 384 dimensions, as the studies' CKA sees
    /// them. Two unrelated representations score high on plain linear CKA, near 0 debiased.
    #[test]
    fn debiased_is_near_zero_where_plain_cka_is_high_for_unrelated_wide_representations() {
        for seed in 0..3 {
            let (x, y) = (random(50, 384, 10 + seed), random(50, 384, 20 + seed));
            let (plain, debiased) = (linear_cka(&x, &y), debiased_linear_cka(&x, &y).unwrap());
            assert!(plain > 0.8, "{plain}");
            assert!(debiased.abs() < 0.1, "{debiased}");
        }
    }

    #[test]
    fn debiased_is_undefined_for_a_constant_representation_or_under_4_examples() {
        let x = random(10, 3, 5);
        assert_eq!(debiased_linear_cka(&x, &vec![vec![1.0, 2.0]; 10]), None);
        assert_eq!(debiased_linear_cka(&x[..3], &x[..3]), None);
    }

    #[test]
    fn constant_representation_scores_zero() {
        let x = random(10, 3, 5);
        let y = vec![vec![1.0, 2.0]; 10];
        assert_eq!(linear_cka(&x, &y), 0.0);
    }
}
