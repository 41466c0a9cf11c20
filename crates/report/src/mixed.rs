//! The random-intercept model over tasks that the primary tests rest on: every (task, seed)
//! cell is used, the tasks stay the independent units.
//!
//! `y_ts = x_t' beta + u_t + e_ts`, `u_t ~ N(0, tau^2)`, `e_ts ~ N(0, sigma^2)`, with `x_t` a
//! row of the fixed-effect design that is constant within a task (the intercept, or the task's
//! shift). Fitted by REML, which, unlike ML, does not shrink the variances by the fixed
//! effects it estimates. Because `x_t` is constant within a task, everything reduces to
//! per-task summaries: with `rho = tau^2 / (tau^2 + sigma^2)`, each task mean gets the weight
//! `w_t = n_t / (1 - rho + n_t rho)`, and the REML criterion with `tau^2 + sigma^2` profiled
//! out is a function of `rho` alone, maximised on `[0, 1)` by a grid and a golden-section
//! refinement (so `tau^2 = 0`, the boundary, is reached exactly). Seeds may be unbalanced.
//!
//! The fixed effects' covariance is the GLS one, `(X' V^-1 X)^-1` at the REML variances, as
//! nlme and lme4 report it. (statsmodels' `bse_fe` inverts its observed Hessian including the
//! fixed-by-variance block, which differs slightly for unbalanced seeds; see
//! `tools/reference/mixed_model_fixture.py`.)

/// One task's runs: its design row and one value per seed.
pub(crate) struct Group {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

/// A REML fit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fit {
    pub beta: Vec<f64>,
    /// Covariance of `beta`.
    pub cov: Vec<Vec<f64>>,
    /// Between-task variance.
    pub tau2: f64,
    /// Within-task (seed) variance; 0 when every task's seeds agree exactly, or each task has
    /// one seed: then the two cannot be told apart and `tau2` carries the whole spread.
    pub sigma2: f64,
    pub tasks: usize,
    pub runs: usize,
}

/// What the fit needs of a task: its design row, number of seeds and mean.
struct Task<'a> {
    x: &'a [f64],
    n: f64,
    mean: f64,
}

/// Steps of the grid over `rho` before the golden-section refinement: the criterion can have
/// more than one local maximum with unbalanced seeds, so the search starts global.
const GRID: usize = 200;

/// `None` with no more tasks than fixed effects (nothing left to estimate `tau^2` from), or
/// a design that does not identify `beta` (a column no task uses).
pub(crate) fn reml(groups: &[Group]) -> Option<Fit> {
    let groups: Vec<&Group> = groups.iter().filter(|g| !g.y.is_empty()).collect();
    let p = groups.first()?.x.len();
    let tasks: Vec<Task> = groups
        .iter()
        .map(|g| Task {
            x: &g.x,
            n: g.y.len() as f64,
            mean: g.y.iter().sum::<f64>() / g.y.len() as f64,
        })
        .collect();
    let runs: usize = groups.iter().map(|g| g.y.len()).sum();
    if tasks.len() <= p {
        return None;
    }
    let within: f64 = groups
        .iter()
        .zip(&tasks)
        .map(|(g, t)| g.y.iter().map(|y| (y - t.mean).powi(2)).sum::<f64>())
        .sum();
    let all: Vec<f64> = groups.iter().flat_map(|g| g.y.iter().copied()).collect();
    let grand = all.iter().sum::<f64>() / all.len() as f64;
    let total: f64 = all.iter().map(|y| (y - grand).powi(2)).sum();
    // No seed-to-seed spread: the criterion grows without bound towards sigma^2 = 0, whose
    // limit is the fit to the task means alone.
    let rho = match runs == tasks.len() || within <= 1e-12 * total {
        true => 1.0,
        false => best_rho(|rho| criterion(&tasks, within, runs, p, rho)),
    };
    let (beta, inverse, rss) = gls(&tasks, within, rho)?;
    let (tau2, sigma2) = match rho < 1.0 {
        true => {
            let total_var = rss / (runs - p) as f64;
            (rho * total_var, (1.0 - rho) * total_var)
        }
        false => (rss / (tasks.len() - p) as f64, 0.0),
    };
    let scale = tau2 + sigma2;
    let cov = inverse
        .iter()
        .map(|row| row.iter().map(|v| v * scale).collect())
        .collect();
    Some(Fit {
        beta,
        cov,
        tau2,
        sigma2,
        tasks: tasks.len(),
        runs,
    })
}

fn weight(t: &Task, rho: f64) -> f64 {
    t.n / (1.0 - rho + t.n * rho)
}

/// GLS at `rho`: `beta`, `(X' W X)^-1` and the residual quadratic form `r' V^-1 r` in units
/// of `tau^2 + sigma^2` (at `rho = 1`, the task means' residual sum of squares).
fn gls(tasks: &[Task], within: f64, rho: f64) -> Option<(Vec<f64>, Vec<Vec<f64>>, f64)> {
    let p = tasks[0].x.len();
    let mut info = vec![vec![0.0; p]; p];
    let mut rhs = vec![0.0; p];
    for t in tasks {
        let w = weight(t, rho);
        for ((row, r), xi) in info.iter_mut().zip(&mut rhs).zip(t.x) {
            *r += w * xi * t.mean;
            for (cell, xj) in row.iter_mut().zip(t.x) {
                *cell += w * xi * xj;
            }
        }
    }
    let (inverse, _) = invert(&info)?;
    let beta: Vec<f64> = (0..p)
        .map(|i| (0..p).map(|j| inverse[i][j] * rhs[j]).sum())
        .collect();
    let between: f64 = tasks
        .iter()
        .map(|t| weight(t, rho) * (t.mean - dot(t.x, &beta)).powi(2))
        .sum();
    let quadratic = match rho < 1.0 {
        true => within / (1.0 - rho) + between,
        false => between,
    };
    Some((beta, inverse, quadratic))
}

/// -2 x the REML log-likelihood at `rho`, with `beta` and `tau^2 + sigma^2` profiled out (up
/// to a constant): `(N - p) ln(Q / (N - p)) + sum_t [(n_t - 1) ln(1 - rho) +
/// ln(1 - rho + n_t rho)] + ln det(X' W X)`.
fn criterion(tasks: &[Task], within: f64, runs: usize, p: usize, rho: f64) -> f64 {
    let Some((_, inverse, q)) = gls(tasks, within, rho) else {
        return f64::INFINITY;
    };
    let Some((_, log_det_inverse)) = invert(&inverse) else {
        return f64::INFINITY;
    };
    let df = (runs - p) as f64;
    let log_det_v: f64 = tasks
        .iter()
        .map(|t| (t.n - 1.0) * (1.0 - rho).ln() + (1.0 - rho + t.n * rho).ln())
        .sum();
    df * (q / df).ln() + log_det_v - log_det_inverse
}

/// The `rho` in `[0, 1)` minimising `f`: the best of a grid, refined by golden section within
/// its neighbours, unless the grid point itself is better. The grid starts at `rho = 0`, so a
/// boundary estimate comes out exactly 0 (the refinement only approaches it).
fn best_rho(f: impl Fn(f64) -> f64) -> f64 {
    let top = 1.0 - 1e-12;
    let grid: Vec<f64> = (0..GRID).map(|i| i as f64 / GRID as f64).collect();
    let best = (0..GRID)
        .min_by(|&i, &j| f(grid[i]).total_cmp(&f(grid[j])))
        .unwrap_or(0);
    let low = best.checked_sub(1).map_or(0.0, |i| grid[i]);
    let high = grid.get(best + 1).copied().unwrap_or(top);
    let (mut a, mut b) = (low, high);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let (c, d) = (b - ratio * (b - a), a + ratio * (b - a));
        match f(c) < f(d) {
            true => b = d,
            false => a = c,
        }
    }
    let refined = (a + b) / 2.0;
    [grid[best], refined]
        .into_iter()
        .min_by(|&x, &y| f(x).total_cmp(&f(y)))
        .unwrap_or(refined)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The inverse of a symmetric positive-definite matrix and the log of its determinant, by
/// Cholesky; `None` if it is not positive definite.
pub(crate) fn invert(a: &[Vec<f64>]) -> Option<(Vec<Vec<f64>>, f64)> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    let log_det = 2.0 * (0..n).map(|i| l[i][i].ln()).sum::<f64>();
    // A^-1 column by column; symmetric, so the columns are its rows too.
    let inverse = (0..n)
        .map(|c| {
            let unit: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i == c))).collect();
            cholesky_solve(&l, &unit)
        })
        .collect();
    Some((inverse, log_det))
}

/// Solves `L L' x = b` by forward, then back substitution.
fn cholesky_solve(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let n = l.len();
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - dot(&l[i][..i], &y[..i])) / l[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let later: f64 = (i + 1..n).map(|k| l[k][i] * x[k]).sum();
        x[i] = (y[i] - later) / l[i][i];
    }
    x
}

/// The Wald test of "every entry of `beta` is equal" (the shift means of an interaction
/// model), with `L` the differences from the first entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wald {
    /// `(L beta)' (L C L')^-1 (L beta)`; invariant to how the design codes the shifts.
    pub statistic: f64,
    /// Per entry `i`, the statistic's noncentrality per squared point when entry `i` alone is
    /// off from the others (the diagonal of `L' (L C L')^-1 L`): for power.
    pub one_off: Vec<f64>,
}

/// `None` with fewer than two entries, or when `L C L'` is singular.
pub(crate) fn wald_equal(fit: &Fit) -> Option<Wald> {
    let q = fit.beta.len().checked_sub(1).filter(|&q| q > 0)?;
    let diff: Vec<f64> = (1..=q).map(|j| fit.beta[j] - fit.beta[0]).collect();
    let c = &fit.cov;
    let lcl: Vec<Vec<f64>> = (1..=q)
        .map(|i| {
            (1..=q)
                .map(|j| c[i][j] - c[i][0] - c[0][j] + c[0][0])
                .collect()
        })
        .collect();
    let (k, _) = invert(&lcl)?;
    let statistic = (0..q)
        .map(|i| (0..q).map(|j| diff[i] * k[i][j] * diff[j]).sum::<f64>())
        .sum();
    // L's column 0 is all -1, column i >= 1 the unit vector of row i - 1.
    let first = k.iter().flatten().sum();
    let one_off = std::iter::once(first)
        .chain((0..q).map(|i| k[i][i]))
        .collect();
    Some(Wald { statistic, one_off })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// `tests/fixtures/mixed_model.json`, written by `tools/reference/mixed_model_fixture.py`.
    #[derive(Deserialize)]
    struct Fixture {
        generated_by: String,
        datasets: std::collections::BTreeMap<String, Vec<Row>>,
        fits: std::collections::BTreeMap<String, Reference>,
    }

    #[derive(Deserialize)]
    struct Row {
        task: String,
        shift: String,
        d: f64,
    }

    #[derive(Deserialize)]
    struct Reference {
        mu: f64,
        se_gls: f64,
        se_statsmodels: f64,
        tau2: f64,
        sigma2: f64,
        shift: ShiftReference,
    }

    #[derive(Deserialize)]
    struct ShiftReference {
        means: std::collections::BTreeMap<String, f64>,
        tau2: f64,
        sigma2: f64,
        wald_gls: f64,
    }

    fn fixture() -> Fixture {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mixed_model.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// The rows grouped by task in order of appearance; `by_shift` codes each task's shift
    /// as an indicator over the sorted shift names (cell means), else an intercept.
    fn groups(rows: &[Row], by_shift: bool) -> (Vec<Group>, Vec<String>) {
        let mut shifts: Vec<String> = rows.iter().map(|r| r.shift.clone()).collect();
        shifts.sort();
        shifts.dedup();
        let mut groups: Vec<(String, Group)> = Vec::new();
        for r in rows {
            if !groups.iter().any(|(t, _)| t == &r.task) {
                let x = match by_shift {
                    true => shifts
                        .iter()
                        .map(|s| f64::from(u8::from(s == &r.shift)))
                        .collect(),
                    false => vec![1.0],
                };
                groups.push((r.task.clone(), Group { x, y: Vec::new() }));
            }
            let group = groups.iter_mut().find(|(t, _)| t == &r.task).unwrap();
            group.1.y.push(r.d);
        }
        (groups.into_iter().map(|(_, g)| g).collect(), shifts)
    }

    fn close(got: f64, want: f64, what: &str) {
        let tolerance = 1e-4 * want.abs().max(1e-3);
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: {got} vs statsmodels {want}"
        );
    }

    #[test]
    fn reml_matches_statsmodels_on_the_fixture() {
        let fixture = fixture();
        assert!(fixture.generated_by.contains("statsmodels"));
        assert_eq!(fixture.fits.len(), 3);
        for (name, reference) in &fixture.fits {
            let rows = &fixture.datasets[name];
            let fit = reml(&groups(rows, false).0).unwrap();
            close(fit.beta[0], reference.mu, &format!("{name} mu"));
            close(
                fit.cov[0][0].sqrt(),
                reference.se_gls,
                &format!("{name} se"),
            );
            // statsmodels' own SE adds its fixed-by-variance Hessian block: 1.5e-4 relative
            // on the unbalanced set, nothing on the others.
            let se = fit.cov[0][0].sqrt();
            let gap = (se - reference.se_statsmodels).abs() / se;
            assert!(
                gap < 1e-3,
                "{name}: {se} vs bse_fe {}",
                reference.se_statsmodels
            );
            close(fit.tau2, reference.tau2, &format!("{name} tau2"));
            close(fit.sigma2, reference.sigma2, &format!("{name} sigma2"));
            assert_eq!(fit.runs, rows.len());
        }
        assert_eq!(
            fixture.fits["boundary"].tau2, 0.0,
            "the fixture's boundary case"
        );
        let boundary = reml(&groups(&fixture.datasets["boundary"], false).0).unwrap();
        assert_eq!(boundary.tau2, 0.0, "the boundary is reached exactly");
    }

    #[test]
    fn the_shift_model_and_its_wald_test_match_statsmodels() {
        let fixture = fixture();
        for (name, reference) in &fixture.fits {
            let (groups, shifts) = groups(&fixture.datasets[name], true);
            let fit = reml(&groups).unwrap();
            let r = &reference.shift;
            for (shift, mean) in shifts.iter().zip(&fit.beta) {
                close(*mean, r.means[shift], &format!("{name} {shift} mean"));
            }
            close(fit.tau2, r.tau2, &format!("{name} shift tau2"));
            close(fit.sigma2, r.sigma2, &format!("{name} shift sigma2"));
            close(
                wald_equal(&fit).unwrap().statistic,
                r.wald_gls,
                &format!("{name} Wald"),
            );
        }
    }

    fn group(y: &[f64]) -> Group {
        Group {
            x: vec![1.0],
            y: y.to_vec(),
        }
    }

    #[test]
    fn degenerate_spreads_fall_back_to_the_task_means() {
        // One seed per task: the t over task means (mean 2, variance 1, SE 1/sqrt 3).
        let fit = reml(&[group(&[1.0]), group(&[2.0]), group(&[3.0])]).unwrap();
        assert!((fit.beta[0] - 2.0).abs() < 1e-12 && (fit.tau2 - 1.0).abs() < 1e-12);
        assert!((fit.cov[0][0] - 1.0 / 3.0).abs() < 1e-12 && fit.sigma2 == 0.0);
        // Seeds that agree exactly within each task: the same.
        let fit = reml(&[group(&[1.0, 1.0]), group(&[2.0, 2.0]), group(&[3.0])]).unwrap();
        assert!(
            (fit.beta[0] - 2.0).abs() < 1e-12 && fit.sigma2 == 0.0,
            "{fit:?}"
        );
        // No spread at all.
        let fit = reml(&[group(&[5.0, 5.0]), group(&[5.0])]).unwrap();
        assert!((fit.beta[0] - 5.0).abs() < 1e-12 && fit.tau2 < 1e-20 && fit.cov[0][0] < 1e-20);
        assert!(reml(&[group(&[1.0, 2.0])]).is_none(), "one task");
    }

    #[test]
    fn balanced_reml_has_the_anova_closed_form() {
        // Balanced, interior: tau^2 = (MSB - MSW) / n, sigma^2 = MSW (REML = ANOVA here).
        // Task means 1, 3, 8; MSB = 3 * 13 = 39, MSW = 1, so tau^2 = 38 / 3.
        let fit = reml(&[
            group(&[0.0, 1.0, 2.0]),
            group(&[2.0, 3.0, 4.0]),
            group(&[7.0, 8.0, 9.0]),
        ])
        .unwrap();
        // The criterion is flat at its peak: rho is found to ~1e-8 relative.
        assert!((fit.sigma2 - 1.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.tau2 - 38.0 / 3.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.cov[0][0] - 13.0 / 3.0).abs() < 1e-6, "{fit:?}");
    }
}
