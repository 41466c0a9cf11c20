//! Power: the smallest effect a primary test could have detected, so a non-detection reads
//! "would have detected >= X points" rather than as evidence of no effect.
//!
//! Exact, not normal approximations: with 3 to 30 tasks the t and F tails matter. statrs has
//! neither the noncentral t nor the noncentral F, so both CDFs are computed here:
//! - noncentral t: `P(T <= x) = integral_0^inf Phi(x s - nc) g(s) ds`, `g` the density of
//!   `sqrt(chi^2_df / df)`, by adaptive Simpson over the window holding all but ~1e-25 of it;
//! - noncentral F: the Poisson(lambda / 2) mixture of regularised incomplete beta functions.

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::{beta_reg, inv_beta_reg};
use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

/// The power a primary test is sized for.
pub(crate) const POWER: f64 = 0.8;

/// The standard normal CDF.
fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The upper `alpha` quantile of Student's t (computed at `alpha`, not `1 - alpha`, so small
/// levels keep their digits).
pub(crate) fn t_upper(alpha: f64, df: f64) -> f64 {
    -StudentsT::new(0.0, 1.0, df)
        .expect("df > 0")
        .inverse_cdf(alpha)
}

/// The upper `alpha` quantile of F(d1, d2), through the beta distribution of
/// `d2 / (d1 F + d2)`, again at `alpha` itself.
pub(crate) fn f_upper(alpha: f64, d1: f64, d2: f64) -> f64 {
    let z = inv_beta_reg(d2 / 2.0, d1 / 2.0, alpha);
    d2 * (1.0 - z) / (d1 * z)
}

/// `P(T <= x)` for the noncentral t with `df` degrees of freedom and noncentrality `nc`.
pub(crate) fn nct_cdf(x: f64, df: f64, nc: f64) -> f64 {
    let log_norm = std::f64::consts::LN_2 + df / 2.0 * (df / 2.0).ln() - ln_gamma(df / 2.0);
    let density = |s: f64| match s > 0.0 {
        true => (log_norm + (df - 1.0) * s.ln() - df * s * s / 2.0).exp(),
        false if df == 1.0 => log_norm.exp(),
        false => 0.0,
    };
    let mode = ((df - 1.0).max(0.0) / df).sqrt();
    let spread = 15.0 / (2.0 * df).sqrt();
    let (low, high) = ((mode - spread).max(0.0), mode + spread);
    integrate(&|s| phi(x * s - nc) * density(s), low, high).clamp(0.0, 1.0)
}

/// The power of a one-sided (upper) t test on `df` degrees of freedom at level `alpha` when
/// the noncentrality is `nc`. Every t-based primary test is one-sided (TOST is two of them).
pub(crate) fn t_power(nc: f64, df: f64, alpha: f64) -> f64 {
    1.0 - nct_cdf(t_upper(alpha, df), df, nc)
}

/// The noncentrality (true effect / its standard error) at which that test has `power`.
pub(crate) fn t_detectable(df: f64, alpha: f64, power: f64) -> f64 {
    solve_increasing(|nc| t_power(nc, df, alpha), power)
}

/// `P(F <= x)` for the noncentral F(d1, d2) with noncentrality `lambda`.
pub(crate) fn ncf_cdf(x: f64, d1: f64, d2: f64, lambda: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let y = d1 * x / (d1 * x + d2);
    let half = lambda / 2.0;
    if half == 0.0 {
        return beta_reg(d1 / 2.0, d2 / 2.0, y);
    }
    let terms = (half + 12.0 * half.sqrt() + 40.0).ceil() as usize;
    (0..=terms)
        .map(|j| {
            let j = j as f64;
            let log_weight = -half + j * half.ln() - ln_gamma(j + 1.0);
            log_weight.exp() * beta_reg(d1 / 2.0 + j, d2 / 2.0, y)
        })
        .sum::<f64>()
        .clamp(0.0, 1.0)
}

/// The noncentrality `lambda` at which an F(d1, d2) test at level `alpha` has `power`.
pub(crate) fn f_detectable(d1: f64, d2: f64, alpha: f64, power: f64) -> f64 {
    let critical = f_upper(alpha, d1, d2);
    solve_increasing(|lambda| 1.0 - ncf_cdf(critical, d1, d2, lambda), power)
}

/// The `x >= 0` where the increasing `f` reaches `target`, by bisection after doubling an
/// upper bracket.
fn solve_increasing(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let mut high = 1.0;
    while f(high) < target && high < 1e6 {
        high *= 2.0;
    }
    let mut low = 0.0;
    for _ in 0..80 {
        let mid = (low + high) / 2.0;
        match f(mid) < target {
            true => low = mid,
            false => high = mid,
        }
    }
    (low + high) / 2.0
}

/// Adaptive Simpson over 64 panels of `[a, b]`, each to an absolute error near 1e-14.
fn integrate(f: &dyn Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let panels = 64;
    let h = (b - a) / panels as f64;
    (0..panels)
        .map(|i| {
            let (l, r) = (a + i as f64 * h, a + (i + 1) as f64 * h);
            let (fl, fm, fr) = (f(l), f((l + r) / 2.0), f(r));
            let whole = (r - l) / 6.0 * (fl + 4.0 * fm + fr);
            simpson(f, [l, r], [fl, fm, fr], whole, 1e-14, 40)
        })
        .sum()
}

fn simpson(
    f: &dyn Fn(f64) -> f64,
    [a, b]: [f64; 2],
    [fa, fm, fb]: [f64; 3],
    whole: f64,
    tol: f64,
    depth: u32,
) -> f64 {
    let m = (a + b) / 2.0;
    let (flm, frm) = (f((a + m) / 2.0), f((m + b) / 2.0));
    let left = (m - a) / 6.0 * (fa + 4.0 * flm + fm);
    let right = (b - m) / 6.0 * (fm + 4.0 * frm + fb);
    let error = left + right - whole;
    if depth == 0 || error.abs() <= 15.0 * tol {
        return left + right + error / 15.0;
    }
    simpson(f, [a, m], [fa, flm, fm], left, tol / 2.0, depth - 1)
        + simpson(f, [m, b], [fm, frm, fb], right, tol / 2.0, depth - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// The power parts of `tests/fixtures/mixed_model.json` (statsmodels and scipy values).
    #[derive(Deserialize)]
    struct Fixture {
        power: Vec<PowerCase>,
        nct_cdf: Vec<NctCase>,
        ncf: NcfCases,
    }

    #[derive(Deserialize)]
    struct PowerCase {
        nobs: usize,
        alpha: f64,
        power: f64,
        alternative: String,
        /// Solved to 1e-14 on statsmodels' `TTestPower().power`.
        effect_size: f64,
        /// `TTestPower().solve_power` itself, good to ~1e-6.
        solve_power: f64,
    }

    #[derive(Deserialize)]
    struct NctCase {
        x: f64,
        df: f64,
        nc: f64,
        cdf: f64,
    }

    #[derive(Deserialize)]
    struct NcfCases {
        solved: Vec<NcfSolved>,
        cdf: Vec<NcfCdf>,
    }

    #[derive(Deserialize)]
    struct NcfSolved {
        d1: f64,
        d2: f64,
        alpha: f64,
        power: f64,
        lambda: f64,
    }

    #[derive(Deserialize)]
    struct NcfCdf {
        x: f64,
        d1: f64,
        d2: f64,
        nc: f64,
        cdf: f64,
    }

    fn fixture() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mixed_model.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn noncentral_t_cdf_matches_scipy() {
        let cases = fixture().nct_cdf;
        assert!(cases.len() >= 5);
        for c in cases {
            let got = nct_cdf(c.x, c.df, c.nc);
            assert!(
                (got - c.cdf).abs() < 1e-9,
                "nct({}, {}, {}) = {got}, scipy {}",
                c.x,
                c.df,
                c.nc,
                c.cdf
            );
        }
        // Zero noncentrality is Student's t.
        let t = StudentsT::new(0.0, 1.0, 4.0).unwrap();
        assert!((nct_cdf(1.3, 4.0, 0.0) - t.cdf(1.3)).abs() < 1e-10);
    }

    /// The two-sided test's noncentrality at `power`, as statsmodels' "two-sided" solves it.
    fn two_sided_detectable(df: f64, alpha: f64, power: f64) -> f64 {
        let c = t_upper(alpha / 2.0, df);
        let two_sided = |nc| 1.0 - nct_cdf(c, df, nc) + nct_cdf(-c, df, nc);
        solve_increasing(two_sided, power)
    }

    #[test]
    fn detectable_effect_sizes_match_statsmodels() {
        let cases = fixture().power;
        assert!(cases.len() >= 6);
        for c in cases {
            let df = (c.nobs - 1) as f64;
            let nc = match c.alternative.as_str() {
                "larger" => t_detectable(df, c.alpha, c.power),
                _ => two_sided_detectable(df, c.alpha, c.power),
            };
            let d = nc / (c.nobs as f64).sqrt();
            assert!(
                (d - c.solve_power).abs() < 1e-5 * d,
                "{d} vs {}",
                c.solve_power
            );
            assert!(
                (d - c.effect_size).abs() < 1e-9 * c.effect_size,
                "n={} alpha={} {}: {d} vs statsmodels {}",
                c.nobs,
                c.alpha,
                c.alternative,
                c.effect_size
            );
        }
    }

    #[test]
    fn noncentral_f_matches_scipy() {
        let cases = fixture().ncf;
        for c in cases.cdf {
            let got = ncf_cdf(c.x, c.d1, c.d2, c.nc);
            assert!((got - c.cdf).abs() < 1e-9, "ncf {got} vs scipy {}", c.cdf);
        }
        for c in cases.solved {
            let got = f_detectable(c.d1, c.d2, c.alpha, c.power);
            assert!(
                (got - c.lambda).abs() < 1e-6 * c.lambda,
                "lambda {got} vs scipy {}",
                c.lambda
            );
        }
        // F(1, d2) is t^2: the F test's lambda is the two-sided t test's nc squared.
        let nc = two_sided_detectable(4.0, 0.05, 0.8);
        assert!((f_detectable(1.0, 4.0, 0.05, 0.8) - nc * nc).abs() < 1e-6);
    }
}
