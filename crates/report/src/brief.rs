//! "In brief": the four lines a newcomer reads first. What was composed and how well those
//! modules learned, what ran, what the pre-registered tests show, and what this run is too
//! small to show, with the size a run would need. Every number comes from the sections below
//! it; nothing here judges anything they do not.

use crate::claims::{self, Verdict};
use crate::inputs::{ModuleFacts, ReportInputs};
use crate::plan::TestKind;
use crate::primary::{Measured, Outcome, Primary};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The difference, in points, a study is sized to detect (issue 29's design target).
const TARGET_POINTS: f64 = 3.0;

/// Writes `## In brief`.
pub(crate) fn write(md: &mut String, inputs: &ReportInputs, primary: &[Primary]) {
    md.push_str("## In brief\n\n");
    if let Some(line) = modules(&inputs.modules) {
        let _ = writeln!(md, "- **Modules:** {line}");
    }
    let _ = writeln!(md, "- **Runs:** {}", runs(inputs));
    let interim = match inputs.unfinished() {
        Some(_) => "Interim, the sweep unfinished: ",
        None => "",
    };
    let _ = writeln!(md, "- **Shows:** {interim}{}", shows(inputs, primary));
    let _ = writeln!(md, "- **Cannot show:** {}", cannot_show(primary));
    md.push('\n');
}

/// How well the composed modules learned their own tasks, the weakest against chance.
fn modules(modules: &[ModuleFacts]) -> Option<String> {
    let accuracy = |m: &ModuleFacts| 100.0 * m.test_accuracy;
    let low = modules.iter().map(accuracy).reduce(f64::min)?;
    let high = modules.iter().map(accuracy).reduce(f64::max)?;
    let mut line = format!(
        "{} upstream LoRA modules score {low:.1}% to {high:.1}% on their own tasks' test splits",
        modules.len()
    );
    let weakest = (modules.iter())
        .filter_map(|m| Some((m, accuracy(m) - 100.0 / m.classes? as f64)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let _ = match weakest {
        Some((m, above)) => write!(
            line,
            "; the weakest against chance, `{}`, is {above:+.1} points from it ({} classes).",
            m.task,
            m.classes.unwrap_or(0)
        ),
        None => write!(line, " (their chance levels were not recorded)."),
    };
    Some(line)
}

/// `108 runs: 3 downstream tasks (1 covariate, ...), shots 1, 5, full, 2 seeds, 6 methods.`
/// (`108 of 2816 planned runs (about 52 thread-hours left ...), ...` while the sweep is
/// unfinished.)
fn runs(inputs: &ReportInputs) -> String {
    let results = &inputs.results;
    let tasks: BTreeSet<(_, &str)> = results.iter().map(|r| (r.shift, &*r.task)).collect();
    let per_shift: Vec<String> = crate::aggregate::shifts(results)
        .into_iter()
        .map(|s| {
            let n = tasks.iter().filter(|(shift, _)| *shift == s).count();
            format!("{n} {}", s.name())
        })
        .collect();
    let shots: BTreeSet<_> = results.iter().map(|r| r.k).collect();
    let shots: Vec<String> = shots.iter().map(ToString::to_string).collect();
    let seeds: BTreeSet<u64> = results.iter().map(|r| r.seed).collect();
    let methods: BTreeSet<&str> = results.iter().map(|r| r.method.as_str()).collect();
    let count = match inputs.unfinished() {
        Some(p) => format!("{} of {} planned runs{}", p.done, p.runs, left(p.left)),
        None => format!("{} runs", results.len()),
    };
    format!(
        "{count}: {} downstream tasks ({} shift), shots {} per class, {} seed(s), {} methods.",
        tasks.len(),
        per_shift.join(", "),
        shots.join(", "),
        seeds.len(),
        methods.len()
    )
}

/// Which claims the pre-registered tests support, and the differences they measured.
fn shows(inputs: &ReportInputs, primary: &[Primary]) -> String {
    if inputs.plan.primary.is_empty() {
        return "no analysis plan, so no claim is judged; every table below is descriptive.".into();
    }
    let verdicts = claims::verdicts(primary);
    let supported: Vec<String> = (verdicts.iter().enumerate())
        .filter(|(_, v)| **v == Some(Verdict::Supported))
        .map(|(i, _)| format!("claim {}", i + 1))
        .collect();
    let judged = verdicts.iter().flatten().count();
    let mut line = match supported.is_empty() {
        true => format!("none of the {judged} claims judged here is supported."),
        false => format!(
            "{} of the {judged} claims judged here supported ({}).",
            supported.len(),
            supported.join(", ")
        ),
    };
    let measured: Vec<String> = (primary.iter())
        .filter_map(|p| {
            let Ok(e) = &p.result else { return None };
            let Measured::Difference(d) = &e.measured else {
                return None;
            };
            Some(format!(
                "{}: {} points",
                claims::test_name(p.test),
                claims::difference(d.mean, d.interval())
            ))
        })
        .collect();
    if !measured.is_empty() {
        let _ = write!(
            line,
            " The pre-registered differences, with 95% intervals: {}.",
            measured.join("; ")
        );
    }
    line
}

/// What the run is too small to tell, and roughly how many tasks would tell it.
fn cannot_show(primary: &[Primary]) -> String {
    // (tasks, detectable, |measured|) of each superiority test that detected nothing.
    let missed: Vec<(usize, f64, f64)> = (primary.iter())
        .filter(|p| p.outcome() == Outcome::NotDetected && p.test.test == TestKind::Superiority)
        .filter_map(|p| {
            let e = p.result.as_ref().ok()?;
            let Measured::Difference(d) = &e.measured else {
                return None;
            };
            Some((d.tasks, e.detectable?, d.mean.abs()))
        })
        .collect();
    let mut parts = Vec::new();
    if let Some(&(tasks, detectable, _)) = missed.iter().min_by(|a, b| a.1.total_cmp(&b.1)) {
        let largest = missed.iter().map(|m| m.2).fold(0.0, f64::max);
        let mut part = format!(
            "with {tasks} tasks, the most sensitive superiority test would detect only a true \
             difference of {detectable:.1} points or more (80% power), while the superiority \
             differences measured are {largest:.1} points or less in size"
        );
        if let Some(needed) = tasks_needed(tasks, detectable) {
            let _ = write!(
                part,
                "; detecting {TARGET_POINTS} points would take roughly {needed} tasks, if their \
                 spread stays as here (the detectable difference shrinks as one over the square \
                 root of the number of tasks)"
            );
        }
        parts.push(part);
    }
    let untestable: Vec<String> = (primary.iter())
        .filter_map(|p| {
            let why = p.result.as_ref().err()?;
            Some(format!("{} ({why})", claims::test_name(p.test)))
        })
        .collect();
    if !untestable.is_empty() {
        parts.push(format!("untestable here: {}", untestable.join("; ")));
    }
    match parts.is_empty() {
        true => "what holds beyond these tasks, modules and backbone; the per-task tables below \
                 show how much it varies from task to task."
            .into(),
        false => {
            let text = parts.join("; ");
            let mut chars = text.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            format!("{}{}.", first.unwrap_or_default(), chars.as_str())
        }
    }
}

/// Tasks at which the detectable difference would reach [`TARGET_POINTS`], with the spread
/// between tasks as measured (it shrinks as 1/sqrt(tasks); the t quantiles' shrinking is left
/// out, so this errs high); `None` when it is reached already.
fn tasks_needed(tasks: usize, detectable: f64) -> Option<f64> {
    (detectable > TARGET_POINTS)
        .then(|| (tasks as f64 * (detectable / TARGET_POINTS).powi(2)).ceil())
}

/// ` (about 52.0 thread-hours of cells left, ...; 40 cells ... not counted)`, or nothing when
/// unknown.
fn left(left: Option<crate::inputs::Left>) -> String {
    let Some(left) = left else {
        return String::new();
    };
    let untimed = match left.untimed {
        0 => String::new(),
        n => format!("; {n} cells of a method and shot never timed, not counted"),
    };
    format!(
        " (about {:.1} thread-hours of cells left, {:.1} of them those the primary tests need, \
         tuning included, at the times of those done or of an earlier config's{untimed})",
        left.thread_hours, left.primary_thread_hours
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(task: &str, accuracy: f64, classes: Option<usize>) -> ModuleFacts {
        ModuleFacts {
            task: task.into(),
            test_accuracy: accuracy,
            classes,
        }
    }

    #[test]
    fn tasks_needed_scale_with_the_square_of_the_detectable_difference() {
        // 3 tasks detecting 10.4 points: 3 x (10.4 / 3)^2 = 36.05, so 37.
        assert_eq!(tasks_needed(3, 10.4), Some(37.0));
        assert_eq!(tasks_needed(8, 6.0), Some(32.0));
        assert_eq!(tasks_needed(30, 3.0), None, "reached already");
    }

    #[test]
    fn the_weakest_module_is_the_one_closest_to_chance_not_the_lowest_score() {
        // 40% of 10 classes is 30 points over chance; 60% of 2 classes only 10.
        let line = modules(&[
            module("ten", 0.40, Some(10)),
            module("two", 0.60, Some(2)),
            module("unknown", 0.99, None),
        ])
        .unwrap();
        assert!(
            line.starts_with("3 upstream LoRA modules score 40.0% to 99.0%"),
            "{line}"
        );
        assert!(
            line.contains("`two`, is +10.0 points from it (2 classes)"),
            "{line}"
        );
        assert_eq!(modules(&[]), None);
        let unknown = modules(&[module("a", 0.5, None)]).unwrap();
        assert!(
            unknown.ends_with("(their chance levels were not recorded)."),
            "{unknown}"
        );
    }
}
