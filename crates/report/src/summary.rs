//! `summary.md`: the tables behind the paper's claims, each cell a mean with its 95% interval.

use crate::ReportInputs;
use crate::aggregate::{self, Grid};
use crate::plot;
use crate::rows::{ResultRow, Shift};
use crate::stats::{Estimate, mean, median, spearman};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Renders the report; `plots` are the file names written to `plots/`, linked where present.
pub(crate) fn render(inputs: &ReportInputs, order: &[String], plots: &[String]) -> String {
    let mut md = format!("# {}\n\n", inputs.title);
    if !inputs.preamble.trim().is_empty() {
        md += inputs.preamble.trim_end();
        md += "\n\n";
    }
    let link = |md: &mut String, base: String, alt: &str| {
        let name = plot::svg_file(&base);
        if plots.contains(&name) {
            let _ = writeln!(md, "![{alt}](plots/{name})\n");
        }
    };
    let results = &inputs.results;
    let reference = inputs.reference_method.as_str();

    md += "## Accuracy\n\n";
    md += "Each cell: mean test accuracy (%) ± half-width of the 95% Student-t interval \
           (n - 1 degrees of freedom) over all (task, seed) runs of that method and k. \
           `(n=1)` marks a single run, which has no interval.\n\n";
    for shift in aggregate::shifts(results) {
        let keep = |r: &ResultRow| r.shift == shift;
        let name = shift.name();
        let _ = writeln!(md, "### {} shift\n", capitalise(name));
        let expected = runs_note(&mut md, results, keep);
        let grid = aggregate::accuracy(results, order, keep);
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
             mean ± 95% t half-width of those paired differences. **Bold**: the interval \
             excludes 0.\n"
        );
        table(&mut md, &grid, expected, true);
        link(
            &mut md,
            plot::relative_name(shift),
            &format!("relative accuracy, {name} shift"),
        );
    }

    head_to_head(&mut md, results, &inputs.comparisons, plots);
    per_task(&mut md, results, order);
    cost(&mut md, results, order);
    weights(&mut md, inputs, plots);
    md
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
    let _ = writeln!(
        md,
        "n = {} runs per cell: {} task(s) ({}) x {} seed(s) ({}); a cell with fewer runs \
         shows its n.\n",
        runs.len(),
        tasks.len(),
        task_list.join(", "),
        seeds.len(),
        seed_list.join(", "),
    );
    runs.len()
}

fn cell(e: Option<&Estimate>, expected: usize, relative: bool) -> String {
    let Some(e) = e else {
        return "–".into();
    };
    let mean = match relative {
        true => format!("{:+.1}", e.mean),
        false => format!("{:.1}", e.mean),
    };
    match e.half_width {
        None => format!("{mean} (n=1)"),
        Some(h) => {
            let text = format!("{mean} ± {h:.1}");
            let text = match relative && e.excludes_zero() {
                true => format!("**{text}**"),
                false => text,
            };
            match e.n == expected {
                true => text,
                false => format!("{text} (n={})", e.n),
            }
        }
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
            let _ = write!(md, " {} |", cell(grid.get(method, k), expected, relative));
        }
        md.push('\n');
    }
    md.push('\n');
}

/// Paired differences between chosen methods, over all shifts and per shift: the paper's claims
/// compare compositions with full fine-tuning and LoRA, not only with the reference.
fn head_to_head(
    md: &mut String,
    results: &[ResultRow],
    comparisons: &[(String, String)],
    plots: &[String],
) {
    let pairs = aggregate::comparisons(results, comparisons);
    if pairs.is_empty() {
        return;
    }
    md.push_str(
        "## Head to head\n\nAccuracy of the first method minus the second's on the same \
         (task, k, seed), in percentage points: mean ± 95% t half-width of the paired \
         differences. **Bold**: the interval excludes 0.\n\n",
    );
    let ks = aggregate::accuracy(results, &[], |_| true).ks;
    let mut sections: Vec<(String, Option<Shift>)> = vec![("All shifts".into(), None)];
    sections.extend(
        aggregate::shifts(results)
            .into_iter()
            .map(|s| (format!("{} shift", capitalise(s.name())), Some(s))),
    );
    for (title, shift) in sections {
        let keep = |r: &ResultRow| shift.is_none_or(|s| r.shift == s);
        let _ = writeln!(md, "### {title}\n");
        md.push_str("| comparison |");
        for k in &ks {
            let _ = write!(md, " {k} |");
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(ks.len()));
        md.push('\n');
        for (a, b) in &pairs {
            let grid = aggregate::head_to_head(results, a, b, keep);
            let _ = write!(md, "| {} − {} |", escape(a), escape(b));
            for &k in &ks {
                let e = grid.get(a, k);
                let _ = write!(md, " {} |", cell(e, e.map_or(0, |e| e.n), true));
            }
            md.push('\n');
        }
        md.push('\n');
        if let Some(s) = shift {
            let name = plot::svg_file(&plot::diff_name(s));
            if plots.contains(&name) {
                let _ = writeln!(md, "![head to head, {} shift](plots/{name})\n", s.name());
            }
        }
    }
}

fn per_task(md: &mut String, results: &[ResultRow], order: &[String]) {
    md.push_str("## Per task\n\nMean accuracy (%) ± 95% t half-width over seeds.\n\n");
    for task in aggregate::first_appearance(results.iter().map(|r| r.task.as_str())) {
        let keep = |r: &ResultRow| r.task == task;
        let shift = results
            .iter()
            .find(|r| keep(r))
            .map_or(Shift::Task, |r| r.shift);
        let seeds: BTreeSet<u64> = results.iter().filter(|r| keep(r)).map(|r| r.seed).collect();
        let _ = writeln!(md, "### `{task}` ({} shift)\n", shift.name());
        table(
            md,
            &aggregate::accuracy(results, order, keep),
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
         weak signal; the mean over tasks is the summary.\n\n| task | N | rho |\n|---|---:|---:|",
        sizes.join(" or ")
    );
    let mut rhos = Vec::new();
    for (task, pairs) in &per_task {
        let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().map(|p| (p.cka, p.weight)).unzip();
        let rho = spearman(&x, &y);
        rhos.extend(rho);
        let shown = rho.map_or("undefined (constant)".into(), |r| format!("{r:+.2}"));
        let _ = writeln!(md, "| `{task}` | {} | {shown} |", pairs.len());
    }
    match mean(&rhos) {
        Some(m) => {
            let _ = writeln!(md, "\nMean rho over {} task(s): {m:+.2}.\n", rhos.len());
        }
        None => md.push_str("\nNo task has a defined rho.\n\n"),
    }
    if plots.contains(&plot_name) {
        let _ = writeln!(md, "![learned weight vs CKA](plots/{plot_name})\n");
    }
    for (task, pairs) in &per_task {
        let _ = writeln!(
            md,
            "#### `{task}`\n\n| module | CKA | mean weight |\n|---|---:|---:|"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_show_interval_n_and_significance() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(cell(Some(&e), 5, false), "3.0 ± 2.0");
        assert_eq!(cell(Some(&e), 6, false), "3.0 ± 2.0 (n=5)");
        assert_eq!(cell(Some(&e), 5, true), "**+3.0 ± 2.0**");
        let single = Estimate::of(&[70.0]).unwrap();
        assert_eq!(cell(Some(&single), 5, false), "70.0 (n=1)");
        let noisy = Estimate::of(&[-1.0, 1.0, 0.5]).unwrap();
        assert!(!cell(Some(&noisy), 3, true).contains("**"));
        assert_eq!(cell(None, 3, false), "–");
    }
}
