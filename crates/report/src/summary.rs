//! `summary.md`: the claims first, then the tables behind them, each cell a mean with its 95%
//! interval, each section saying which interval it uses.

use crate::aggregate::{self, Grid, Interval};
use crate::claims;
use crate::family::{Family, Scope};
use crate::inputs::{ReportInputs, TaskFacts};
use crate::plan::TestKind;
use crate::plot;
use crate::primary::{self, ALPHA, Measured, Primary};
use crate::resample::RESAMPLES;
use crate::resample::{RhoTest, rho_permutation};
use crate::rows::BASE_MODULE;
use crate::rows::{ResultRow, Shift};
use crate::stats::{Estimate, mean, median, p_value, spearman};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Renders the report; `plots` are the file names written to `plots/`, linked where present.
pub(crate) fn render(inputs: &ReportInputs, order: &[String], plots: &[String]) -> String {
    let mut md = format!("# {}\n\n", inputs.title);
    if !inputs.preamble.trim().is_empty() {
        md += inputs.preamble.trim_end();
        md += "\n\n";
    }
    let results = &inputs.results;
    let family = Family::of(results, &inputs.comparisons);
    let primary = primary::evaluate(&inputs.plan, inputs);
    crate::brief::write(&mut md, inputs, &primary);
    claims::write(&mut md, inputs, &primary);
    primary_tests(&mut md, inputs, &primary);

    let link = |md: &mut String, base: String, alt: &str| {
        let name = plot::svg_file(&base);
        if plots.contains(&name) {
            let _ = writeln!(md, "![{alt}](plots/{name})\n");
        }
    };
    let reference = inputs.reference_method.as_str();

    md += "## Accuracy\n\n";
    let _ = writeln!(
        md,
        "Each cell: mean test accuracy (%) over the shift's tasks (each task's mean over its \
         seeds, tasks weighted equally) and its 95% two-stage bootstrap interval [low, high]: \
         {RESAMPLES} resamples of the tasks with replacement, then of the seeds within each \
         drawn task; percentiles 2.5 and 97.5. Runs of one task share its difficulty, so the \
         tasks, not the runs, are the independent units. `(n=1)` marks a single run, which \
         has no interval.\n"
    );
    for shift in aggregate::shifts(results) {
        let keep = |r: &ResultRow| r.shift == shift;
        let name = shift.name();
        let _ = writeln!(md, "### {} shift\n", capitalise(name));
        let expected = runs_note(&mut md, results, keep);
        let grid = aggregate::accuracy(results, order, keep, Interval::Bootstrap);
        table(&mut md, &grid, expected, false);
        link(
            &mut md,
            plot::accuracy_name(shift),
            &format!("accuracy, {name} shift"),
        );

        let _ = writeln!(md, "#### Relative to `{reference}` (percentage points)\n");
        let grid = aggregate::relative(results, order, reference, keep);
        if grid.is_empty() {
            let _ = writeln!(
                md,
                "No run of `{reference}` pairs with another method here.\n"
            );
            continue;
        }
        let _ = writeln!(
            md,
            "Accuracy of the method minus that of `{reference}` on the same (task, k, seed), \
             mean and 95% two-stage bootstrap interval of those paired differences (resampled \
             as above, both methods sharing each drawn run). Descriptive only: no test is \
             made here; the tested comparisons are under Head to head.\n"
        );
        table(&mut md, &grid, expected, true);
        link(
            &mut md,
            plot::relative_name(shift),
            &format!("relative accuracy, {name} shift"),
        );
    }

    head_to_head(&mut md, &family, plots);
    per_task(&mut md, results, order, &inputs.tasks);
    cost(&mut md, results, order);
    weights(&mut md, inputs, plots);
    md
}

/// `## Primary tests`: the plan's family, one row per test, with how each was computed.
fn primary_tests(md: &mut String, inputs: &ReportInputs, primary: &[Primary]) {
    if primary.is_empty() {
        return;
    }
    let m = primary.iter().filter(|p| p.holm.is_some()).count();
    let margin = inputs.plan.margin;
    let _ = writeln!(
        md,
        "## Primary tests\n\n{}\n\nEach test of `a − b` fits a random-intercept model over \
         every (task, seed) cell (a − b in points, averaged over the test's shots within each \
         (task, seed); d = mu + u_task + e, REML): the estimate is mu with its 95% t interval \
         on tasks − 1 degrees of freedom, tau the between-task standard deviation. \
         Superiority and non-inferiority (margin {margin} points) are one-sided t tests; \
         equivalence is TOST at ±{margin} (p the larger of the two one-sided p); an \
         interaction is a Wald F of equal shift means (mu per shift; shifts − 1 and tasks − \
         shifts degrees of freedom); similarity is the two-sided permutation test of weights \
         against CKA. Holm runs over these {m} tests only; a test passes at Holm p < {ALPHA}. \
         Detectable: the true effect each test finds with 80% power at level {ALPHA}/{m} = \
         {:.4} (Holm's first step, the strictest level it can face, so conservative), from \
         the model's standard error and the exact noncentral t (one-sided) or F: for \
         non-inferiority the true a − b needed; for equivalence the margin TOST would \
         establish at a true 0 (each side at 90%, a union bound); for an interaction one \
         shift off from the others, whichever; none for a permutation test.\n\n\
         | claim | test | pair | shots | estimate [95% interval] | tau | p | Holm p | \
         detectable | verdict |\n|---:|---|---|---|---:|---:|---:|---:|---:|---|",
        claims::plan_status(inputs),
        ALPHA / m.max(1) as f64
    );
    for p in primary {
        let (estimate, tau, raw, holm, detectable) = primary_cells(p);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {estimate} | {tau} | {raw} | {holm} | {detectable} | {} |",
            p.test.claim,
            p.test.test.name(),
            escape(&claims::pair(p.test)),
            claims::shots(p.test),
            escape(&claims::reading(p, margin)),
        );
    }
    md.push('\n');
}

/// Estimate, tau, p, Holm p and detectable effect of one primary test, as table cells.
fn primary_cells(p: &Primary) -> (String, String, String, String, String) {
    let Ok(e) = &p.result else {
        let dash = || "–".to_string();
        return (dash(), dash(), dash(), dash(), dash());
    };
    let holm = p.holm.map_or("–".into(), p_value);
    let detectable = match (e.detectable, p.test.test) {
        (None, _) => "–".to_string(),
        (Some(x), TestKind::Noninferiority) => format!("true a − b ≥ {x:+.1}"),
        (Some(x), TestKind::Equivalence) => format!("margin ±{x:.1}"),
        (Some(x), TestKind::Interaction) => format!("one shift off by {x:.1}"),
        (Some(x), _) => format!("{x:.1}"),
    };
    let (estimate, tau) = match &e.measured {
        Measured::Difference(d) => (
            claims::difference(d.mean, d.interval()),
            format!("{:.1}", d.tau2.sqrt()),
        ),
        Measured::Interaction { means, tau2, .. } => {
            let means: Vec<String> = (means.iter())
                .map(|(shift, m)| format!("{} {}", shift.name(), claims::points(*m)))
                .collect();
            (means.join(", "), format!("{:.1}", tau2.sqrt()))
        }
        Measured::Similarity(r) => (format!("rho {:+.2}", r.mean), "–".into()),
    };
    (estimate, tau, p_value(e.p), holm, detectable)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Names in a table cell; a `|` would split the cell.
fn escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// Writes which tasks and seeds a section pools; returns the runs a complete cell has.
fn runs_note(md: &mut String, results: &[ResultRow], keep: impl Fn(&ResultRow) -> bool) -> usize {
    let rows: Vec<&ResultRow> = results.iter().filter(|r| keep(r)).collect();
    let tasks = aggregate::first_appearance(rows.iter().map(|r| r.task.as_str()));
    let seeds: BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    let runs: BTreeSet<(&str, u64)> = rows.iter().map(|r| (r.task.as_str(), r.seed)).collect();
    let task_list: Vec<String> = tasks.iter().map(|t| format!("`{t}`")).collect();
    let seed_list: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let _ = write!(
        md,
        "n = {} runs per cell: {} task(s) ({}) x {} seed(s) ({}); a cell with fewer runs \
         shows its n.",
        runs.len(),
        tasks.len(),
        task_list.join(", "),
        seeds.len(),
        seed_list.join(", "),
    );
    if tasks.len() == 1 {
        md.push_str(
            " One task: the bootstrap can only resample its seeds, so these intervals say \
             nothing about other tasks of this shift.",
        );
    }
    md.push_str("\n\n");
    runs.len()
}

/// A mean and its interval as the grid's kind shows it: `± half-width` for a (symmetric) t
/// interval, `[low, high]` for a bootstrap one; signed for differences.
fn cell(e: Option<&Estimate>, expected: usize, relative: bool, interval: Interval) -> String {
    let Some(e) = e else {
        return "–".into();
    };
    let number = |v: f64| match relative {
        true => format!("{v:+.1}"),
        false => format!("{v:.1}"),
    };
    let text = match (e.interval, interval) {
        (None, _) => return format!("{} (n=1)", number(e.mean)),
        (Some((low, high)), Interval::T | Interval::TWithTest(_)) => {
            format!("{} ± {:.1}", number(e.mean), (high - low) / 2.0)
        }
        (Some((low, high)), Interval::Bootstrap) => {
            format!("{} [{}, {}]", number(e.mean), number(low), number(high))
        }
    };
    match e.n == expected {
        true => text,
        false => format!("{text} (n={})", e.n),
    }
}

/// A method x k table of a grid.
fn table(md: &mut String, grid: &Grid, expected: usize, relative: bool) {
    md.push_str("| method |");
    for k in &grid.ks {
        let _ = write!(md, " {k} |");
    }
    md.push_str("\n|---|");
    md.push_str(&"---:|".repeat(grid.ks.len()));
    md.push('\n');
    for method in &grid.methods {
        let _ = write!(md, "| {} |", escape(method));
        for &k in &grid.ks {
            let e = grid.get(method, k);
            let _ = write!(md, " {} |", cell(e, expected, relative, grid.interval));
        }
        md.push('\n');
    }
    md.push('\n');
}

/// Paired differences between chosen methods, over all shifts and per shift, then every test
/// with its raw p: exploratory, the many comparisons around the primary tests.
fn head_to_head(md: &mut String, family: &Family, plots: &[String]) {
    if family.tests.is_empty() {
        return;
    }
    md.push_str(
        "## Head to head (exploratory)\n\nAccuracy of the first method minus the second's on \
         the same (task, k, seed), in percentage points: mean and 95% two-stage bootstrap \
         interval (tasks, then seeds within each task, both methods sharing each drawn run). \
         \"All shifts\" resamples every task as one population. Exploratory: these comparisons \
         are not in the analysis plan, their p-values (under [Tests](#tests)) are raw, and none \
         is called significant; only the primary tests decide a claim.\n\n",
    );
    for &scope in &family.scopes {
        let title = match scope {
            Scope::All => "All shifts".to_string(),
            Scope::Shift(s) => format!("{} shift", capitalise(s.name())),
        };
        let _ = writeln!(md, "### {title}\n");
        md.push_str("| comparison |");
        for k in &family.ks {
            let _ = write!(md, " {k} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(family.ks.len()));
        md.push('\n');
        for (a, b) in &family.pairs {
            let _ = write!(md, "| {} − {} |", escape(a), escape(b));
            for &k in &family.ks {
                let text = family.get(scope, a, b, k).map_or("–".to_string(), |t| {
                    cell(Some(&t.estimate), t.estimate.n, true, Interval::Bootstrap)
                });
                let _ = write!(md, " {text} |");
            }
            md.push('\n');
        }
        md.push('\n');
        if let Scope::Shift(s) = scope {
            let name = plot::svg_file(&plot::diff_name(s));
            if plots.contains(&name) {
                let _ = writeln!(md, "![head to head, {} shift](plots/{name})\n", s.name());
            }
        }
    }
    tests(md, family);
}

/// `+2.1 [-0.3, +4.4]`, or `+2.1 (single run)`.
fn estimate_text(e: &Estimate) -> String {
    match e.interval {
        Some(interval) => claims::difference(e.mean, interval),
        None => format!("{:+.1} (single run)", e.mean),
    }
}

/// Every exploratory test with its raw p.
fn tests(md: &mut String, family: &Family) {
    let _ = writeln!(
        md,
        "### Tests\n\nOne row per exploratory test ({} with a p-value): a paired t over task \
         means (each task's mean difference over its seeds; df = tasks - 1), or over the seeds \
         where a scope has one task, which then says nothing about other tasks. Two-sided raw \
         p, not corrected for the number of tests: with this many, several small p-values are \
         expected by chance. A single unit cannot be tested. The bootstrap interval is the one \
         the tables show; with so few tasks it is usually narrower than the t interval.\n\n\
         | scope | comparison | k | difference [bootstrap] | t over | t interval | raw p |\n\
         |---|---|---:|---:|---|---:|---:|",
        family.size()
    );
    for t in &family.tests {
        let (interval, p) = match t.t {
            Some(test) => {
                let interval = test.estimate.interval.map_or("–".into(), |(low, high)| {
                    format!("[{low:+.1}, {high:+.1}]")
                });
                (interval, p_value(test.p))
            }
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            md,
            "| {} | {} − {} | {} | {} | {} | {interval} | {p} |",
            t.scope.name(),
            escape(&t.a),
            escape(&t.b),
            t.k,
            estimate_text(&t.estimate),
            t.units.text(),
        );
    }
    md.push('\n');
}

fn per_task(
    md: &mut String,
    results: &[ResultRow],
    order: &[String],
    facts: &BTreeMap<String, TaskFacts>,
) {
    md.push_str(
        "## Per task\n\nMean accuracy (%) ± half-width of the 95% Student-t interval over the \
         task's seeds (n - 1 degrees of freedom, exact quantile): the seeds of one task are \
         independent draws, so no bootstrap is needed. Where the task's test split size is \
         known (it is named under the task's heading), the interval also covers the sampling \
         of that one fixed split: its binomial variance p(1 - p)/n is added to the seeds' \
         variance of the mean (an upper bound: runs that err on the same examples add less).\n\n",
    );
    for task in aggregate::first_appearance(results.iter().map(|r| r.task.as_str())) {
        let keep = |r: &ResultRow| r.task == task;
        let shift = results
            .iter()
            .find(|r| keep(r))
            .map_or(Shift::Task, |r| r.shift);
        let seeds: BTreeSet<u64> = results.iter().filter(|r| keep(r)).map(|r| r.seed).collect();
        let test = facts.get(&task).map_or(0, |f| f.test_examples);
        let (interval, size) = match test {
            0 => (Interval::T, String::new()),
            n => (Interval::TWithTest(n), format!(", {n} test examples")),
        };
        let _ = writeln!(md, "### `{task}` ({} shift{size})\n", shift.name());
        table(
            md,
            &aggregate::accuracy(results, order, keep, interval),
            seeds.len(),
            false,
        );
    }
}

fn cost(md: &mut String, results: &[ResultRow], order: &[String]) {
    md.push_str("## Cost\n\n");
    md.push_str(
        "| method | trainable params (median) | train seconds (mean) | samples/s (mean) |\n\
         |---|---:|---:|---:|\n",
    );
    for method in order {
        let runs: Vec<&ResultRow> = results.iter().filter(|r| &r.method == method).collect();
        let of = |f: fn(&ResultRow) -> f64| runs.iter().map(|r| f(r)).collect::<Vec<f64>>();
        let params = median(&of(|r| r.trainable_params as f64)).unwrap_or(0.0);
        let seconds = mean(&of(|r| r.train_seconds)).unwrap_or(0.0);
        let rate = mean(&of(|r| r.samples_per_sec)).unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {params:.0} | {seconds:.2} | {rate:.1} |",
            escape(method)
        );
    }
    md.push('\n');
}

fn weights(md: &mut String, inputs: &ReportInputs, plots: &[String]) {
    let weights = &inputs.weights;
    let methods = aggregate::first_appearance(weights.iter().map(|w| w.method.as_str()));
    let several = methods.len() > 1;
    for method in &methods {
        let rows = weights.iter().filter(|w| &w.method == method);
        let tasks = aggregate::first_appearance(rows.clone().map(|w| w.task.as_str()));
        let modules = aggregate::first_appearance(rows.map(|w| w.module.as_str()));
        let _ = writeln!(md, "## Learned weights (`{method}`)\n");
        md.push_str("Mean weight per upstream module, over layers, seeds and k.\n\n| task |");
        for m in &modules {
            let _ = write!(md, " {} |", escape(m));
        }
        md.push_str(" top module |\n|---|");
        md.push_str(&"---:|".repeat(modules.len()));
        md.push_str("---|\n");
        for task in &tasks {
            let means = aggregate::module_means(weights, task, method);
            let _ = write!(md, "| `{task}` |");
            for m in &modules {
                match means.iter().find(|(name, _)| name == m) {
                    Some((_, w)) => {
                        let _ = write!(md, " {w:.3} |");
                    }
                    None => md.push_str(" – |"),
                }
            }
            let top = means.iter().max_by(|a, b| a.1.total_cmp(&b.1));
            let _ = writeln!(md, " {} |", top.map_or("–".into(), |(m, _)| escape(m)));
        }
        md.push('\n');
        let maps: Vec<String> = tasks
            .iter()
            .map(|t| (t, plot::svg_file(&plot::weights_name(t, method, several))))
            .filter(|(_, name)| plots.contains(name))
            .map(|(t, name)| format!("[{t}](plots/{name})"))
            .collect();
        if !maps.is_empty() {
            let _ = writeln!(
                md,
                "Heat maps (layer x module, one colour scale for all): {}\n",
                maps.join(", ")
            );
        }
        similarity(
            md,
            inputs,
            primary::similarity_test(inputs, method),
            method,
            &tasks,
            plot::svg_file(&plot::similarity_name(method, several)),
            plots,
        );
    }
}

fn similarity(
    md: &mut String,
    inputs: &ReportInputs,
    test: Option<RhoTest>,
    method: &str,
    tasks: &[String],
    plot_name: String,
    plots: &[String],
) {
    let per_task: Vec<(&String, Vec<aggregate::SimilarityPair>)> = tasks
        .iter()
        .map(|t| {
            (
                t,
                aggregate::similarity_pairs(&inputs.similarity, &inputs.weights, t, method),
            )
        })
        .filter(|(_, pairs)| !pairs.is_empty())
        .collect();
    if per_task.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Weights vs similarity (`{method}`)\n");
    let sizes: BTreeSet<usize> = per_task.iter().map(|(_, pairs)| pairs.len()).collect();
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    let _ = writeln!(
        md,
        "Spearman's rank correlation (rho, ties get average ranks) between an upstream \
         module's linear CKA to the downstream task and its mean learned weight. Each rho is \
         over only N points, one per upstream module (here N = {}), so one task's rho is a \
         weak signal; the mean over tasks is the summary. The last two columns name the \
         module each measure ranks first: a rho near 0 can hide agreement on that one.\n\n\
         | task | shift | N | rho | highest weight | highest CKA |\n|---|---|---:|---:|---|---|",
        sizes.join(" or ")
    );
    let shift_of = |task: &str| {
        (inputs.results.iter())
            .find(|r| r.task == task)
            .map(|r| r.shift)
    };
    let mut tops = Vec::new();
    for (task, pairs) in &per_task {
        let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().map(|p| (p.cka, p.weight)).unzip();
        let shown = rho_cell(&x, &y);
        let shift = shift_of(task);
        let top = TopModules::of(pairs, |p| p.cka);
        let _ = writeln!(
            md,
            "| `{task}` | {} | {} | {shown} | {} | {} |",
            shift.map_or("–", Shift::name),
            pairs.len(),
            escape(&top.weight),
            escape(&top.cka)
        );
        tops.push((shift, top));
    }
    let _ = writeln!(md, "\n{}", top_agreement(&tops, "CKA"));
    match test {
        Some(test) => {
            let _ = writeln!(
                md,
                "\nMean rho over {} task(s): {:+.2}. Two-sided permutation p = {} (CKA \
                 shuffled among the modules within each task, {RESAMPLES} times; undefined \
                 rhos left out), raw: a similarity test in the plan is judged under Primary \
                 tests.\n",
                test.tasks,
                test.mean,
                p_value(test.p),
            );
        }
        None => md.push_str("\nNo task has a defined rho.\n\n"),
    }
    debiased(md, &per_task, shift_of);
    if plots.contains(&plot_name) {
        let _ = writeln!(md, "![learned weight vs CKA](plots/{plot_name})\n");
    }
    for (task, pairs) in &per_task {
        let _ = writeln!(md, "#### `{task}`\n");
        let base = (inputs.similarity.iter()).find(|s| &s.task == *task && s.module == BASE_MODULE);
        if let Some(base) = base {
            let above = pairs.iter().filter(|p| p.cka > base.cka).count();
            let _ = writeln!(
                md,
                "The base without any module has CKA {:.3}: {above} of {} modules move the \
                 representation closer to the task's.\n",
                base.cka,
                pairs.len()
            );
        }
        let _ = writeln!(md, "| module | CKA | mean weight |\n|---|---:|---:|");
        for p in pairs {
            let _ = writeln!(
                md,
                "| {} | {:.3} | {:.3} |",
                escape(&p.module),
                p.cka,
                p.weight
            );
        }
        md.push('\n');
    }
}

/// Spearman's rho of `x` and `y` as a table cell.
fn rho_cell(x: &[f64], y: &[f64]) -> String {
    spearman(x, y).map_or("undefined (constant)".into(), |r| format!("{r:+.2}"))
}

/// The same table against the debiased CKA, where every module of every task has one
/// (exploratory; files from before it have none).
fn debiased(
    md: &mut String,
    per_task: &[(&String, Vec<aggregate::SimilarityPair>)],
    shift_of: impl Fn(&str) -> Option<Shift>,
) {
    let values = |pairs: &[aggregate::SimilarityPair]| -> Option<Vec<f64>> {
        pairs.iter().map(|p| p.cka_debiased).collect()
    };
    let Some(per_task): Option<Vec<_>> = (per_task.iter())
        .map(|(task, pairs)| values(pairs).map(|cka| (task, pairs, cka)))
        .collect()
    else {
        return;
    };
    let _ = writeln!(
        md,
        "#### Against the debiased CKA (exploratory)\n\nLinear CKA is biased upwards when a \
         task's examples are fewer than the feature dimensions (two independent random \
         representations of 50 examples in 384 dimensions score about 0.88). The debiased \
         CKA (the unbiased HSIC estimator of Song et al. 2012) is near 0 for them. Not in the \
         plan: read it as a check on the measure, not as a test of claim 4.\n\n\
         | task | rho | highest weight | highest debiased CKA |\n|---|---:|---|---|"
    );
    let mut tops = Vec::new();
    let mut ranked = Vec::new();
    for (task, pairs, cka) in per_task {
        let weights: Vec<f64> = pairs.iter().map(|p| p.weight).collect();
        let shown = rho_cell(&cka, &weights);
        let top = TopModules::of(pairs, |p| p.cka_debiased.unwrap_or(f64::NEG_INFINITY));
        let _ = writeln!(
            md,
            "| `{task}` | {shown} | {} | {} |",
            escape(&top.weight),
            escape(&top.cka)
        );
        tops.push((shift_of(task), top));
        ranked.push((cka, weights));
    }
    let _ = writeln!(md, "\n{}", top_agreement(&tops, "debiased CKA"));
    if let Some(test) = rho_permutation(&ranked) {
        let _ = writeln!(
            md,
            "Mean rho over {} task(s): {:+.2}, two-sided permutation p = {} (as above; \
             exploratory).\n",
            test.tasks,
            test.mean,
            p_value(test.p),
        );
    }
}

/// The modules that one task's learned weights and a similarity measure each rank first.
struct TopModules {
    weight: String,
    cka: String,
}

impl TopModules {
    /// The first of equals wins, in `pairs`' order (weight order).
    fn of(pairs: &[aggregate::SimilarityPair], cka: fn(&aggregate::SimilarityPair) -> f64) -> Self {
        let first = |key: fn(&aggregate::SimilarityPair) -> f64| {
            let best = pairs.iter().map(key).fold(f64::NEG_INFINITY, f64::max);
            (pairs.iter().find(|p| key(p) == best)).map_or(String::new(), |p| p.module.clone())
        };
        Self {
            weight: first(|p| p.weight),
            cka: first(cka),
        }
    }

    fn agree(&self) -> bool {
        self.weight == self.cka
    }
}

/// How often the highest-weighted module is the one `measure` ranks first, in all and per
/// shift.
fn top_agreement(tops: &[(Option<Shift>, TopModules)], measure: &str) -> String {
    let count = |keep: &dyn Fn(Option<Shift>) -> bool| {
        let kept: Vec<&TopModules> = tops
            .iter()
            .filter(|(s, _)| keep(*s))
            .map(|(_, t)| t)
            .collect();
        (kept.iter().filter(|t| t.agree()).count(), kept.len())
    };
    let (agree, all) = count(&|_| true);
    let shifts: BTreeSet<Shift> = tops.iter().filter_map(|(s, _)| *s).collect();
    let per_shift: Vec<String> = (shifts.iter())
        .map(|&shift| {
            let (a, n) = count(&|s| s == Some(shift));
            format!("{} {a} of {n}", shift.name())
        })
        .collect();
    let per_shift = match per_shift.len() {
        0 | 1 => String::new(),
        _ => format!(" ({})", per_shift.join(", ")),
    };
    format!(
        "The module with the highest mean weight is the one with the highest {measure} in \
         {agree} of {all} task(s){per_shift}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(module: &str, cka: f64, weight: f64) -> aggregate::SimilarityPair {
        aggregate::SimilarityPair {
            module: module.into(),
            cka,
            cka_debiased: None,
            weight,
        }
    }

    #[test]
    fn top_modules_name_each_measures_first_and_count_agreement_per_shift() {
        let apart = TopModules::of(
            &[
                pair("a", 0.1, 0.5),
                pair("b", 0.9, 0.3),
                pair("c", 0.2, 0.2),
            ],
            |p| p.cka,
        );
        assert_eq!((apart.weight.as_str(), apart.cka.as_str()), ("a", "b"));
        // Equal weights: the first in the given order wins.
        let tied = TopModules::of(&[pair("a", 0.5, 0.4), pair("b", 0.1, 0.4)], |p| p.cka);
        assert_eq!((tied.weight.as_str(), tied.cka.as_str()), ("a", "a"));
        let tops = vec![
            (Some(Shift::Covariate), tied),
            (Some(Shift::Label), apart),
            (
                Some(Shift::Label),
                TopModules::of(&[pair("x", 0.3, 0.1)], |p| p.cka),
            ),
        ];
        assert_eq!(
            top_agreement(&tops, "CKA"),
            "The module with the highest mean weight is the one with the highest CKA in 2 of 3 \
             task(s) (covariate 1 of 1, label 1 of 2)."
        );
    }

    #[test]
    fn no_debiased_section_unless_every_module_has_a_debiased_cka() {
        let task = "t".to_string();
        let mut pairs = vec![
            pair("a", 0.1, 0.5),
            pair("b", 0.9, 0.3),
            pair("c", 0.2, 0.2),
        ];
        for p in &mut pairs[1..] {
            p.cka_debiased = Some(p.cka);
        }
        let mut md = String::new();
        debiased(&mut md, &[(&task, pairs)], |_| None);
        assert_eq!(md, "");
    }

    #[test]
    fn cells_show_the_interval_of_their_kind_and_n() {
        let e = Estimate::t(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(cell(Some(&e), 5, false, Interval::T), "3.0 ± 2.0");
        assert_eq!(cell(Some(&e), 6, false, Interval::T), "3.0 ± 2.0 (n=5)");
        assert_eq!(cell(Some(&e), 5, true, Interval::T), "+3.0 ± 2.0");
        let boot = Estimate {
            mean: 2.0,
            interval: Some((-0.5, 4.26)),
            n: 10,
        };
        assert_eq!(
            cell(Some(&boot), 10, true, Interval::Bootstrap),
            "+2.0 [-0.5, +4.3]"
        );
        assert_eq!(
            cell(Some(&boot), 10, false, Interval::Bootstrap),
            "2.0 [-0.5, 4.3]"
        );
        let single = Estimate::t(&[70.0]).unwrap();
        assert_eq!(cell(Some(&single), 5, false, Interval::T), "70.0 (n=1)");
        assert_eq!(cell(None, 3, false, Interval::T), "–");
    }
}
