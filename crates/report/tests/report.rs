//! End-to-end checks through the public API: shard merging, error locations, and a report on a
//! small synthetic sweep.

use loramix_report::{
    AnalysisPlan, ClaimRoles, Left, ModuleFacts, PlanStatus, Planned, PrimaryTest, ReportError,
    ReportInputs, ResultRow, Shift, Shot, SimilarityRow, TaskFacts, TestKind, WeightRow,
    read_results, read_weights, write_report, write_results,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HEADER: &str =
    "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec\n";

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn merge_drops_identical_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.csv",
        &format!("{HEADER}t,label,lora,1,0,0.5,100,1.0,10\nt,label,lora,2,0,0.6,100,1.0,10\n"),
    );
    // Same cell again, timings differ (a rerun): dropped; one new cell.
    let b = write(
        dir.path(),
        "b.csv",
        &format!("{HEADER}t,label,lora,2,0,0.6,100,3.0,4\nt,label,lora,full,0,0.9,100,1.0,10\n"),
    );
    let rows = read_results(&[a, b]).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].train_seconds, 1.0, "the first copy is kept");
    assert_eq!(rows[2].k, Shot::Full);
}

#[test]
fn merge_rejects_conflicting_cells_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "shard-a.csv",
        &format!("{HEADER}t,label,lora,1,0,0.5,100,1.0,10\n"),
    );
    let b = write(
        dir.path(),
        "shard-b.csv",
        &format!("{HEADER}t,label,lora,1,1,0.5,100,1.0,10\nt,label,lora,1,0,0.7,100,1.0,10\n"),
    );
    let err = read_results(&[a, b]).unwrap_err();
    assert!(matches!(err, ReportError::Conflict { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("shard-a.csv:2"), "{msg}");
    assert!(msg.contains("shard-b.csv:3"), "{msg}");
    assert!(msg.contains("0.5") && msg.contains("0.7"), "{msg}");
}

#[test]
fn conflicting_weights_are_rejected_too() {
    let dir = tempfile::tempdir().unwrap();
    let head = "task,method,k,seed,layer,module,weight\n";
    let a = write(
        dir.path(),
        "w1.csv",
        &format!("{head}t,learned,1,0,all,up,0.2\n"),
    );
    let b = write(
        dir.path(),
        "w2.csv",
        &format!("{head}t,learned,1,0,all,up,0.3\n"),
    );
    assert_eq!(read_weights(&[a.clone(), a.clone()]).unwrap().len(), 1);
    let msg = read_weights(&[a, b]).unwrap_err().to_string();
    assert!(
        msg.contains("w1.csv:2") && msg.contains("w2.csv:2"),
        "{msg}"
    );
}

fn parse_error(body: &str) -> (String, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "results.csv", body);
    match read_results(&[path]).unwrap_err() {
        ReportError::Parse { at, message } => (
            at.path.file_name().unwrap().to_string_lossy().into(),
            at.line,
            message,
        ),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn truncated_row_names_file_and_line() {
    let body = format!("{HEADER}t,label,lora,1,0,0.5,100,1.0,10\nt,label,lora,2,0,0.6\n");
    let (file, line, message) = parse_error(&body);
    assert_eq!((file.as_str(), line), ("results.csv", 3), "{message}");
    assert!(message.contains("fields"), "{message}");
}

#[test]
fn garbled_values_name_file_line_and_column() {
    let body =
        format!("{HEADER}t,label,lora,1,0,0.5,100,1.0,10\n\nt,label,lora,2,0,zero,100,1.0,10\n");
    let (file, line, message) = parse_error(&body);
    assert_eq!((file.as_str(), line), ("results.csv", 4), "{message}");
    assert!(message.contains("accuracy"), "{message}");

    let (_, line, message) = parse_error(&format!("{HEADER}t,sideways,lora,1,0,0.5,100,1,1\n"));
    assert_eq!(line, 2);
    assert!(
        message.contains("shift must be") && message.contains("`sideways`"),
        "{message}"
    );
    let (_, _, message) = parse_error(&format!("{HEADER}t,label,lora,half,0,0.5,100,1,1\n"));
    assert!(
        message.contains("shots are") && message.contains("`half`"),
        "{message}"
    );
    let (_, _, message) = parse_error(&format!("{HEADER}t,label,lora,1,0,1.5,100,1,1\n"));
    assert!(message.contains("[0, 1]"), "{message}");
}

#[test]
fn missing_file_is_named() {
    let err = read_results(&[PathBuf::from("/nonexistent/results.csv")]).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/results.csv"),
        "{err}"
    );
}

fn run(task: &str, shift: Shift, method: &str, k: Shot, seed: u64, accuracy: f64) -> ResultRow {
    ResultRow {
        task: task.into(),
        shift,
        method: method.into(),
        k,
        seed,
        accuracy,
        trainable_params: if method == "head-only" { 1_000 } else { 50_000 },
        train_seconds: 2.5,
        samples_per_sec: 400.0,
    }
}

#[test]
fn written_results_are_sorted_with_full_last_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        run("b", Shift::Task, "lora", Shot::K(1), 0, 0.5),
        run("a", Shift::Label, "lora", Shot::Full, 1, 0.9),
        run("a", Shift::Label, "lora", Shot::K(10), 0, 0.8),
        run("a", Shift::Label, "lora", Shot::K(2), 0, 0.6),
        run("a", Shift::Label, "lora", Shot::Full, 0, 0.7),
    ];
    let path = dir.path().join("results.csv");
    write_results(&path, &rows).unwrap();
    let back = read_results(std::slice::from_ref(&path)).unwrap();
    let keys: Vec<(String, Shot, u64)> =
        back.iter().map(|r| (r.task.clone(), r.k, r.seed)).collect();
    let a = String::from("a");
    assert_eq!(
        keys,
        [
            (a.clone(), Shot::K(2), 0),
            (a.clone(), Shot::K(10), 0),
            (a.clone(), Shot::Full, 0),
            (a, Shot::Full, 1),
            ("b".into(), Shot::K(1), 0),
        ]
    );
    assert_eq!(back[0], rows[3], "values survive the round trip");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER), "{text}");
}

/// Three methods on two tasks (covariate and label shift), 3 seeds, k in {1, 2, 5, full};
/// `learned` beats `head-only` by 5 points everywhere. Both tasks have 10 classes and 600
/// training examples per class; `lab-task`'s weights are 0.2 above `cov-task`'s.
fn synthetic() -> ReportInputs {
    let mut results = Vec::new();
    let ks = [Shot::K(1), Shot::K(2), Shot::K(5), Shot::Full];
    for (task, shift) in [("cov-task", Shift::Covariate), ("lab-task", Shift::Label)] {
        for seed in 0..3u64 {
            for (i, &k) in ks.iter().enumerate() {
                let base = 0.4 + 0.1 * i as f64 + 0.01 * seed as f64;
                results.push(run(task, shift, "head-only", k, seed, base));
                results.push(run(
                    task,
                    shift,
                    "lora",
                    k,
                    seed,
                    base - 0.02 + 0.015 * seed as f64,
                ));
                results.push(run(task, shift, "learned", k, seed, base + 0.05));
            }
        }
    }
    let layers = [
        "encoder.blocks.0.query",
        "encoder.blocks.0.value",
        "encoder.blocks.1.query",
    ];
    let modules = ["up-a", "up-b", "up-c"];
    let mut weights = Vec::new();
    let mut similarity = Vec::new();
    for task in ["cov-task", "lab-task"] {
        for (m, module) in modules.iter().enumerate() {
            similarity.push(SimilarityRow {
                task: task.into(),
                module: module.to_string(),
                cka: 0.2 + 0.2 * m as f64,
                // Falls where the plain CKA rises: the weights' favourite is last.
                cka_debiased: Some(0.5 - 0.2 * m as f64),
            });
            for (l, layer) in layers.iter().enumerate() {
                for seed in 0..3 {
                    weights.push(WeightRow {
                        task: task.into(),
                        method: "learned".into(),
                        k: Shot::K(1),
                        seed,
                        layer: layer.to_string(),
                        module: module.to_string(),
                        weight: 0.1
                            + 0.25 * m as f64
                            + 0.01 * l as f64
                            + if task == "lab-task" { 0.2 } else { 0.0 },
                    });
                }
            }
        }
    }
    ReportInputs {
        title: "Synthetic sweep".into(),
        reference_method: "head-only".into(),
        results,
        weights,
        similarity,
        modules: vec![
            ModuleFacts {
                task: "up-a".into(),
                test_accuracy: 0.42,
                classes: Some(10),
            },
            ModuleFacts {
                task: "up-b".into(),
                test_accuracy: 0.61,
                classes: Some(2),
            },
        ],
        preamble: "Config: `synthetic.toml`.".into(),
        comparisons: vec![
            ("learned".into(), "lora".into()),
            ("learned".into(), "absent".into()),
        ],
        roles: ClaimRoles::default(),
        tasks: ["cov-task", "lab-task"]
            .map(|t| {
                let facts = TaskFacts {
                    classes: 10,
                    full_per_class: 600,
                    // Known for one task only: the other's table keeps the seeds' interval.
                    test_examples: if t == "cov-task" { 400 } else { 0 },
                };
                (t.to_string(), facts)
            })
            .into(),
        plan: AnalysisPlan::default(),
        plan_status: PlanStatus::default(),
        planned: None,
    }
}

#[test]
fn head_to_head_pairs_methods_on_task_k_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    write_report(&synthetic(), dir.path()).unwrap();
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    let section = &summary[summary
        .find("## Head to head")
        .expect("a head-to-head section")..];
    assert!(
        !section.contains("absent"),
        "pairs without results are left out"
    );
    // learned - lora = 0.07 - 0.015 * seed: mean 5.5 points over seeds 0, 1, 2 of each task.
    // Both task means are 5.5 exactly, so the t over task means of "All shifts" has p = 0;
    // exploratory all the same: never bold, never called significant.
    let row = section
        .lines()
        .find(|l| l.starts_with("| learned − lora |"))
        .unwrap();
    assert!(row.contains("| +5.5 ["), "{row}");
    assert!(!section.contains("**"), "nothing bold: {section}");
    assert!(
        section.contains("| all shifts | learned − lora | 1 | +5.5 [+4.5, +6.5] | 2 task means | [+5.5, +5.5] | <0.001 |"),
        "{section}"
    );
    assert!(section.contains("## Head to head (exploratory)"));
    assert!(section.contains("### All shifts") && section.contains("### Label shift"));
}

#[test]
fn report_writes_summary_and_decodable_plots() {
    let dir = tempfile::tempdir().unwrap();
    // REPORT_OUT keeps the files for a look: REPORT_OUT=/tmp/r cargo test -p loramix-report.
    let out = std::env::var_os("REPORT_OUT").map_or(dir.path().to_path_buf(), PathBuf::from);
    let files = write_report(&synthetic(), &out).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&out).unwrap().to_string_lossy().into_owned())
        .collect();
    let plots = [
        "accuracy-covariate",
        "relative-covariate",
        "diff-covariate",
        "accuracy-label",
        "relative-label",
        "diff-label",
        "weights-cov-task",
        "weights-lab-task",
        "similarity",
    ];
    let expected: Vec<String> = std::iter::once("summary.md".to_string())
        .chain(
            plots
                .iter()
                .flat_map(|p| [format!("plots/{p}.svg"), format!("plots/{p}.png")]),
        )
        .collect();
    assert_eq!(names, expected);
    for file in &files {
        assert!(file.is_file(), "{}", file.display());
    }

    let md = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        md.starts_with("# Synthetic sweep\n\nConfig: `synthetic.toml`."),
        "{md}"
    );
    assert!(
        md.contains("| method | 1 | 2 | 5 | full |\n|---|---:|---:|---:|---:|\n"),
        "{md}"
    );
    let covariate = md.find("### Covariate shift").unwrap();
    assert!(
        covariate < md.find("### Label shift").unwrap(),
        "shift order"
    );
    // Each shift has one task, 3 seeds: 40, 41, 42 for head-only at k = 1. The shift table's
    // bootstrap can only resample those seeds (and says so); all three 40s has chance 1/27.
    let (shifts, per_task) = md.split_at(md.find("## Per task").unwrap());
    assert!(shifts.contains("| head-only | 41.0 [40.0, 42.0] |"), "{md}");
    assert!(shifts.contains("n = 3 runs per cell"), "{md}");
    assert!(
        shifts.contains("One task: the bootstrap can only resample its seeds"),
        "{md}"
    );
    // Per task: Student-t over the seeds, 41.0 ± 4.303 * 1 / sqrt(3), where the test split's
    // size is unknown; with 400 test examples its binomial variance joins the seeds':
    // 4.303 * sqrt(1/3 + 100^2 * 0.41 * 0.59 / 400) = 10.87.
    let (cov, lab) = per_task.split_at(per_task.find("### `lab-task`").unwrap());
    assert!(
        cov.contains("### `cov-task` (covariate shift, 400 test examples)"),
        "{md}"
    );
    assert!(cov.contains("| head-only | 41.0 ± 10.9 |"), "{md}");
    assert!(lab.contains("### `lab-task` (label shift)\n"), "{md}");
    assert!(lab.contains("| head-only | 41.0 ± 2.5 |"), "{md}");
    // learned - head-only is exactly +5 pp in every pair; descriptive, so never bold.
    assert!(md.contains("| learned | +5.0 [+5.0, +5.0] |"), "{md}");
    // In brief comes first, right after the preamble, then the claims.
    let (brief, claims) = (
        md.find("## In brief").unwrap(),
        md.find("## Claims").unwrap(),
    );
    assert!(claims < md.find("## Accuracy").unwrap(), "{md}");
    assert!(brief < claims, "{md}");
    assert!(
        md[..brief].ends_with("Config: `synthetic.toml`.\n\n"),
        "{md}"
    );
    assert!(md.contains("top module"), "{md}");
    assert!(
        md.contains("| `cov-task` | covariate | 3 | +1.00 | up-c | up-c |"),
        "{md}"
    );
    assert!(
        md.contains("highest CKA in 2 of 2 task(s) (covariate 1 of 1, label 1 of 1)."),
        "{md}"
    );
    // Rising weights in both tasks, but 3 modules each: 2 of the 36 joint orders are as
    // extreme, so p = 1/18 cannot pass 0.05.
    assert!(
        md.contains("Mean rho over 2 task(s): +1.00. Two-sided permutation p = 0.05"),
        "{md}"
    );
    assert!(md.contains("(here N = 3)"), "{md}");
    // The debiased CKA ranks the modules the other way: rho -1 in each task, and its first
    // module is never the weights'.
    let debiased = &md[md
        .find("#### Against the debiased CKA")
        .expect("debiased section")..];
    assert!(
        debiased.contains("| `lab-task` | -1.00 | up-c | up-a |"),
        "{md}"
    );
    assert!(
        debiased
            .contains("highest debiased CKA in 0 of 2 task(s) (covariate 0 of 1, label 0 of 1)."),
        "{md}"
    );
    assert!(
        debiased.contains("Mean rho over 2 task(s): -1.00, two-sided permutation p = 0.05"),
        "{md}"
    );
    // The summary links the crisp SVGs.
    assert!(md.contains("(plots/accuracy-covariate.svg)"), "{md}");
    assert!(md.contains("(plots/diff-label.svg)"), "{md}");
    assert!(
        md.contains("[cov-task](plots/weights-cov-task.svg)"),
        "{md}"
    );
    assert!(md.contains("(plots/similarity.svg)"), "{md}");
    assert!(!md.contains(".png)"), "{md}");

    for file in files[1..]
        .iter()
        .filter(|f| f.extension().unwrap() == "png")
    {
        let image = image::open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy();
        if name.starts_with("weights") {
            assert!(image.width() >= 300 && image.height() >= 200, "{name}");
        } else {
            assert_eq!((image.width(), image.height()), (900, 600), "{name}");
        }
    }
    for file in files[1..]
        .iter()
        .filter(|f| f.extension().unwrap() == "svg")
    {
        let svg = std::fs::read_to_string(file).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
    }
}

/// The text of `plots/<name>.svg` under `dir`.
fn svg(dir: &Path, name: &str) -> String {
    let path = dir.join("plots").join(format!("{name}.svg"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether `svg` has a `<text>` element reading exactly `text` (plotters puts the text on a
/// line of its own).
fn has_text(svg: &str, text: &str) -> bool {
    svg.split("<text").skip(1).any(|element| {
        let body = &element[element.find('>').unwrap() + 1..];
        body[..body.find("</text>").unwrap()].trim() == text
    })
}

#[test]
fn legends_name_every_method_with_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_report(&synthetic(), dir.path()).unwrap();
    let accuracy = svg(dir.path(), "accuracy-covariate");
    for label in ["head-only (n=3)", "lora (n=3)", "learned (n=3)"] {
        assert!(has_text(&accuracy, label), "{label} missing:\n{accuracy}");
    }
    let relative = svg(dir.path(), "relative-label");
    assert!(has_text(&relative, "learned (n=3)"), "{relative}");
    assert!(
        !relative.contains("head-only ("),
        "the reference is not its own series"
    );
    // Paired over the pooled tasks and seeds of the shift: 3 pairs per k.
    let diff = svg(dir.path(), "diff-covariate");
    assert!(has_text(&diff, "learned − lora (n=3)"), "{diff}");
}

#[test]
fn non_ascii_names_reach_the_plots_verbatim() {
    let mut inputs = synthetic();
    let (task, method) = ("café–Ü", "méthode-ü");
    for r in inputs.results.iter_mut().filter(|r| r.task == "cov-task") {
        r.task = task.into();
        if r.method == "learned" {
            r.method = method.into();
        }
    }
    for w in inputs.weights.iter_mut().filter(|w| w.task == "cov-task") {
        w.task = task.into();
    }
    let dir = tempfile::tempdir().unwrap();
    let files = write_report(&inputs, dir.path()).unwrap();
    let accuracy = svg(dir.path(), "accuracy-covariate");
    assert!(has_text(&accuracy, "méthode-ü (n=3)"), "{accuracy}");
    // File names stay ASCII; the title keeps the name.
    let map = svg(dir.path(), "weights-caf___");
    assert!(has_text(&map, "Learned weights: café–Ü (learned)"), "{map}");
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("plots/weights-caf___.png"))
    );
}

/// The scale a heat map's caption states: `lo to hi`.
fn stated_scale(svg: &str) -> &str {
    let marker = "colour scale shared by all heat maps: ";
    let start = svg.find(marker).expect("a stated colour scale") + marker.len();
    let len = svg[start..].find('<').unwrap();
    svg[start..start + len].trim()
}

#[test]
fn heat_maps_of_a_report_share_one_colour_scale() {
    let dir = tempfile::tempdir().unwrap();
    write_report(&synthetic(), dir.path()).unwrap();
    // cov-task spans 0.10..0.62 and lab-task 0.30..0.82: both maps use 0.10..0.82.
    for task in ["cov-task", "lab-task"] {
        let map = svg(dir.path(), &format!("weights-{task}"));
        assert_eq!(stated_scale(&map), "0.100 to 0.820", "{task}");
        for tick in ["0.100", "0.820"] {
            assert!(has_text(&map, tick), "{task}: colour bar tick {tick}");
        }
    }
}

#[test]
fn diff_plots_only_for_comparisons_with_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = synthetic();
    inputs.comparisons = vec![("learned".into(), "absent".into())];
    let files = write_report(&inputs, dir.path()).unwrap();
    assert!(
        !files.iter().any(|f| f.to_string_lossy().contains("diff-")),
        "{files:?}"
    );
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert!(!md.contains("diff-"), "{md}");

    inputs.comparisons = vec![("lora".into(), "head-only".into())];
    let dir = tempfile::tempdir().unwrap();
    write_report(&inputs, dir.path()).unwrap();
    let diff = svg(dir.path(), "diff-label");
    assert!(has_text(&diff, "lora − head-only (n=3)"), "{diff}");
    assert!(!diff.contains("learned"), "only the pairs given: {diff}");
}

#[test]
fn chance_line_and_full_size_only_with_task_facts() {
    let dir = tempfile::tempdir().unwrap();
    write_report(&synthetic(), dir.path()).unwrap();
    let accuracy = svg(dir.path(), "accuracy-label");
    assert!(
        has_text(&accuracy, "chance (1/classes): 10.0%"),
        "{accuracy}"
    );
    assert!(has_text(&accuracy, "full (≈600/class)"), "{accuracy}");
    let relative = svg(dir.path(), "relative-label");
    assert!(
        has_text(&relative, "full (≈600/class)"),
        "same ticks: {relative}"
    );
    assert!(
        !relative.contains("chance"),
        "no chance line on differences"
    );

    // Facts for cov-task only: the label shift (lab-task) gets neither.
    let mut inputs = synthetic();
    inputs.tasks.remove("lab-task");
    let dir = tempfile::tempdir().unwrap();
    write_report(&inputs, dir.path()).unwrap();
    let label = svg(dir.path(), "accuracy-label");
    assert!(!label.contains("chance"), "{label}");
    assert!(has_text(&label, "full") && !label.contains("≈"), "{label}");
    let covariate = svg(dir.path(), "accuracy-covariate");
    assert!(covariate.contains("chance"), "{covariate}");

    inputs.tasks = BTreeMap::new();
    let dir = tempfile::tempdir().unwrap();
    write_report(&inputs, dir.path()).unwrap();
    assert!(!svg(dir.path(), "accuracy-covariate").contains("chance"));
}

/// The line of `summary.md` for claim `item` (`1.` to `4.`, or `-` for the extra one).
fn claim(md: &str, item: &str) -> String {
    let start = md.find("## Claims").expect("a claims section");
    let end = md.find("## Accuracy").unwrap();
    md[start..end]
        .lines()
        .find(|l| l.starts_with(&format!("{item} ")))
        .unwrap_or_else(|| panic!("no claim {item} in {md}"))
        .to_string()
}

fn summary(inputs: &ReportInputs) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_report(inputs, dir.path()).unwrap();
    std::fs::read_to_string(dir.path().join("summary.md")).unwrap()
}

/// Four tasks in each of two shifts, 3 seeds: `learned` and `uniform` are `few_shot` points
/// above `full` and `lora` at k = 1, 2, 5 and `at_full` points at full shot, give or take a
/// task effect of up to half a point; seeds add ±1 point of noise. The plan is the default
/// family for these methods and shots.
fn claims_sweep(few_shot: f64, at_full: f64) -> ReportInputs {
    let mut results = Vec::new();
    let shots = [Shot::K(1), Shot::K(2), Shot::K(5), Shot::Full];
    for (shift, name) in [(Shift::Covariate, "cov"), (Shift::Label, "lab")] {
        for (t, offset) in [-0.5, 0.5, -0.25, 0.25].into_iter().enumerate() {
            let task = format!("{name}-{t}");
            let base = 0.4 + 0.05 * t as f64;
            for seed in 0..3u64 {
                let noise = [0.0, 0.01, -0.01][seed as usize];
                for (i, k) in shots.into_iter().enumerate() {
                    let x = base + 0.05 * i as f64;
                    let gain = if k == Shot::Full { at_full } else { few_shot } + offset;
                    results.push(run(&task, shift, "full", k, seed, x + noise / 2.0));
                    results.push(run(&task, shift, "lora", k, seed, x - noise / 2.0));
                    for method in ["uniform", "learned"] {
                        let y = x + gain / 100.0 + noise;
                        results.push(run(&task, shift, method, k, seed, y));
                    }
                }
            }
        }
    }
    let roles = ClaimRoles::default();
    ReportInputs {
        title: "Claims".into(),
        reference_method: "full".into(),
        results,
        comparisons: roles.comparisons(),
        plan: AnalysisPlan::default_for(&roles, &shots),
        roles,
        ..ReportInputs::default()
    }
}

#[test]
fn claim_verdicts_follow_the_primary_tests() {
    let md = summary(&claims_sweep(6.0, -0.5));
    let one = claim(&md, "1.");
    assert!(
        one.contains(": **supported**: 2 of 2 testable primary test(s) support it after Holm"),
        "{one}"
    );
    let two = claim(&md, "2.");
    assert!(two.contains(": **supported**: 1 of 1"), "{two}");
    assert!(two.contains("`learned` 50000, `lora` 50000"), "{two}");
    // The same gain in both shifts: no interaction, which cannot prove the claim.
    let three = claim(&md, "3.");
    assert!(three.contains(": **not contradicted**: 0 of 1"), "{three}");
    assert!(
        md.contains("no difference detected; would have detected one shift off by ≥ "),
        "{md}"
    );
    // One F over 8 tasks in 2 shifts: 1 and 8 - 2 degrees of freedom.
    assert!(md.contains("over 8 tasks, F(1, 6) = "), "{md}");
    assert!(
        claim(&md, "4.").ends_with(": **not tested here**."),
        "no weights: {md}"
    );
    assert!(md.contains("untestable: no learned weights of `learned` with CKA values"));

    // No few-shot gain: claim 1 fails and says what it could have seen; a 6-point deficit at
    // full fails claim 2.
    let md = summary(&claims_sweep(0.0, -6.0));
    let one = claim(&md, "1.");
    assert!(one.contains(": **not supported**: 0 of 2"), "{one}");
    assert!(
        md.contains("   - `learned − lora` superiority at k = 1, 2: ")
            && md.contains("not detected; would have detected ≥ "),
        "{md}"
    );
    let two = claim(&md, "2.");
    assert!(two.contains(": **not supported**:"), "{two}");
    assert!(
        md.contains("   - `learned − lora` noninferiority at k = full: -6.0 ["),
        "{md}"
    );

    // Gains in one shift only: the interaction detects it, so claim 3 fails.
    let mut inputs = claims_sweep(6.0, 0.0);
    for r in inputs.results.iter_mut() {
        let composed = r.method == "uniform" || r.method == "learned";
        if composed && r.shift == Shift::Label && r.k != Shot::Full {
            r.accuracy -= 0.06;
        }
    }
    let md = summary(&inputs);
    let three = claim(&md, "3.");
    assert!(three.contains(": **not supported**: 0 of 1"), "{three}");
    assert!(md.contains("covariate +6.0, label +0.0"), "{md}");
    assert!(md.contains("the effect differs across shifts"), "{md}");
}

/// The `## Primary tests` table's row for `test` (its kind's name) of `pair`.
fn primary_row<'a>(md: &'a str, kind: &str, pair: &str) -> &'a str {
    let start = md
        .find("## Primary tests")
        .expect("a primary tests section");
    md[start..]
        .lines()
        .find(|l| l.contains(&format!("| {kind} | `{pair}` |")))
        .unwrap_or_else(|| panic!("no {kind} row of {pair} in {md}"))
}

#[test]
fn holm_runs_over_the_primary_family_only() {
    // Two primary tests with the same p; the exploratory family holds 60.
    let mut inputs = claims_sweep(1.0, -0.5);
    inputs.plan.primary.retain(|t| t.claim == 1);
    let md = summary(&inputs);
    assert!(md.contains("Holm runs over these 2 tests only"), "{md}");
    assert!(md.contains("level 0.05/2 = 0.0250"), "{md}");
    let row = primary_row(&md, "superiority", "learned − lora");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // claim, test, pair, shots, estimate, tau, p, Holm p, detectable, verdict.
    assert_eq!(
        cells[1..5],
        ["1", "superiority", "`learned − lora`", "1, 2"]
    );
    assert!(cells[5].starts_with("+1.0 ["), "{row}");
    let (p, holm): (f64, f64) = (cells[7].parse().unwrap(), cells[8].parse().unwrap());
    assert!(
        (holm - 2.0 * p).abs() <= 0.0015 && p > 0.001,
        "Holm over 2: {row}"
    );
    assert_eq!(cells[10], "detected", "{row}");

    // An exploratory test with a tiny p decides nothing: with no plan, no claim is judged.
    let mut inputs = claims_sweep(6.0, -0.5);
    inputs.plan = AnalysisPlan::default();
    let md = summary(&inputs);
    assert!(md.contains("No analysis plan: no primary test, so no claim is judged"));
    for item in ["1.", "2.", "3.", "4."] {
        assert!(
            claim(&md, item).ends_with(": **not tested here**."),
            "{item}: {md}"
        );
    }
    assert!(!md.contains("## Primary tests"), "{md}");
    let tests = &md[md.find("### Tests").unwrap()..];
    assert!(
        tests.contains("| <0.001 |") && !tests.contains("**"),
        "{tests}"
    );
    assert!(!md.to_lowercase().contains("significant after"), "{md}");
}

#[test]
fn claims_judge_the_methods_the_plan_names() {
    let mut inputs = claims_sweep(6.0, -0.5);
    for row in &mut inputs.results {
        if row.method == "learned" {
            row.method = "mix".into();
        }
    }
    inputs.roles.learned = Some("mix".into());
    inputs.plan = AnalysisPlan::default_for(&inputs.roles, &[Shot::K(1), Shot::Full]);
    let md = summary(&inputs);
    assert!(claim(&md, "1.").contains(": **supported**: 2 of 2"), "{md}");
    assert!(
        md.contains("   - `mix − lora` noninferiority at k = full: "),
        "{md}"
    );
    assert!(md.contains("learned composition `mix`"), "{md}");

    // A plan naming a method without runs: that test cannot be run, and says why.
    inputs.plan = AnalysisPlan::default_for(&ClaimRoles::default(), &[Shot::K(1)]);
    let md = summary(&inputs);
    assert!(
        md.contains(
            "untestable: no (task, seed) has both `learned` and `lora` at every listed shot"
        ),
        "{md}"
    );
    let one = claim(&md, "1.");
    assert!(
        one.contains(": **supported**: 1 of 1 testable primary test(s) support it after Holm (1 more untestable)"),
        "uniform's test still runs: {one}"
    );
}

#[test]
fn the_summary_says_whose_plan_it_is() {
    let mut inputs = claims_sweep(6.0, -0.5);
    let hash = inputs.plan.hash();
    inputs.plan_status = PlanStatus::RegisteredWithRun;
    let md = summary(&inputs);
    assert!(
        md.contains(&format!(
            "Analysis plan `{hash}` (SHA-256 of its canonical text), registered with this run"
        )),
        "{md}"
    );
    assert!(!md.contains("new analysis of old data"), "{md}");

    inputs.plan_status = PlanStatus::Reanalysis {
        registered_hash: Some("abc123".into()),
    };
    let md = summary(&inputs);
    let claims = &md[..md.find("## Accuracy").unwrap()];
    assert!(
        claims.contains("**This is a new analysis of old data**")
            && claims.contains("the run was made with plan `abc123`"),
        "{md}"
    );
    inputs.plan_status = PlanStatus::default();
    let md = summary(&inputs);
    assert!(md.contains("no plan was registered with the run"), "{md}");
}

#[test]
fn a_plan_with_a_bad_shape_is_refused() {
    let mut inputs = claims_sweep(6.0, 0.0);
    inputs.plan.primary.push(PrimaryTest {
        claim: 1,
        test: TestKind::Superiority,
        a: "learned".into(),
        b: None,
        shots: vec![Shot::K(1)],
    });
    let dir = tempfile::tempdir().unwrap();
    let err = write_report(&inputs, dir.path()).unwrap_err();
    assert!(matches!(err, ReportError::Plan(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "primary test 6: a superiority test needs `b`"
    );
}

#[test]
fn head_to_head_tables_need_their_comparisons() {
    let mut inputs = claims_sweep(6.0, 0.0);
    inputs.comparisons.clear();
    let md = summary(&inputs);
    assert!(!md.contains("## Head to head"), "{md}");
    assert!(
        claim(&md, "1.").contains("**supported**"),
        "the plan does not need them: {md}"
    );
}

/// The section between `## In brief` and `## Claims`.
fn brief(md: &str) -> String {
    let start = md.find("## In brief").expect("an In brief section");
    let end = md.find("## Claims").expect("a claims section");
    assert!(start < end, "In brief comes before the claims");
    md[start..end].to_string()
}

#[test]
fn in_brief_calls_the_verdicts_of_an_unfinished_sweep_interim() {
    let mut inputs = claims_sweep(6.0, -0.5);
    let n = inputs.results.len();
    let left = Left {
        thread_hours: 51.96,
        primary_thread_hours: 7.04,
        untimed: 40,
    };
    inputs.planned = Some(Planned {
        runs: n + 1,
        done: n,
        left: Some(left),
    });
    let md = summary(&inputs);
    let partial = brief(&md);
    assert!(
        partial.contains(&format!(
            "- **Runs:** {n} of {} planned runs (about 52.0 thread-hours of cells left, 7.0 of \
             them those the primary tests need, tuning included, at the times of those done or \
             of an earlier config's; 40 cells of a method and shot never timed, not counted): ",
            n + 1
        )),
        "{partial}"
    );
    assert!(
        partial.contains("- **Shows:** Interim, the sweep unfinished: "),
        "{partial}"
    );
    let claims = &md[md.find("## Claims").unwrap()..];
    assert!(
        claims.contains(&format!(
            "**Interim**: {n} of the sweep's {} planned",
            n + 1
        )),
        "{claims}"
    );
    inputs.planned = Some(Planned {
        runs: n,
        done: n,
        left: Some(left),
    });
    let md = summary(&inputs);
    assert!(
        brief(&md).contains(&format!("- **Runs:** {n} runs: ")),
        "{md}"
    );
    assert!(!md.contains("Interim"), "{md}");
}

#[test]
fn in_brief_states_the_modules_the_runs_and_what_the_tests_show() {
    let md = summary(&synthetic());
    let section = brief(&md);
    assert!(
        section.contains(
            "- **Modules:** 2 upstream LoRA modules score 42.0% to 61.0% on their own tasks' \
             test splits; the weakest against chance, `up-b`, is +11.0 points from it (2 classes)."
        ),
        "{section}"
    );
    let results = &synthetic().results;
    let runs = format!(
        "- **Runs:** {} runs: 2 downstream tasks (1 covariate, 1 label shift)",
        results.len()
    );
    assert!(section.contains(&runs), "{section}");
    assert_eq!(
        section,
        loramix_report::in_brief(&synthetic()),
        "the section alone is the same text"
    );

    // Every few-shot difference large and consistent: claim 1 supported, and nothing left
    // that a larger run is needed for among the superiority tests.
    let strong = summary(&claims_sweep(6.0, -0.5));
    let strong = brief(&strong);
    assert!(
        strong.contains("claims judged here supported (claim 1"),
        "{strong}"
    );
    assert!(!strong.contains("would take roughly"), "{strong}");

    // No difference: claim 1 not supported (claim 2, non-inferiority, is), and the power of
    // the most sensitive superiority test stated; these 8 tasks reach 3 points already.
    let null = summary(&claims_sweep(0.0, 0.0));
    let null = brief(&null);
    assert!(
        null.contains("- **Shows:** 1 of the 3 claims judged here supported (claim 2)."),
        "{null}"
    );
    assert!(
        null.contains("- **Cannot show:** With 8 tasks, the most sensitive superiority test would detect only a true difference of 1.0 points or more"),
        "{null}"
    );
    assert!(!null.contains("would take roughly"), "{null}");
}
