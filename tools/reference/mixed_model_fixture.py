#!/usr/bin/env python3
"""Reference values for loramix-report's random-intercept model and power figures.

Usage:
    python tools/reference/mixed_model_fixture.py crates/report/tests/fixtures/mixed_model.json

Needs numpy, scipy, pandas and statsmodels (pip install statsmodels). Nothing is downloaded;
the datasets are drawn from a fixed numpy seed and rounded to 0.01, and the rounded values
are what the fixture stores, so the Rust tests refit exactly these numbers.

Writes one JSON file with:

  datasets    three small sets of paired differences d (points), one row per (task, seed):
              "balanced"   6 tasks x 3 seeds, 2 tasks per shift;
              "unbalanced" 7 tasks with 1 to 5 seeds;
              "boundary"   6 tasks x 4 seeds whose task means differ by less than the seeds'
                           noise predicts, so REML puts tau^2 on its boundary, 0. There
                           mixedlm's optimiser stops short (converged False, tau^2 ~0.01), so
                           the script checks with statsmodels' own REML log-likelihood that it
                           falls as tau^2 rises from ~0, and the reference is the fit at
                           tau^2 = 0: statsmodels' OLS (sigma^2 = RSS / (N - p)). What mixedlm
                           said is kept beside it ("mixedlm").
  fits        per dataset, statsmodels' REML fits
              mixedlm("d ~ 1", groups="task", re_formula="1").fit(reml=True) and the same
              with "d ~ C(shift)" (treatment coding), both with method=["bfgs"], gtol=1e-12
              (the default settings agree to ~3e-6 relative; tighter makes the reference
              sharper than the Rust tests' 1e-4):
                mu, se_statsmodels (bse_fe; OLS bse on the boundary), tau2 (cov_re),
                sigma2 (scale), and
                se_gls = sqrt((X' V^-1 X)^-1), V_t = sigma2 I + tau2 J at those variances.
                statsmodels'
                bse_fe inverts its observed Hessian including the fixed-by-variance cross
                block, which vanishes only for balanced data; the GLS form is the usual
                one (nlme, lme4) and the one loramix reports, so the tests compare SEs with
                se_gls and record se_statsmodels beside it.
                For "d ~ C(shift)": the shift means (intercept + contrasts), and the Wald
                statistic of "all shift means equal" from the fitted parameters and the GLS
                covariance (wald_gls) and from statsmodels' cov_params (wald_statsmodels).
  power       the effect size d (difference / sd) a one-sample t test over nobs units
              detects with the given power: statsmodels.stats.power.TTestPower().solve_power
              (solve_power, good to ~1e-6 relative) and the same solved tightly on
              TTestPower().power (effect_size).
  nct_cdf     scipy.stats.nct.cdf(x, df, nc) at a few points.
  ncf         scipy.stats.ncf: the noncentrality lambda at which an F(d1, d2) test at level
              alpha has the given power (brentq on ncf.sf), and ncf.cdf at a few points.
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.formula.api as smf
from scipy import optimize, stats
from statsmodels.regression.mixed_linear_model import MixedLMParams
from statsmodels.stats.power import TTestPower

SHIFTS = ["covariate", "label", "task"]


def dataset(rng, seeds, shifts, tau, sigma, shift_effect, centre_tasks=False):
    """centre_tasks: each task's seeds are centred on its mean, so task means differ by tau
    only (much less than sigma / sqrt(n) predicts when tau is small)."""
    rows = []
    for t, (n, shift) in enumerate(zip(seeds, shifts)):
        u = rng.normal(0.0, tau)
        e = rng.normal(0.0, sigma, n)
        if centre_tasks:
            e = e - e.mean()
        for s in range(n):
            d = 1.0 + shift_effect[shift] + u + e[s]
            rows.append({"task": f"t{t}", "shift": shift, "seed": s, "d": round(float(d), 2)})
    return rows


def datasets():
    rng = np.random.default_rng(20260532)  # both sets' fits converge inside the bounds
    effect = {"covariate": 0.0, "label": 1.5, "task": -1.0}
    two_each = [s for s in SHIFTS for _ in range(2)]
    return {
        "balanced": dataset(rng, [3] * 6, two_each, 2.0, 1.5, effect),
        "unbalanced": dataset(
            rng,
            [3, 1, 5, 2, 4, 3, 2],
            ["covariate", "covariate", "label", "label", "label", "task", "task"],
            2.0,
            1.5,
            effect,
        ),
        "boundary": dataset(
            rng, [4] * 6, two_each, 0.3, 2.0, dict.fromkeys(SHIFTS, 0.0), centre_tasks=True
        ),
    }


def fit(df, formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm(formula, df, groups=df["task"], re_formula="1")
        return model.fit(reml=True, method=["bfgs"], gtol=1e-12)


def gls_cov(df, design, tau2, sigma2):
    """The GLS covariance of the fixed effects, (X' V^-1 X)^-1 with V_t = sigma2 I + tau2 J."""
    p = design.shape[1]
    info = np.zeros((p, p))
    for rows in df.groupby("task").indices.values():
        x = design[rows]
        n = len(rows)
        v = sigma2 * np.eye(n) + tau2 * np.ones((n, n))
        info += x.T @ np.linalg.solve(v, x)
    return np.linalg.inv(info)


def reml_peaks_at_zero(model):
    """statsmodels' own REML log-likelihood (fixed effects and scale profiled out) of a
    fitted model falls as tau^2 / sigma^2 rises from ~0: the estimate sits on the boundary."""
    k = model.k_fe
    values = [
        model.loglike(MixedLMParams.from_components(np.zeros(k), cov_re=np.array([[r]])))
        for r in [1e-8, 1e-6, 1e-4, 1e-2, 1e-1]
    ]
    return all(a > b for a, b in zip(values, values[1:]))


def reference_fit(df, formula, boundary):
    """(fixed effects, their GLS covariance, tau2, sigma2, what statsmodels' mixedlm said).

    On the boundary, mixedlm's optimiser stops short of tau^2 = 0 (converged False, a small
    positive tau^2); there the REML fit is ordinary least squares, whose sigma^2 is
    RSS / (N - p), so the reference is statsmodels' OLS, once reml_peaks_at_zero holds."""
    mixed = fit(df, formula)
    said = {"tau2": float(mixed.cov_re.values[0, 0]), "converged": bool(mixed.converged)}
    if boundary:
        assert reml_peaks_at_zero(mixed.model), formula
        ols = smf.ols(formula, df).fit()
        return ols.params.values, np.asarray(ols.cov_params()), 0.0, float(ols.scale), said
    assert mixed.converged, formula
    tau2, sigma2 = said["tau2"], float(mixed.scale)
    design = np.asarray(mixed.model.exog)
    cov = gls_cov(df, design, tau2, sigma2)
    said["se"] = [float(v) for v in mixed.bse_fe]
    said["cov"] = np.asarray(mixed.cov_params())[: len(mixed.fe_params), : len(mixed.fe_params)]
    return mixed.fe_params.values, cov, tau2, sigma2, said


def fits(rows, boundary):
    df = pd.DataFrame(rows)
    beta, cov, tau2, sigma2, said = reference_fit(df, "d ~ 1", boundary)
    out = {
        "mu": float(beta[0]),
        "se_gls": float(np.sqrt(cov[0, 0])),
        "se_statsmodels": said.get("se", [float(np.sqrt(cov[0, 0]))])[0],
        "tau2": tau2,
        "sigma2": sigma2,
        "mixedlm": {"tau2": said["tau2"], "converged": said["converged"]},
    }
    beta, cov, tau2, sigma2, said = reference_fit(df, "d ~ C(shift)", boundary)
    contrasts = np.eye(len(beta))[1:]
    lb = contrasts @ beta

    def wald(c):
        return float(lb @ np.linalg.solve(contrasts @ c @ contrasts.T, lb))

    names = sorted(df["shift"].unique())
    out["shift"] = {
        "means": {name: float(beta[0] + (beta[i] if i else 0.0)) for i, name in enumerate(names)},
        "tau2": tau2,
        "sigma2": sigma2,
        "wald_gls": wald(cov),
        "wald_statsmodels": wald(said.get("cov", cov)),
        "mixedlm": {"tau2": said["tau2"], "converged": said["converged"]},
    }
    return out


def power_cases():
    """solve_power stops at ~1e-6 in power (its effect size is ~1e-6 off, relative), so the
    effect size is also solved tightly (brentq, xtol 1e-14) on statsmodels' own power
    function; both are kept."""
    solver = TTestPower()
    cases = []
    for nobs, alpha, power, alternative in [
        (6, 0.05, 0.8, "larger"),
        (6, 0.01, 0.8, "larger"),
        (6, 0.05 / 5, 0.8, "two-sided"),
        (3, 0.05, 0.8, "larger"),
        (12, 0.0125, 0.9, "larger"),
        (30, 0.05, 0.8, "two-sided"),
    ]:
        solved = solver.solve_power(nobs=nobs, alpha=alpha, power=power, alternative=alternative)

        def gap(d):
            got = solver.power(effect_size=d, nobs=nobs, alpha=alpha, alternative=alternative)
            return float(np.ravel(got)[0]) - power

        high = 2.0 * float(np.ravel(solved)[0])
        tight = optimize.brentq(gap, 1e-3, high, xtol=1e-14, rtol=1e-14)
        cases.append(
            {"nobs": nobs, "alpha": alpha, "power": power, "alternative": alternative,
             "effect_size": tight, "solve_power": float(np.ravel(solved)[0])}
        )
    return cases


def nct_cases():
    points = [(1.5, 1, 0.5), (-2.0, 2, 1.0), (2.5, 5, 3.0), (1.9, 29, 2.2), (10.0, 3, 4.0)]
    return [{"x": x, "df": df, "nc": nc, "cdf": float(stats.nct.cdf(x, df, nc))}
            for x, df, nc in points]


def ncf_cases():
    solved = []
    for d1, d2, alpha, power in [(1, 4, 0.05, 0.8), (2, 3, 0.01, 0.8), (2, 27, 0.05, 0.8)]:
        crit = stats.f.isf(alpha, d1, d2)
        lam = optimize.brentq(lambda l: stats.ncf.sf(crit, d1, d2, l) - power, 1e-6, 1e4,
                              xtol=1e-12, rtol=1e-14)
        solved.append({"d1": d1, "d2": d2, "alpha": alpha, "power": power, "lambda": lam})
    cdf = [{"x": x, "d1": d1, "d2": d2, "nc": nc, "cdf": float(stats.ncf.cdf(x, d1, d2, nc))}
           for x, d1, d2, nc in [(2.0, 1, 4, 3.0), (5.0, 2, 3, 10.0), (1.2, 2, 27, 0.5)]]
    return {"solved": solved, "cdf": cdf}


def main(out):
    sets = datasets()
    fixture = {
        "generated_by": (
            f"tools/reference/mixed_model_fixture.py with statsmodels {statsmodels.__version__},"
            f" scipy {scipy.__version__}, numpy {np.__version__}, pandas {pd.__version__}"
        ),
        "datasets": sets,
        "fits": {name: fits(rows, name == "boundary") for name, rows in sets.items()},
        "power": power_cases(),
        "nct_cdf": nct_cases(),
        "ncf": ncf_cases(),
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
