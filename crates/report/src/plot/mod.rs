//! The plots, drawn with plotters: each one as `<name>.svg` and `<name>.png` (see
//! [`figure`]). Every plot gives a method the colour of its place in the global method order,
//! so one method looks the same in all of them.

mod chart;
mod figure;
mod heatmap;
mod palette;

use crate::aggregate::{self, Grid, Interval};
use crate::error::Result;
use crate::inputs::ReportInputs;
use crate::rows::{ResultRow, Shift, Shot};
use crate::stats::{Estimate, mean, spearman};
use chart::{Chart, Guide, Point, Series, XAxis};
use heatmap::Heatmap;
use palette::Marker;
use plotters::style::RGBColor;
use std::path::{Path, PathBuf};

/// The file a summary links to for plot `base`: the SVG, which stays crisp at any zoom.
pub(crate) fn svg_file(base: &str) -> String {
    format!("{base}.svg")
}

pub(crate) fn accuracy_name(shift: Shift) -> String {
    format!("accuracy-{}", shift.name())
}

pub(crate) fn relative_name(shift: Shift) -> String {
    format!("relative-{}", shift.name())
}

pub(crate) fn diff_name(shift: Shift) -> String {
    format!("diff-{}", shift.name())
}

/// `weights-<task>`, with `-<method>` added only when several methods learn weights.
pub(crate) fn weights_name(task: &str, method: &str, several: bool) -> String {
    match several {
        false => format!("weights-{}", file_safe(task)),
        true => format!("weights-{}-{}", file_safe(task), file_safe(method)),
    }
}

pub(crate) fn similarity_name(method: &str, several: bool) -> String {
    match several {
        false => "similarity".to_string(),
        true => format!("similarity-{}", file_safe(method)),
    }
}

/// Task and method names come from the config; anything but `[A-Za-z0-9._-]` becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// Layer labels for the heat map: `encoder.` is dropped and `blocks.N.` becomes `bN.`
/// (`encoder.blocks.0.query` -> `b0.query`); past 24 characters the head is cut to `..`, since
/// the tail names the projection.
pub(crate) fn short_layer(layer: &str) -> String {
    let name = layer.strip_prefix("encoder.").unwrap_or(layer);
    let mut parts: Vec<String> = Vec::new();
    let mut it = name.split('.').peekable();
    while let Some(p) = it.next() {
        match it.peek() {
            Some(n) if p == "blocks" && n.chars().all(|c| c.is_ascii_digit()) => {
                parts.push(format!("b{n}"));
                it.next();
            }
            _ => parts.push(p.to_string()),
        }
    }
    let short = parts.join(".");
    let chars: Vec<char> = short.chars().collect();
    match chars.len() {
        n if n > 24 => format!("..{}", chars[n - 22..].iter().collect::<String>()),
        _ => short,
    }
}

/// Module (upstream task) labels: past 20 characters the tail is cut to `..`.
pub(crate) fn short_module(module: &str) -> String {
    match module.chars().count() {
        n if n > 20 => format!("{}..", module.chars().take(18).collect::<String>()),
        _ => module.to_string(),
    }
}

/// What the shift's tasks tell about its plots; `None` unless every task of the shift has
/// [`TaskFacts`](crate::TaskFacts): a mean over only some tasks would not describe the pooled
/// runs.
struct ShiftFacts {
    /// Mean over the tasks of 1/classes, in percent.
    chance: Option<f64>,
    /// `≈600/class`, or `≈200–600/class` when the tasks differ.
    full: Option<String>,
}

impl ShiftFacts {
    fn of(inputs: &ReportInputs, shift: Shift) -> ShiftFacts {
        let tasks = aggregate::first_appearance(
            inputs
                .results
                .iter()
                .filter(|r| r.shift == shift)
                .map(|r| r.task.as_str()),
        );
        let facts: Option<Vec<_>> = tasks.iter().map(|t| inputs.tasks.get(t)).collect();
        let Some(facts) = facts.filter(|f| !f.is_empty()) else {
            return ShiftFacts {
                chance: None,
                full: None,
            };
        };
        let chances: Option<Vec<f64>> = facts
            .iter()
            .map(|f| (f.classes > 0).then(|| 100.0 / f.classes as f64))
            .collect();
        let sizes = facts.iter().map(|f| f.full_per_class);
        let (lo, hi) = (sizes.clone().min(), sizes.max());
        ShiftFacts {
            chance: chances.and_then(|c| mean(&c)),
            full: lo.zip(hi).map(|(lo, hi)| match lo == hi {
                true => format!("≈{lo}/class"),
                false => format!("≈{lo}–{hi}/class"),
            }),
        }
    }

    /// The x tick of `k`: `full` also says how many examples per class that is.
    fn k_label(&self, k: Shot) -> String {
        match (k, &self.full) {
            (Shot::Full, Some(size)) => format!("full ({size})"),
            _ => k.to_string(),
        }
    }
}

/// `n=10`, or `n=8–10` when the points of a series pool different numbers of runs.
fn n_label(ns: &[usize]) -> String {
    let lo = ns.iter().min().copied().unwrap_or(0);
    let hi = ns.iter().max().copied().unwrap_or(0);
    match lo == hi {
        true => format!("n={lo}"),
        false => format!("n={lo}–{hi}"),
    }
}

/// `2 tasks`, or `1 task: seeds only` where the bootstrap has no tasks to resample.
fn runs_caption(results: &[ResultRow], keep: impl Fn(&ResultRow) -> bool) -> String {
    let tasks =
        aggregate::first_appearance(results.iter().filter(|r| keep(r)).map(|r| r.task.as_str()));
    match tasks.len() {
        1 => "1 task: seeds only".into(),
        n => format!("{n} tasks"),
    }
}

/// What a grid holds, which decides how its series look.
#[derive(Clone, Copy, PartialEq)]
enum Values {
    /// Accuracy in [0, 100]: a trend over k (points joined), intervals cut at the bounds.
    Accuracy,
    /// Paired differences: points only, as k values are separate comparisons.
    Difference,
}

/// One series of a grid: `row`'s cells over the columns `ks`, labelled `name (n=…)`.
fn grid_series(
    grid: &Grid,
    row: &str,
    ks: &[Shot],
    name: &str,
    (color, marker): (RGBColor, Marker),
    values: Values,
) -> Series {
    let cells: Vec<(usize, &Estimate)> = ks
        .iter()
        .enumerate()
        .filter_map(|(i, &k)| grid.get(row, k).map(|e| (i, e)))
        .collect();
    let ns: Vec<usize> = cells.iter().map(|(_, e)| e.n).collect();
    Series {
        label: format!("{name} ({})", n_label(&ns)),
        color,
        marker,
        connect: values == Values::Accuracy,
        points: cells
            .iter()
            .map(|&(i, e)| Point {
                x: i as f64,
                y: e.mean,
                bar: e.interval.map(|range| match (values, range) {
                    (Values::Accuracy, (low, high)) => (low.max(0.0), high.min(100.0)),
                    (Values::Difference, range) => range,
                }),
            })
            .collect(),
    }
}

/// The style of `method`: that of its place in the global order.
fn method_style(order: &[String], method: &str) -> (RGBColor, Marker) {
    palette::style(order.iter().position(|m| m == method).unwrap_or(0))
}

/// Draws every plot the inputs support into `dir`; returns the files written, each plot's SVG
/// then its PNG.
pub(crate) fn write_all(
    inputs: &ReportInputs,
    order: &[String],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let results = &inputs.results;
    let reference = &inputs.reference_method;
    let pairs = aggregate::comparisons(results, &inputs.comparisons);
    for shift in aggregate::shifts(results) {
        let keep = |r: &ResultRow| r.shift == shift;
        let name = shift.name();
        let facts = ShiftFacts::of(inputs, shift);
        // Every plot of a shift has the same k columns, so they line up when compared.
        let ks = aggregate::ks(results, keep);
        let x_axis = || XAxis::Categories(ks.iter().map(|&k| facts.k_label(k)).collect());
        let x_label = "shots per class (k)";

        let grid = aggregate::accuracy(results, order, keep, Interval::Bootstrap);
        let chart = Chart {
            title: format!("Accuracy, {name} shift"),
            caption: format!(
                "mean over tasks and its 95% bootstrap interval (tasks, then seeds; {})",
                runs_caption(results, keep)
            ),
            x_label: x_label.into(),
            y_label: "accuracy (%)".into(),
            x_axis: x_axis(),
            series: grid
                .methods
                .iter()
                .map(|m| grid_series(&grid, m, &ks, m, method_style(order, m), Values::Accuracy))
                .collect(),
            zero_line: false,
            guide: facts.chance.map(|y| Guide {
                y,
                label: format!("chance (1/classes): {y:.1}%"),
            }),
        };
        written.extend(figure::save(&chart, dir, &accuracy_name(shift))?);

        let grid = aggregate::relative(results, order, reference, keep);
        if !grid.is_empty() {
            let chart = Chart {
                title: format!("Accuracy minus {reference}, {name} shift"),
                caption: format!(
                    "paired on (task, k, seed); mean and 95% bootstrap interval (tasks, then seeds; {})",
                    runs_caption(results, keep)
                ),
                x_label: x_label.into(),
                y_label: "difference (percentage points)".into(),
                x_axis: x_axis(),
                series: grid
                    .methods
                    .iter()
                    .map(|m| {
                        let style = method_style(order, m);
                        grid_series(&grid, m, &ks, m, style, Values::Difference)
                    })
                    .collect(),
                zero_line: true,
                guide: None,
            };
            written.extend(figure::save(&chart, dir, &relative_name(shift))?);
        }

        // The first method's colour; the marker tells the opponents apart.
        let opponents = aggregate::first_appearance(pairs.iter().map(|(_, b)| b.as_str()));
        let series: Vec<Series> = pairs
            .iter()
            .filter_map(|(a, b)| {
                let grid = aggregate::head_to_head(results, a, b, keep);
                let place = opponents.iter().position(|o| o == b).unwrap_or(0);
                let marker = palette::MARKERS[place % palette::MARKERS.len()];
                let style = (method_style(order, a).0, marker);
                let label = format!("{a} − {b}");
                (!grid.is_empty())
                    .then(|| grid_series(&grid, a, &ks, &label, style, Values::Difference))
            })
            .collect();
        if !series.is_empty() {
            let chart = Chart {
                title: format!("Head to head, {name} shift"),
                caption: format!(
                    "first minus second, paired on (task, k, seed); 95% bootstrap interval, \
                     not Holm-adjusted ({})",
                    runs_caption(results, keep)
                ),
                x_label: x_label.into(),
                y_label: "difference (percentage points)".into(),
                x_axis: x_axis(),
                series,
                zero_line: true,
                guide: None,
            };
            written.extend(figure::save(&chart, dir, &diff_name(shift))?);
        }
    }

    let weights = &inputs.weights;
    let methods = aggregate::first_appearance(weights.iter().map(|w| w.method.as_str()));
    let several = methods.len() > 1;
    let tasks_of = |method: &String| {
        aggregate::first_appearance(
            weights
                .iter()
                .filter(|w| &w.method == method)
                .map(|w| w.task.as_str()),
        )
    };
    let matrices: Vec<(&String, String, aggregate::WeightMatrix)> = methods
        .iter()
        .flat_map(|method| {
            tasks_of(method).into_iter().map(move |task| {
                let m = aggregate::weight_matrix(weights, &task, method);
                (method, task, m)
            })
        })
        .collect();
    // One colour scale for every heat map, so colours compare across tasks and methods.
    let values = matrices
        .iter()
        .flat_map(|(_, _, m)| m.values.iter().flatten().flatten().copied());
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    let scale = if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) };
    for (method, task, m) in matrices {
        let map = Heatmap {
            title: format!("Learned weights: {task} ({method})"),
            rows: m.layers.iter().map(|l| short_layer(l)).collect(),
            columns: m.modules.iter().map(|l| short_module(l)).collect(),
            values: m.values,
            scale,
        };
        written.extend(figure::save(
            &map,
            dir,
            &weights_name(&task, method, several),
        )?);
    }

    for method in &methods {
        let series: Vec<Series> = tasks_of(method)
            .iter()
            .enumerate()
            .filter_map(|(i, task)| {
                let pairs = aggregate::similarity_pairs(&inputs.similarity, weights, task, method);
                let (x, y): (Vec<f64>, Vec<f64>) = pairs.iter().map(|p| (p.cka, p.weight)).unzip();
                let rho = spearman(&x, &y).map_or("n/a".to_string(), |r| format!("{r:+.2}"));
                let (color, marker) = palette::style(i);
                (!pairs.is_empty()).then(|| Series {
                    label: format!("{task} (rho {rho})"),
                    color,
                    marker,
                    points: pairs
                        .iter()
                        .map(|p| Point {
                            x: p.cka,
                            y: p.weight,
                            bar: None,
                        })
                        .collect(),
                    connect: false,
                })
            })
            .collect();
        if !series.is_empty() {
            let chart = Chart {
                title: format!("Mean learned weight vs CKA ({method})"),
                caption: "one point per (task, upstream module); rho: Spearman's rank correlation"
                    .into(),
                x_label: "linear CKA to upstream module".into(),
                y_label: "mean learned weight".into(),
                x_axis: XAxis::Numeric,
                series,
                zero_line: false,
                guide: None,
            };
            written.extend(figure::save(
                &chart,
                dir,
                &similarity_name(method, several),
            )?);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_labels_shorten_blocks() {
        assert_eq!(short_layer("encoder.blocks.0.query"), "b0.query");
        assert_eq!(short_layer("blocks.11.mlp.fc1"), "b11.mlp.fc1");
        assert_eq!(short_layer("all"), "all");
        let long = short_layer("decoder.layers.3.self_attention.output_projection");
        assert_eq!(long.len(), 24);
        assert!(long.starts_with("..") && long.ends_with("output_projection"));
    }

    #[test]
    fn module_labels_and_file_names_are_ascii() {
        assert_eq!(
            short_module("a-very-long-upstream-task-name"),
            "a-very-long-upstre.."
        );
        assert_eq!(file_safe("cifar/10 gray"), "cifar_10_gray");
        assert_eq!(weights_name("t", "learned", false), "weights-t");
        assert_eq!(weights_name("t", "learned", true), "weights-t-learned");
        assert_eq!(weights_name("café–ü", "m", false), "weights-caf___");
    }

    fn inputs(tasks: &[(&str, usize, usize)]) -> ReportInputs {
        let run = |task: &str| ResultRow {
            task: task.into(),
            shift: Shift::Task,
            method: "m".into(),
            k: Shot::Full,
            seed: 0,
            accuracy: 0.5,
            trainable_params: 1,
            train_seconds: 1.0,
            samples_per_sec: 1.0,
        };
        ReportInputs {
            results: vec![run("a"), run("b")],
            tasks: tasks
                .iter()
                .map(|&(t, classes, full_per_class)| {
                    let facts = crate::TaskFacts {
                        classes,
                        full_per_class,
                        ..Default::default()
                    };
                    (t.to_string(), facts)
                })
                .collect(),
            ..ReportInputs::default()
        }
    }

    #[test]
    fn shift_facts_average_chance_and_span_full_sizes() {
        let facts = ShiftFacts::of(&inputs(&[("a", 2, 200), ("b", 10, 600)]), Shift::Task);
        // (1/2 + 1/10) / 2 = 30%.
        assert!((facts.chance.unwrap() - 30.0).abs() < 1e-9);
        assert_eq!(facts.k_label(Shot::Full), "full (≈200–600/class)");
        assert_eq!(facts.k_label(Shot::K(5)), "5");
        let same = ShiftFacts::of(&inputs(&[("a", 4, 600), ("b", 4, 600)]), Shift::Task);
        assert_eq!(same.k_label(Shot::Full), "full (≈600/class)");
    }

    #[test]
    fn shift_facts_need_every_task_of_the_shift() {
        let partial = ShiftFacts::of(&inputs(&[("a", 2, 200)]), Shift::Task);
        assert_eq!(partial.chance, None);
        assert_eq!(partial.k_label(Shot::Full), "full");
        // A task with no classes recorded gives no chance line, but its size still shows.
        let zero = ShiftFacts::of(&inputs(&[("a", 0, 200), ("b", 2, 200)]), Shift::Task);
        assert_eq!(zero.chance, None);
        assert_eq!(zero.k_label(Shot::Full), "full (≈200/class)");
        // No runs of the shift: nothing to say.
        let none = ShiftFacts::of(&inputs(&[("a", 2, 200)]), Shift::Label);
        assert_eq!((none.chance, none.full), (None, None));
    }
}
