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

    #[test]
    fn constant_representation_scores_zero() {
        let x = random(10, 3, 5);
        let y = vec![vec![1.0, 2.0]; 10];
        assert_eq!(linear_cka(&x, &y), 0.0);
    }
}
