//! The PNG plots, drawn with `image` and font8x8 so the report needs no system fonts or
//! plotting toolkit. Every plot gives a method the colour of its place in the global method
//! order, so one method looks the same in all of them.

mod canvas;
mod chart;
mod heatmap;
mod palette;

use crate::ReportInputs;
use crate::aggregate::{self, Grid};
use crate::error::Result;
use crate::rows::Shift;
use crate::stats::spearman;
use chart::{Chart, Point, Series, XAxis};
use heatmap::Heatmap;
use std::path::{Path, PathBuf};

pub(crate) fn accuracy_name(shift: Shift) -> String {
    format!("accuracy-{}.png", shift.name())
}

pub(crate) fn relative_name(shift: Shift) -> String {
    format!("relative-{}.png", shift.name())
}

/// `weights-<task>.png`, with `-<method>` added only when several methods learn weights.
pub(crate) fn weights_name(task: &str, method: &str, several: bool) -> String {
    match several {
        false => format!("weights-{}.png", file_safe(task)),
        true => format!("weights-{}-{}.png", file_safe(task), file_safe(method)),
    }
}

pub(crate) fn similarity_name(method: &str, several: bool) -> String {
    match several {
        false => "similarity.png".to_string(),
        true => format!("similarity-{}.png", file_safe(method)),
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

/// Draws every plot the inputs support into `dir`; returns the files written.
pub(crate) fn write_all(
    inputs: &ReportInputs,
    order: &[String],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut save = |chart_name: String, canvas: canvas::Canvas| -> Result<()> {
        let path = dir.join(chart_name);
        canvas.save(&path)?;
        written.push(path);
        Ok(())
    };
    let results = &inputs.results;
    let reference = &inputs.reference_method;
    for shift in aggregate::shifts(results) {
        let grid = aggregate::accuracy(results, order, |r| r.shift == shift);
        let chart = grid_chart(
            &grid,
            order,
            format!("Accuracy, {} shift (mean, 95% CI)", shift.name()),
            "accuracy (%)",
            false,
        );
        save(accuracy_name(shift), chart.draw())?;
        let grid = aggregate::relative(results, order, reference, |r| r.shift == shift);
        if !grid.is_empty() {
            let chart = grid_chart(
                &grid,
                order,
                format!("Accuracy minus {reference}, {} shift", shift.name()),
                "difference (pp)",
                true,
            );
            save(relative_name(shift), chart.draw())?;
        }
    }

    let weights = &inputs.weights;
    let methods = aggregate::first_appearance(weights.iter().map(|w| w.method.as_str()));
    let several = methods.len() > 1;
    for method in &methods {
        let tasks = aggregate::first_appearance(
            weights
                .iter()
                .filter(|w| &w.method == method)
                .map(|w| w.task.as_str()),
        );
        for task in &tasks {
            let m = aggregate::weight_matrix(weights, task, method);
            let map = Heatmap {
                title: format!("Learned weights: {task} ({method})"),
                rows: m.layers.iter().map(|l| short_layer(l)).collect(),
                columns: m.modules.iter().map(|l| short_module(l)).collect(),
                values: m.values,
            };
            save(weights_name(task, method, several), map.draw())?;
        }
        let series: Vec<Series> = tasks
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
                x_label: "linear CKA to upstream module".into(),
                y_label: "mean learned weight".into(),
                x_axis: XAxis::Numeric,
                series,
                zero_line: false,
            };
            save(similarity_name(method, several), chart.draw())?;
        }
    }
    Ok(written)
}

/// A chart of a method x k grid: accuracy (lines) or differences (points, zero line).
fn grid_chart(
    grid: &Grid,
    order: &[String],
    title: String,
    y_label: &str,
    relative: bool,
) -> Chart {
    let series = grid
        .methods
        .iter()
        .map(|method| {
            let place = order.iter().position(|m| m == method).unwrap_or(0);
            let (color, marker) = palette::style(place);
            let points = grid
                .ks
                .iter()
                .enumerate()
                .filter_map(|(i, &k)| {
                    grid.get(method, k).map(|e| Point {
                        x: i as f64,
                        y: e.mean,
                        // Accuracy lives in [0, 100]: a t interval reaching past it is clipped.
                        bar: e.half_width.map(|_| match (relative, e.range()) {
                            (true, range) => range,
                            (false, (low, high)) => (low.max(0.0), high.min(100.0)),
                        }),
                    })
                })
                .collect();
            Series {
                label: method.clone(),
                color,
                marker,
                points,
                connect: !relative,
            }
        })
        .collect();
    Chart {
        title,
        x_label: "shots per class (k)".into(),
        y_label: y_label.into(),
        x_axis: XAxis::Categories(grid.ks.iter().map(ToString::to_string).collect()),
        series,
        zero_line: relative,
    }
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
        assert_eq!(weights_name("t", "learned", false), "weights-t.png");
        assert_eq!(weights_name("t", "learned", true), "weights-t-learned.png");
    }
}
