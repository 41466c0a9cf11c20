//! `loramix run` end to end on the committed fixtures with a tiny model: the files and their
//! columns, reuse of finished work, resume after an interrupted sweep, and configs that must be
//! refused before any training starts.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use loramix_experiment::method::Kind;
use loramix_experiment::runner::{Options, Stage, execute};
use loramix_experiment::store::Shard;

mod common;
use common::{VISION_EXPERIMENT, VISION_SUITE, rows_without_timings, write_experiment};

/// burn's random generator is process-wide and every cell reseeds it, so two sweeps in one
/// process must not interleave: the tests take turns.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const METHODS: usize = 9;
const CELLS: usize = METHODS * 2 * 2;

fn run(experiment: &Path, runs: &Path, stage: Stage) -> loramix_experiment::error::Result<()> {
    run_shard(experiment, runs, stage, Shard::ALL)
}

fn run_shard(
    experiment: &Path,
    runs: &Path,
    stage: Stage,
    shard: Shard,
) -> loramix_experiment::error::Result<()> {
    let options = Options {
        runs: runs.to_path_buf(),
        shard,
        parts: loramix_backend::DEFAULT_BATCH_PARTS,
        accept_rebuilt_modules: false,
    };
    execute(experiment, stage, &options)
}

/// The rows of a CSV file without the timing columns (which differ between runs).
fn line_count(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn run_writes_every_artifact_and_reuses_them() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Run).unwrap();

    let root = runs.join("tiny");
    check_results(&root);
    check_report(&root);

    // A second run reuses the base, the adapters and every cell.
    let sweep = root.join("sweep/all.csv");
    let base_dirs = |root: &Path| {
        fs::read_dir(root)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("base-")
            })
            .count()
    };
    run(&experiment, &runs, Stage::Run).unwrap();
    assert_eq!(line_count(&sweep), CELLS + 1);
    assert_eq!(base_dirs(&root), 1);

    // Changing one method's learning rate redoes that method's cells only.
    let changed = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, |t| {
        t.replace(
            "kind = \"uniform\"\nsteps = 3\nlr = 1e-2",
            "kind = \"uniform\"\nsteps = 3\nlr = 2e-2",
        )
    });
    run(&changed, &runs, Stage::Transfer).unwrap();
    assert_eq!(line_count(&sweep), CELLS + 1 + 4);
    assert_eq!(base_dirs(&root), 1);
}

/// `results.csv` of the fixture run: its header, one label-shift row per cell with an
/// accuracy, and each method's trainable parameters.
fn check_results(root: &Path) {
    let results = root.join("results.csv");
    let header = fs::read_to_string(&results)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        header,
        "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec"
    );
    let rows = rows_without_timings(&results);
    assert_eq!(rows.len(), CELLS);
    for row in &rows {
        assert_eq!(row[0], "optdigits-b-rotated");
        assert_eq!(row[1], "label");
        let accuracy: f64 = row[5].parse().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{row:?}");
    }
    // Trainable parameters: the head (16 x 3 + 3) for frozen backbones, more for the rest.
    let params = |method: &str| -> usize {
        rows.iter().find(|r| r[2] == method).unwrap()[6]
            .parse()
            .unwrap()
    };
    assert_eq!(params("head-only"), 51);
    assert_eq!(params("uniform"), 51);
    assert_eq!(params("search"), 51 + 2);
    assert_eq!(
        params("learned"),
        51 + 2 * 2,
        "one weight per module per composed layer"
    );
    assert!(params("lora") > 51 && params("full") > params("lora"));
}

/// The run's learned weights, summary, plots and manifest.
fn check_report(root: &Path) {
    let weights = fs::read_to_string(root.join("learned_weights.csv")).unwrap();
    assert!(weights.starts_with("task,method,k,seed,layer,module,weight"));
    assert!(weights.contains("encoder.blocks.0.query"), "{weights}");
    let summary = fs::read_to_string(root.join("summary.md")).unwrap();
    for expected in [
        "# loramix: tiny",
        "Label shift",
        "| head-only |",
        "Spearman",
    ] {
        assert!(summary.contains(expected), "summary lacks {expected:?}");
    }
    // The base without a module is the similarity baseline, one row per downstream task.
    assert!(
        summary.contains("The base without any module has CKA"),
        "{summary}"
    );
    // Each upstream module with its own test accuracy.
    let module = summary.split("optdigits-a ").nth(1).unwrap_or_default();
    assert!(
        module
            .split_once('%')
            .is_some_and(|(a, _)| a.parse::<f64>().is_ok()),
        "{summary}"
    );
    for plot in ["accuracy-label.png", "relative-label.png"] {
        let image = image::open(root.join("plots").join(plot)).unwrap();
        assert!(image.width() > 100 && image.height() > 100);
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["cells"], CELLS);
    assert!(manifest["experiment"]["name"] == "tiny" && manifest["backend"].is_string());
    let stages = manifest["stage_seconds"].as_object().unwrap();
    assert!(
        ["pretrain", "upstream", "transfer", "similarity"]
            .iter()
            .all(|s| stages.contains_key(*s))
    );
}

#[test]
fn resumed_sweep_gives_the_rows_of_an_unbroken_one() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Transfer).unwrap();
    let sweep = runs.join("tiny/sweep/all.csv");
    let unbroken = rows_without_timings(&sweep);
    assert_eq!(unbroken.len(), CELLS);
    let weights = runs.join("tiny/sweep/all.weights.csv");
    let sorted_lines = |path: &Path| {
        let mut lines: Vec<String> = fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let unbroken_weights = sorted_lines(&weights);
    assert!(unbroken_weights.len() > 10, "the sweep learns weights");

    // Kill the sweep after 13 cells, in the middle of writing the 14th result row, when the
    // weight rows of the later cells were written (a cell writes its weights first).
    let text = fs::read_to_string(&sweep).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let partial = &lines[14][..lines[14].len() / 2];
    fs::write(&sweep, format!("{}\n{partial}", lines[..14].join("\n"))).unwrap();

    run(&experiment, &runs, Stage::Transfer).unwrap();
    let resumed = rows_without_timings(&sweep);
    assert_eq!(resumed, unbroken);
    // The 13 finished cells were kept, timings and all, not computed again.
    let after = fs::read_to_string(&sweep).unwrap();
    assert_eq!(after.lines().take(14).collect::<Vec<_>>(), lines[..14]);
    // One set of weight rows per cell, as in the unbroken sweep.
    assert_eq!(sorted_lines(&weights), unbroken_weights);
}

#[test]
fn report_refuses_two_shards_that_disagree_on_a_learned_weight() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Transfer).unwrap();
    // A second shard file holding the same cells, one weight changed.
    let sweep = runs.join("tiny/sweep");
    let text = fs::read_to_string(sweep.join("all.weights.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[6] = "0.123456".into();
    lines[1] = fields.join(",");
    fs::write(
        sweep.join("shard-0-of-2.weights.csv"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    let err = run(&experiment, &runs, Stage::Report)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("all.weights.csv:2") && err.contains("shard-0-of-2.weights.csv:2"),
        "{err}"
    );
}

#[test]
fn shards_split_the_sweep_and_report_merges_them() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let whole = dir.path().join("whole");
    run(&experiment, &whole, Stage::Run).unwrap();

    let sharded = dir.path().join("sharded");
    for index in 0..3 {
        let shard = Shard { index, count: 3 };
        run_shard(&experiment, &sharded, Stage::Transfer, shard).unwrap();
        let own = line_count(&sharded.join(format!("tiny/sweep/shard-{index}-of-3.csv")));
        assert_eq!(
            own,
            CELLS / 3 + 1,
            "shard {index} runs a third of the cells"
        );
        if index == 0 {
            // A report on one shard of three: a third of the planned cells, called interim.
            run(&experiment, &sharded, Stage::Report).unwrap();
            assert_eq!(planned_and_done(&sharded), (CELLS, CELLS / 3));
        }
        if index == 1 {
            // Two of three: what is left, timed by the cells done (two of some method and shot).
            run(&experiment, &sharded, Stage::Report).unwrap();
            let done = [0, 1].map(|i| sharded.join(format!("tiny/sweep/shard-{i}-of-3.csv")));
            let expected = time_left(&whole.join("tiny/results.csv"), &done, |_, _| true);
            let primary = primary_cells(&experiment);
            let primary_left = time_left(&whole.join("tiny/results.csv"), &done, primary).0;
            assert!(
                primary_left > 0.0 && primary_left < expected.0,
                "{primary_left}"
            );
            let manifest = fs::read_to_string(sharded.join("tiny/manifest.json")).unwrap();
            let json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
            let left = &json["planned"]["left"];
            let hours = left["thread_hours"].as_f64().unwrap();
            assert!((hours - expected.0).abs() < 1e-9, "{hours} {expected:?}");
            let primary_hours = left["primary_thread_hours"].as_f64().unwrap();
            assert!(
                (primary_hours - primary_left).abs() < 1e-9,
                "{primary_hours}"
            );
            assert_eq!(left["untimed"].as_u64().unwrap() as usize, expected.1);
        }
    }
    run(&experiment, &sharded, Stage::Report).unwrap();
    assert_eq!(
        rows_without_timings(&sharded.join("tiny/results.csv")),
        rows_without_timings(&whole.join("tiny/results.csv"))
    );
    assert_eq!(planned_and_done(&sharded), (CELLS, CELLS));
}

/// Whether a primary test of the experiment's plan reads a method's cells at a shot (`a` or
/// `b` of a test whose shots hold it, or which names none).
fn primary_cells(experiment: &Path) -> impl Fn(&str, &str) -> bool {
    let plan = loramix_experiment::config::Experiment::from_file(experiment)
        .unwrap()
        .analysis_plan();
    let tests: Vec<(String, Option<String>, Vec<String>)> = (plan.primary.iter())
        .map(|t| {
            (
                t.a.clone(),
                t.b.clone(),
                t.shots.iter().map(|k| k.to_string()).collect(),
            )
        })
        .collect();
    move |method, shot| {
        (tests.iter()).any(|(a, b, shots)| {
            (a == method || b.as_deref() == Some(method))
                && (shots.is_empty() || shots.iter().any(|k| k == shot))
        })
    }
}

/// Thread-hours of the cells of `all` (a finished sweep's results) that `keep` takes by method
/// and shot and that are missing from `done` (shard files), each at the mean training seconds
/// of the done cells of its method and shot, and how many missing cells have none: what a
/// report of that shard should say is left.
fn time_left(all: &Path, done: &[PathBuf], keep: impl Fn(&str, &str) -> bool) -> (f64, usize) {
    use loramix_experiment::rows::CellRow;
    use loramix_experiment::store::read_rows;
    use std::collections::BTreeMap;
    let all = loramix_report::read_results(&[all.to_path_buf()]).unwrap();
    let done: Vec<CellRow> = done.iter().flat_map(|f| read_rows(f).unwrap()).collect();
    let id = |t: &str, m: &str, k, s| format!("{t}/{m}/{k}/{s}");
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut held = Vec::new();
    for r in &done {
        let r = &r.result;
        let group = times.entry(format!("{}/{}", r.method, r.k)).or_default();
        group.push(r.train_seconds);
        held.push(id(&r.task, &r.method, r.k, r.seed));
    }
    let mut left = (0.0, 0);
    for r in all
        .iter()
        .filter(|r| !held.contains(&id(&r.task, &r.method, r.k, r.seed)))
        .filter(|r| keep(&r.method, &r.k.to_string()))
    {
        match times.get(&format!("{}/{}", r.method, r.k)) {
            Some(t) => left.0 += t.iter().sum::<f64>() / t.len() as f64 / 3600.0,
            None => left.1 += 1,
        }
    }
    left
}

/// The planned cells and those done, as the run's manifest records them; checks that the
/// summary calls its verdicts interim exactly when some are missing.
fn planned_and_done(runs: &Path) -> (usize, usize) {
    let manifest = fs::read_to_string(runs.join("tiny/manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let count = |key: &str| json["planned"][key].as_u64().unwrap() as usize;
    let (planned, done) = (count("runs"), count("done"));
    let summary = fs::read_to_string(runs.join("tiny/summary.md")).unwrap();
    assert_eq!(summary.contains("Interim"), done < planned, "{summary}");
    (planned, done)
}

#[test]
fn the_plan_is_registered_before_the_sweep_and_a_changed_plan_is_called_a_reanalysis() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let with_plan = |a: &'static str| {
        move |t: &str| {
            format!(
                "{t}\n[analysis]\n[[analysis.primary]]\nclaim = 1\ntest = \"superiority\"\n\
                 a = \"{a}\"\nb = \"lora\"\nshots = [1]\n"
            )
        }
    };
    let experiment = write_experiment(
        dir.path(),
        VISION_SUITE,
        VISION_EXPERIMENT,
        with_plan("learned"),
    );
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Run).unwrap();
    let registration = runs.join("tiny/sweep/plan.json");
    let registered = fs::read_to_string(&registration).unwrap();
    let json: serde_json::Value = serde_json::from_str(&registered).unwrap();
    assert_eq!(json["plan"]["primary"][0]["a"], "learned");
    let summary = fs::read_to_string(runs.join("tiny/summary.md")).unwrap();
    assert!(summary.contains("registered with this run"), "{summary}");
    assert!(!summary.contains("new analysis of old data"), "{summary}");
    assert_compared_cells_ran_first(&runs.join("tiny/sweep/all.csv"));
    // A plan written after the sweep ran: the registration stays, the report says so.
    let changed = write_experiment(
        dir.path(),
        VISION_SUITE,
        VISION_EXPERIMENT,
        with_plan("uniform"),
    );
    run(&changed, &runs, Stage::Transfer).unwrap();
    run(&changed, &runs, Stage::Report).unwrap();
    assert_eq!(fs::read_to_string(&registration).unwrap(), registered);
    let summary = fs::read_to_string(runs.join("tiny/summary.md")).unwrap();
    let hash = json["hash"].as_str().unwrap();
    assert!(summary.contains("new analysis of old data"), "{summary}");
    assert!(
        summary.contains(hash),
        "the registered plan is named: {summary}"
    );
    // A plan naming a method the experiment lacks is refused when read.
    let unknown = write_experiment(
        dir.path(),
        VISION_SUITE,
        VISION_EXPERIMENT,
        with_plan("magic"),
    );
    let err = run(&unknown, &runs, Stage::Check).unwrap_err().to_string();
    assert!(err.contains("[analysis] names method `magic`"), "{err}");
}

/// The cells the plan compares ran first: learned and LoRA at k = 1 (one task, 2 seeds), then
/// all the others.
fn assert_compared_cells_ran_first(sweep: &Path) {
    let sweep = fs::read_to_string(sweep).unwrap();
    let compared: Vec<bool> = (sweep.lines().skip(1))
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            ["learned", "lora"].contains(&fields[2]) && fields[3] == "1"
        })
        .collect();
    let first = compared.iter().take_while(|&&c| c).count();
    assert!(
        first == 4 && compared[first..].iter().all(|&c| !c),
        "{sweep}"
    );
}

#[test]
fn a_suite_that_is_a_fifo_is_refused_instead_of_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let suite = dir.path().join("suite.toml");
    std::fs::remove_file(&suite).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&suite)
        .status()
        .unwrap();
    assert!(made.success());
    let runs = dir.path().join("runs");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(run(&experiment, &runs, Stage::Check).map_err(|e| e.to_string()));
    });
    let err = receive
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("refused at once, not read forever")
        .unwrap_err();
    assert!(
        err.contains("suite.toml") && err.contains("not a regular file"),
        "{err}"
    );
}

#[test]
fn an_upstream_rank_above_the_layers_is_refused_before_upstream_training() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, |t| {
        t.replacen("rank = 2\nalpha = 4", "rank = 100000\nalpha = 4", 1)
    });
    let runs = dir.path().join("runs");
    let err = run(&experiment, &runs, Stage::Run).unwrap_err().to_string();
    assert!(err.contains("upstream.rank 100000 is above 16"), "{err}");
}

/// Edits of the fixture experiment (`from` replaced by `to`), each refused with `expected` in
/// its message before anything trains.
const BAD_CONFIGS: &[(&str, &str, &str)] = &[
    ("name = \"tiny\"", "name = \"..\"", "it names a folder"),
    (
        "budget = 4",
        "bound = -1.0",
        "`bound` must be positive, not -1",
    ),
    (
        "budget = 4",
        "sigma = nan",
        "`sigma` must be positive, not NaN",
    ),
    (
        "density = 0.5",
        "density = 0.0",
        "`density` must be (0, 1], not 0",
    ),
    ("drop = 0.5", "drop = 1.0", "`drop` must be [0, 1), not 1"),
    (
        "kind = \"lora\"",
        "kind = \"lora\"\nrank = 0",
        "`rank` must be 1 or more, not 0",
    ),
    (
        "examples = 3",
        "examples = 0",
        "similarity.steps and similarity.examples must be at least 1",
    ),
    (
        "examples = 3",
        "examples = 3\nconverge = { validation_per_class = 5, every = 0, patience = 2 }",
        "similarity.converge: validation_per_class, every and patience must be at least 1",
    ),
    (
        "batch = 4\n",
        "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\nselect = \"tuning-tasks\"\n",
        "transfer.tuning.select = \"tuning-tasks\" needs `[[tuning]]` tasks in suite `fixture-vision`",
    ),
    (
        "batch = 4\n",
        "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\ntuning_seeds = 0\n",
        "transfer.tuning.validation_full, checks and tuning_seeds must be at least 1",
    ),
    (
        "patch_size = 7",
        "patch_size = 7\nmax_len = 100000",
        "model.max_len must be 2 to 4096 tokens, not 100000",
    ),
    (
        "kind = \"uniform\"",
        "kind = \"magic\"",
        "unknown variant `magic`",
    ),
    (
        "data = \"DATA\"",
        "data = \"/no/such/folder\"",
        "does not exist",
    ),
    (
        "shots = [1, \"full\"]",
        "shots = [1, 3]",
        "optdigits-b-rotated",
    ),
    (
        "kind = \"lora\"",
        "kind = \"lora\"\ndensity = 0.5",
        "`density` does not apply",
    ),
    (
        "weights = [1.0, -0.5]",
        "weights = [1.0]",
        "1 weights given for 2 upstream modules",
    ),
    (
        "[model]",
        "[model]\npretrained = \"minilm-l6\"",
        "model.dim cannot be set with model.pretrained",
    ),
    (
        "[model]\ndim = 16\ndepth = 1\nheads = 2\nmlp_dim = 32\npatch_size = 7",
        "[model]\npretrained = \"/no/such/checkpoint\"",
        "[pretrain] cannot be given with model.pretrained",
    ),
    (
        "[pretrain]\nsteps = 4\nbatch = 8\nlr = 1e-3",
        "",
        "[pretrain] is missing",
    ),
    (
        "[upstream]\nsteps = 3\nbatch = 8\nlr = 1e-3",
        "[upstream]\nsteps = 3\nbatch = 8\nlr = -1.0",
        "upstream.lr must be a positive number, not -1",
    ),
    (
        "[pretrain]\nsteps = 4\nbatch = 8\nlr = 1e-3",
        "[pretrain]\nsteps = 4\nbatch = 8\nlr = nan",
        "pretrain.lr must be a positive number, not NaN",
    ),
    (
        "name = \"tiny\"",
        "name = \"ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt\"",
        "must be 1 to 100 letters",
    ),
    (
        "kind = \"lora\"\nsteps = 3",
        "kind = \"lora\"\nsteps = 30",
        "the methods train for different numbers of steps (head-only 3, full 3, lora 30,",
    ),
    (
        "batch = 4\n",
        "batch = 4\nunequal_steps = \" \"\n",
        "transfer.unequal_steps must say why",
    ),
];

#[test]
fn bad_configs_are_refused_before_any_training() {
    let _turn = one_at_a_time();
    for &(from, to, expected) in BAD_CONFIGS {
        let dir = tempfile::tempdir().unwrap();
        let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, |t| {
            t.replacen(from, to, 1)
        });
        let runs = dir.path().join("runs");
        let err = run(&experiment, &runs, Stage::Run).unwrap_err().to_string();
        assert!(err.contains(expected), "{to}: {err}");
        assert!(!runs.join("tiny").exists(), "{to}: something was trained");
    }
}

const TEXT_SUITE: &str = r#"
name = "fixture-text"
modality = "text"
split_seed = 5
test_per_class = 1

[pretrain]
name = "nouns"
source = "wordnet-nouns"

[[upstream]]
name = "fortune-topics"
source = "fortunes"
classes = ["computers", "food"]

[[upstream]]
name = "tweets-shouted"
source = "tweets"
part = { index = 0, of = 2 }
transforms = [{ typos = 0.1 }, "uppercase"]

[[downstream]]
name = "sentiment"
source = "tweets"
part = { index = 1, of = 2 }
groups = { negative = ["negative"], other = ["neutral", "positive"] }
shift = "task"
"#;

#[test]
fn a_text_study_runs_end_to_end() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), TEXT_SUITE, VISION_EXPERIMENT, |t| {
        let methods = t.find("[[method]]").unwrap();
        let head = t[..methods].replace("patch_size = 7", "max_len = 48");
        format!(
            "{head}{}",
            "[[method]]\nkind = \"head-only\"\nsteps = 2\nlr = 1e-2\n\n\
             [[method]]\nkind = \"lora\"\nsteps = 2\nlr = 1e-3\n\n\
             [[method]]\nkind = \"learned\"\nsteps = 2\nlr = 1e-2\n"
        )
    });
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Run).unwrap();
    let rows = rows_without_timings(&runs.join("tiny/results.csv"));
    assert_eq!(rows.len(), 3 * 2 * 2);
    assert!(rows.iter().all(|r| r[0] == "sentiment" && r[1] == "task"));
    assert!(runs.join("tiny/plots/accuracy-task.png").exists());
}

/// The tiny BertModel (random weights, WordPiece tokenizer) that `tools/reference/
/// make_tiny_models.py` wrote with PyTorch.
fn tiny_bert() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny-bert")
}

fn pretrained_text_experiment(dir: &Path, checkpoint: &Path) -> PathBuf {
    write_experiment(dir, TEXT_SUITE, VISION_EXPERIMENT, |t| {
        let model = t.find("[model]").unwrap();
        let upstream = t.find("[upstream]").unwrap();
        let methods = t.find("[[method]]").unwrap();
        format!(
            "{}[model]\npretrained = \"{}\"\nmax_len = 24\n\n{}{}",
            &t[..model],
            checkpoint.display(),
            &t[upstream..methods],
            "[[method]]\nkind = \"head-only\"\nsteps = 2\nlr = 1e-2\n\n\
             [[method]]\nkind = \"lora\"\nsteps = 2\nlr = 1e-3\n\n\
             [[method]]\nkind = \"uniform\"\nsteps = 2\nlr = 1e-2\n\n\
             [[method]]\nkind = \"learned\"\nsteps = 2\nlr = 1e-2\n"
        )
    })
}

#[test]
fn a_text_study_on_a_pretrained_bert_skips_pretraining_and_runs_end_to_end() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = pretrained_text_experiment(dir.path(), &tiny_bert());
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Run).unwrap();
    let root = runs.join("tiny");
    let rows = rows_without_timings(&root.join("results.csv"));
    assert_eq!(rows.len(), 4 * 2 * 2);
    // Head only trains the head on the 16-wide pooled embedding: 16 x 2 + 2.
    let head = rows.iter().find(|r| r[2] == "head-only").unwrap();
    assert_eq!(head[6], "34");
    let learned = fs::read_to_string(root.join("learned_weights.csv")).unwrap();
    assert!(learned.contains("encoder.blocks.1.value"), "{learned}");
    let entries: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        entries.iter().all(|e| !e.starts_with("base-")),
        "a pretrained base is not pretrained: {entries:?}"
    );
    let summary = fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(summary.contains("pretrained `"), "{summary}");
}

#[test]
fn a_missing_or_partial_checkpoint_is_refused_before_training() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    let experiment = pretrained_text_experiment(dir.path(), &missing);
    let runs = dir.path().join("runs");
    let err = run(&experiment, &runs, Stage::Run).unwrap_err().to_string();
    assert!(
        err.contains("no-such-model") && err.contains("no model.safetensors"),
        "{err}"
    );

    // A checkpoint without one tensor: the error names the file and the tensor.
    let partial = dir.path().join("partial");
    fs::create_dir_all(&partial).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        fs::copy(tiny_bert().join(file), partial.join(file)).unwrap();
    }
    let bytes = fs::read(tiny_bert().join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "encoder.layer.1.output.dense.weight")
        .collect();
    safetensors::serialize_to_file(kept, None, &partial.join("model.safetensors")).unwrap();
    let experiment = pretrained_text_experiment(dir.path(), &partial);
    let err = run(&experiment, &runs, Stage::Run).unwrap_err().to_string();
    assert!(
        err.contains("partial/model.safetensors")
            && err.contains("missing tensor `encoder.layer.1.output.dense.weight`"),
        "{err}"
    );
    assert!(!runs.join("tiny").exists(), "something was trained");
}

#[test]
fn shipped_experiments_fit_their_suites() {
    use loramix_data::{ImageItem, Suite, TextItem};
    use loramix_experiment::config::Experiment;
    use loramix_experiment::plan::Plan;
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    for (file, text_suite) in [
        ("quick.toml", false),
        ("quick-text.toml", true),
        ("paper-vision.toml", false),
        ("paper-vision-fair.toml", false),
        ("quick-fair.toml", false),
        ("paper-text.toml", true),
        ("paper-minilm.toml", true),
        ("quick-minilm.toml", true),
        ("probe-minilm.toml", true),
        ("probe-dinov2.toml", false),
    ] {
        let experiment = Experiment::from_file(&folder.join(file)).unwrap();
        let runs = Path::new("unused");
        let plan = if text_suite {
            let suite = Suite::<TextItem>::from_file(&experiment.suite).unwrap();
            Plan::new(experiment, &suite, Default::default(), None, runs)
        } else {
            let suite = Suite::<ImageItem>::from_file(&experiment.suite).unwrap();
            Plan::new(experiment, &suite, Default::default(), None, runs)
        };
        let plan = plan.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            plan.downstream.len() >= 3,
            "{file}: one task per shift at least"
        );
    }
}

/// The suite text with `line` added to the table of task `name`.
fn with_line_in_task(suite: &str, name: &str, line: &str) -> String {
    let at = format!("name = \"{name}\"\n");
    assert!(suite.contains(&at), "no task {name}");
    suite.replacen(&at, &format!("{at}{line}\n"), 1)
}

#[test]
fn artifact_hashes_cover_only_what_made_them() {
    use loramix_data::{ImageItem, Suite};
    use loramix_experiment::config::Experiment;
    use loramix_experiment::plan::{Plan, SuiteKeys};
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
    let experiment = Experiment::from_file(&folder.join("quick.toml")).unwrap();
    let path = experiment.suite.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    let plan = |text: &str| {
        let suite = Suite::<ImageItem>::from_toml(text, &path).unwrap();
        let keys = SuiteKeys::parse(text, &path).unwrap();
        Plan::new(experiment.clone(), &suite, keys, None, Path::new("unused")).unwrap()
    };
    let original = plan(&text);
    let cells = |p: &Plan| -> Vec<String> {
        p.downstream
            .iter()
            .flat_map(|t| p.experiment.methods.iter().map(|m| p.cell_hash(m, t)))
            .collect()
    };

    // A comment, an edited description and one more downstream task retrain nothing.
    let added = format!(
        "# a comment\n{}\n[[downstream]]\nname = \"extra\"\nsource = \"digits\"\nshift = \"task\"\n",
        text.replacen("description = \"", "description = \"Edited. ", 2)
    );
    let grown = plan(&added);
    assert_eq!(grown.base_hash(), original.base_hash());
    assert_eq!(grown.upstream_hash(), original.upstream_hash());
    assert_eq!(cells(&grown), cells(&original));

    // The pretraining task makes the base; an upstream task in use makes the modules.
    let pretrain = text.split("[pretrain]").nth(1).unwrap();
    let pretrain_name = pretrain.split('"').nth(1).unwrap();
    let changed = plan(&with_line_in_task(&text, pretrain_name, "max_train = 100"));
    assert_ne!(changed.base_hash(), original.base_hash());
    let upstream = &original.upstream[0];
    let changed = plan(&with_line_in_task(&text, upstream, "test_per_class = 7"));
    assert_eq!(changed.base_hash(), original.base_hash());
    assert_ne!(changed.upstream_hash(), original.upstream_hash());

    // A downstream task's cells depend on it alone.
    let (first, second) = (&original.downstream[0], &original.downstream[1]);
    let changed = plan(&with_line_in_task(&text, first, "test_per_class = 7"));
    assert_eq!(changed.upstream_hash(), original.upstream_hash());
    let method = &original.experiment.methods[0];
    assert_ne!(
        changed.cell_hash(method, first),
        original.cell_hash(method, first)
    );
    assert_eq!(
        changed.cell_hash(method, second),
        original.cell_hash(method, second)
    );
}

#[test]
fn learned_composition_options_parse() {
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, |t| {
        t.replace(
            "kind = \"learned\"\n",
            "kind = \"learned\"\nsharing = \"shared\"\nnormalisation = \"unconstrained\"\npenalty = { l1 = 0.01 }\n",
        )
    });
    let parsed = loramix_experiment::config::Experiment::from_file(&experiment).unwrap();
    let Kind::Learned(learned) = &parsed.method("learned").unwrap().kind else {
        panic!("`learned` is read as another kind");
    };
    assert_eq!(learned.sharing, loramix_compose::Sharing::Shared);
    assert_eq!(
        learned.normalisation,
        loramix_compose::Normalisation::Unconstrained
    );
    assert_eq!(learned.penalty, loramix_compose::Penalty::L1(0.01));
}

#[test]
fn tuning_chooses_rates_and_steps_on_validation_and_records_them() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let tuned = |t: &str| {
        t.replace(
            "batch = 4\n",
            "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\n",
        )
    };
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, tuned);
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Transfer).unwrap();
    let sweep = runs.join("tiny/sweep/all.csv");
    let rows: Vec<loramix_experiment::rows::CellRow> =
        loramix_experiment::store::read_rows(&sweep).unwrap();
    assert_eq!(rows.len(), CELLS);
    let parsed = loramix_experiment::config::Experiment::from_file(&experiment).unwrap();
    for row in &rows {
        check_tuned_row(row, parsed.method(&row.result.method).unwrap());
    }
    // The same cells again: identical choices and accuracies (the rows are reused, and a
    // fresh run reproduces them).
    let again = dir.path().join("again");
    run(&experiment, &again, Stage::Transfer).unwrap();
    assert_eq!(
        rows_without_timings(&sweep),
        rows_without_timings(&again.join("tiny/sweep/all.csv"))
    );
    // Without tuning, the same config's cells carry no choice (and are other cells).
    let plain = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    run(&plain, &runs, Stage::Transfer).unwrap();
    let all: Vec<loramix_experiment::rows::CellRow> =
        loramix_experiment::store::read_rows(&sweep).unwrap();
    assert_eq!(
        all.len(),
        2 * CELLS,
        "tuned and untuned cells are different cells"
    );
    assert!(
        all[CELLS..]
            .iter()
            .all(|r| r.facts.lr.is_none() && r.facts.steps.is_none())
    );
}

/// A cell tuned per cell: the whole curve recorded (the five factors, and one past an edge
/// when the best of the five lay on it), the chosen rate the best of those tried, and the steps
/// and validation accuracy in range.
fn check_tuned_row(
    row: &loramix_experiment::rows::CellRow,
    method: &loramix_experiment::method::MethodSpec,
) {
    let lr = row
        .facts
        .lr
        .unwrap_or_else(|| panic!("no rate recorded: {row:?}"));
    // The whole curve is recorded: the five factors, then one past an edge when the best
    // of the five lay on it; the chosen rate is the best of those tried.
    let tried: Vec<(f64, f64)> = (row.facts.candidates.split(' '))
        .map(|c| {
            let (factor, accuracy) = c.split_once('=').unwrap();
            (factor.parse().unwrap(), accuracy.parse().unwrap())
        })
        .collect();
    let grid = [0.1, 0.3, 1.0, 3.0, 10.0];
    let factors: Vec<f64> = tried.iter().map(|t| t.0).collect();
    assert_eq!(factors[..5], grid, "{row:?}");
    // (Equal accuracies are told apart by validation loss, not recorded here.)
    let top = tried[..5].iter().map(|t| t.1).fold(0.0, f64::max);
    match row.facts.extended_to {
        Some(added) => {
            let edge = if added == 0.1 * 0.1 / 0.3 { 0 } else { 4 };
            assert!(edge == 0 || added == 10.0 * 10.0 / 3.0, "{row:?}");
            assert_eq!(
                tried[edge].1, top,
                "extended past an edge that was not best: {row:?}"
            );
            assert_eq!(factors.get(5), Some(&added), "{row:?}");
        }
        None => {
            assert_eq!(factors.len(), 5, "{row:?}");
            assert!(
                (1..4).any(|i| tried[i].1 == top),
                "best on an edge, not extended: {row:?}"
            );
        }
    }
    let best = tried.iter().map(|t| t.1).fold(0.0, f64::max);
    assert_eq!(row.facts.val_accuracy, Some(best), "{row:?}");
    assert!(
        tried
            .iter()
            .any(|(f, a)| *a == best && (lr - method.lr * f).abs() < 1e-12),
        "{} chose lr {lr}, not its lr {} times a factor with the best score",
        row.result.method,
        method.lr
    );
    let steps = row.facts.steps.unwrap();
    assert!((1..=method.steps).contains(&steps), "{row:?}");
    let val = row.facts.val_accuracy.unwrap();
    assert!((0.0..=1.0).contains(&val), "{row:?}");
}

/// The fixture suite with a tuning task: digits that neither the upstream nor the evaluation
/// task uses.
fn suite_with_tuning() -> String {
    VISION_SUITE.replace(
        "[[downstream]]",
        "[[tuning]]\nname = \"optdigits-tune\"\nsource = \"digits\"\nclasses = [\"2\", \"4\", \"5\"]\ntransforms = [{ rotate = 45.0 }]\nshift = \"label\"\n\n[[downstream]]",
    )
}

/// The factor an independent reading of `candidates.csv` chooses for `method` at `k`: best mean
/// validation accuracy over the tuning cells, then lowest mean loss, then the smallest factor.
fn expected_factor(
    candidates: &[loramix_experiment::rows::CandidateRow],
    method: &str,
    k: &str,
) -> f64 {
    let mut per_factor: Vec<(f64, f64, f64, usize)> = Vec::new();
    for r in candidates
        .iter()
        .filter(|r| r.method == method && r.k.to_string() == k)
    {
        match per_factor.iter_mut().find(|p| p.0 == r.factor) {
            Some(p) => {
                p.1 += r.val_accuracy.unwrap();
                p.2 += r.val_loss.unwrap();
                p.3 += 1;
            }
            None => per_factor.push((r.factor, r.val_accuracy.unwrap(), r.val_loss.unwrap(), 1)),
        }
    }
    per_factor.sort_by(|a, b| {
        let (a_acc, b_acc) = (a.1 / a.3 as f64, b.1 / b.3 as f64);
        b_acc
            .total_cmp(&a_acc)
            .then((a.2 / a.3 as f64).total_cmp(&(b.2 / b.3 as f64)))
            .then(a.0.total_cmp(&b.0))
    });
    per_factor[0].0
}

#[test]
fn rates_chosen_on_tuning_tasks_are_fixed_for_every_evaluation_cell() {
    use loramix_experiment::rows::CellRow;
    use loramix_experiment::store::read_rows;
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let tuned = |t: &str| {
        t.replace(
            "batch = 4\n",
            "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\nselect = \"tuning-tasks\"\n",
        )
        .replace(
            "examples = 3\n",
            "examples = 3\nconverge = { validation_per_class = 1, every = 1, patience = 1 }\n",
        )
    };
    let experiment = write_experiment(dir.path(), &suite_with_tuning(), VISION_EXPERIMENT, tuned);
    let runs = dir.path().join("runs");
    run(&experiment, &runs, Stage::Run).unwrap();
    let root = runs.join("tiny");
    let parsed = loramix_experiment::config::Experiment::from_file(&experiment).unwrap();

    let candidates = check_tuned_cells(&root, &parsed);
    check_tuning_summary(&root);

    // Run again: nothing is recomputed.
    run(&experiment, &runs, Stage::Transfer).unwrap();
    assert_eq!(
        line_count(&root.join("sweep/tuning/all.candidates.csv")),
        1 + CELLS * 7
    );
    assert_eq!(line_count(&root.join("sweep/all.csv")), 1 + CELLS);

    // A different choice (lora's k = 1 scores rewritten to favour the top factor) reruns the
    // evaluation cells of that method, now at the new factor.
    let top = 100.0 / 3.0;
    let rewritten = favouring(&candidates, top);
    loramix_experiment::store::write_csv(&root.join("sweep/tuning/all.candidates.csv"), &rewritten)
        .unwrap();
    run(&experiment, &runs, Stage::Transfer).unwrap();
    let eval: Vec<CellRow> = read_rows(&root.join("sweep/all.csv")).unwrap();
    assert_eq!(
        eval.len(),
        CELLS + 2 * 2,
        "lora's cells ran again, the others did not"
    );
    let lora_lr = parsed.method("lora").unwrap().lr;
    assert!(
        eval[CELLS..]
            .iter()
            .filter(|r| r.result.k.to_string() == "1")
            .all(|r| r.result.method == "lora"
                && (r.facts.lr.unwrap() - lora_lr * top).abs() < 1e-12),
        "{:?}",
        &eval[CELLS..]
    );
}

/// The candidates with lora's k = 1 scores rewritten so that `factor` is best.
fn favouring(
    candidates: &[loramix_experiment::rows::CandidateRow],
    factor: f64,
) -> Vec<loramix_experiment::rows::CandidateRow> {
    (candidates.iter().cloned())
        .map(|mut c| {
            if c.method == "lora" && c.k.to_string() == "1" {
                let best = (c.factor - factor).abs() < 1e-9;
                c.val_accuracy = Some(if best { 1.0 } else { 0.0 });
            }
            c
        })
        .collect()
}

/// The tuning cells tried the bracketed grid and wrote each score; each evaluation cell trained
/// the one factor chosen for its method and shot. Returns the candidates.
fn check_tuned_cells(
    root: &Path,
    parsed: &loramix_experiment::config::Experiment,
) -> Vec<loramix_experiment::rows::CandidateRow> {
    use loramix_experiment::rows::{CandidateRow, CellRow};
    use loramix_experiment::store::read_rows;
    // Every tuning cell tried the grid with one factor past each edge, and wrote each score.
    let tuning_cells: Vec<CellRow> = read_rows(&root.join("sweep/tuning/all.csv")).unwrap();
    let candidates: Vec<CandidateRow> =
        read_rows(&root.join("sweep/tuning/all.candidates.csv")).unwrap();
    assert_eq!(tuning_cells.len(), CELLS);
    assert_eq!(candidates.len(), CELLS * 7);
    assert!(
        tuning_cells
            .iter()
            .all(|r| r.result.task == "optdigits-tune")
    );
    let grid = [0.1 / 3.0, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0 / 3.0];
    for cell in &tuning_cells {
        let tried: Vec<f64> = (candidates.iter())
            .filter(|c| c.key() == cell.key())
            .map(|c| c.factor)
            .collect();
        assert_eq!(tried.len(), 7, "{cell:?}");
        assert!(
            tried.iter().zip(grid).all(|(a, b)| (a - b).abs() < 1e-12),
            "{tried:?}"
        );
        assert_eq!(
            cell.facts.extended_to, None,
            "a tuning cell's grid is bracketed already"
        );
    }

    // Each evaluation cell trained the one factor chosen for its method and shot.
    let eval: Vec<CellRow> = read_rows(&root.join("sweep/all.csv")).unwrap();
    assert_eq!(eval.len(), CELLS);
    for row in &eval {
        let method = parsed.method(&row.result.method).unwrap();
        let factor = expected_factor(&candidates, &row.result.method, &row.result.k.to_string());
        let lr = row.facts.lr.unwrap();
        assert!(
            (lr - method.lr * factor).abs() < 1e-12 * lr.max(1.0),
            "{row:?} wants {factor}"
        );
        assert_eq!(row.facts.candidates.split(' ').count(), 1, "{row:?}");
        assert_eq!(row.facts.extended_to, None);
        assert!(
            row.facts
                .steps
                .is_some_and(|s| (1..=method.steps).contains(&s)),
            "{row:?}"
        );
    }
    candidates
}

/// The summary's tuning section, `tuning.csv`, and the CKA reference's convergence line.
fn check_tuning_summary(root: &Path) {
    use loramix_experiment::store::read_rows;
    // The summary says what was chosen, with the gaps before and after.
    let summary = fs::read_to_string(root.join("summary.md")).unwrap();
    assert!(
        summary.contains("### Rates chosen on tuning tasks"),
        "{summary}"
    );
    assert!(summary.contains("`optdigits-tune`"), "{summary}");
    assert_eq!(line_count(&root.join("tuning.csv")), 1 + METHODS * 2);
    // The CKA reference trained until validation stopped improving, and the summary says how.
    assert!(summary.contains("- CKA references (claim 4)"), "{summary}");
    let references: Vec<loramix_experiment::rows::ReferenceRow> = fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".references.csv"))
        .flat_map(|p| read_rows::<loramix_experiment::rows::ReferenceRow>(&p).unwrap())
        .collect();
    assert_eq!(references.len(), 1);
    let reference = &references[0];
    assert!(reference.val_accuracy.is_some() && (1..=2).contains(&reference.steps));
    let stopped = format!("{} of 1 stopped", u8::from(reference.converged));
    assert!(summary.contains(&stopped), "{summary}");
    let results = rows_without_timings(&root.join("results.csv"));
    assert!(
        results.iter().all(|r| r[0] == "optdigits-b-rotated"),
        "tuning cells are not results"
    );
}

#[test]
fn tuning_cells_are_shared_by_shards_and_evaluation_waits_for_all_of_them() {
    use loramix_experiment::rows::CellRow;
    use loramix_experiment::store::read_rows;
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let tuned = |t: &str| {
        t.replace(
            "batch = 4\n",
            "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\nselect = \"tuning-tasks\"\ntuning_seeds = 1\n",
        )
    };
    let experiment = write_experiment(dir.path(), &suite_with_tuning(), VISION_EXPERIMENT, tuned);
    let runs = dir.path().join("runs");
    let sweep = runs.join("tiny/sweep");
    let (first, second) = (Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 });
    // The first shard runs its half of the tuning cells (one seed each), then stops: the
    // evaluation cells need the other half.
    run_shard(&experiment, &runs, Stage::Transfer, first).unwrap();
    let tuning = |runs: &Path| -> Vec<CellRow> {
        let dir = runs.join("tiny/sweep/tuning");
        let shards = ["shard-0-of-2.csv", "shard-1-of-2.csv"].map(|f| dir.join(f));
        shards
            .iter()
            .flat_map(|f| read_rows::<CellRow>(f).unwrap())
            .collect()
    };
    assert_eq!(
        tuning(&runs).len(),
        CELLS / 4,
        "half of the one-seed tuning cells"
    );
    assert!(
        !sweep.join("shard-0-of-2.csv").exists(),
        "no evaluation cell ran"
    );
    // The second finishes the tuning and runs its evaluation cells; the first, run again, its own.
    run_shard(&experiment, &runs, Stage::Transfer, second).unwrap();
    assert_eq!(tuning(&runs).len(), CELLS / 2);
    run_shard(&experiment, &runs, Stage::Transfer, first).unwrap();
    assert_eq!(tuning(&runs).len(), CELLS / 2, "no tuning cell ran twice");
    let shards: usize = ["shard-0-of-2.csv", "shard-1-of-2.csv"]
        .iter()
        .map(|f| read_rows::<CellRow>(&sweep.join(f)).unwrap().len())
        .sum();
    assert_eq!(shards, CELLS);
    // Sharded or not, the same cells with the same results.
    let whole = dir.path().join("whole");
    run(&experiment, &whole, Stage::Transfer).unwrap();
    let mut split: Vec<Vec<String>> = ["shard-0-of-2.csv", "shard-1-of-2.csv"]
        .iter()
        .flat_map(|f| rows_without_timings(&sweep.join(f)))
        .collect();
    let mut all = rows_without_timings(&whole.join("tiny/sweep/all.csv"));
    split.sort();
    all.sort();
    assert_eq!(split, all);
    // The sweep registered its modules' fingerprints; a rebuilt module with other bits stops it
    // until accepted, and then only the cells that compose modules run again.
    a_rebuilt_module_stops_the_sweep_unless_accepted(&experiment, &runs);
}

/// Each method's evaluation cells start once its own tuning cells are in, those of the methods
/// a primary test compares tuned first: a method still tuning in another shard holds back
/// only its own cells, and the report, made meanwhile, says which method is still tuning.
#[test]
fn a_tuned_method_does_not_wait_for_the_tuning_of_another() {
    use loramix_experiment::rows::CellRow;
    use loramix_experiment::store::{read_rows, write_csv};
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let tuned_with_plan = |t: &str| {
        let t = t.replace(
            "batch = 4\n",
            "batch = 4\n\n[transfer.tuning]\nvalidation_full = 1\nrate_factors = [0.1, 0.3, 1.0, 3.0, 10.0]\nchecks = 2\nselect = \"tuning-tasks\"\ntuning_seeds = 1\n",
        );
        format!(
            "{t}\n[analysis]\n[[analysis.primary]]\nclaim = 1\ntest = \"superiority\"\n\
             a = \"learned\"\nb = \"lora\"\nshots = [1]\n"
        )
    };
    let experiment = write_experiment(
        dir.path(),
        &suite_with_tuning(),
        VISION_EXPERIMENT,
        tuned_with_plan,
    );
    let runs = dir.path().join("runs");
    let (first, second) = (Shard { index: 0, count: 2 }, Shard { index: 1, count: 2 });
    let (tuning, sweep) = (runs.join("tiny/sweep/tuning"), runs.join("tiny/sweep"));
    // Each method has one tuning cell per shot; shard 0 holds the k = 1 ones.
    run_shard(&experiment, &runs, Stage::Transfer, first).unwrap();
    let methods = |file: &Path| -> Vec<String> {
        (read_rows::<CellRow>(file).unwrap().into_iter())
            .map(|r| r.result.method)
            .collect()
    };
    let order = methods(&tuning.join("shard-0-of-2.csv"));
    assert_eq!(order.len(), METHODS);
    assert_eq!(
        order[..2],
        ["lora", "learned"],
        "the compared methods tune first"
    );
    // Shard 1 tunes all but `ties`, whose second tuning cell stays missing.
    run_shard(&experiment, &runs, Stage::Transfer, second).unwrap();
    let theirs = tuning.join("shard-1-of-2.csv");
    let kept: Vec<CellRow> = (read_rows::<CellRow>(&theirs).unwrap().into_iter())
        .filter(|r| r.result.method != "ties")
        .collect();
    write_csv(&theirs, &kept).unwrap();
    fs::remove_file(sweep.join("shard-1-of-2.csv")).unwrap();
    // Shard 0 again: every tuned method's cells run, `ties`'s wait.
    run_shard(&experiment, &runs, Stage::Transfer, first).unwrap();
    let evaluated = methods(&sweep.join("shard-0-of-2.csv"));
    assert_eq!(evaluated.len(), (METHODS - 1) * 2, "{evaluated:?}");
    assert!(!evaluated.contains(&"ties".to_string()), "{evaluated:?}");
    run(&experiment, &runs, Stage::Report).unwrap();
    let summary = fs::read_to_string(runs.join("tiny/summary.md")).unwrap();
    assert!(
        summary.contains("Still tuning, so no evaluation cells yet: `ties` (1 of 2 tuning cells)"),
        "{summary}"
    );
    assert!(summary.contains("Interim"), "{summary}");
}

/// The fingerprint of each upstream module's factors in `runs`, by module name (the files also
/// hold the training time).
fn module_tensors(runs: &Path) -> std::collections::BTreeMap<String, String> {
    use loramix_experiment::registration::module_fingerprint;
    let mut modules = std::collections::BTreeMap::new();
    for folder in fs::read_dir(runs.join("tiny")).unwrap() {
        let folder = folder.unwrap().path();
        if !folder
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("upstream-")
        {
            continue;
        }
        for module in fs::read_dir(&folder).unwrap() {
            let adapter = loramix_lora::Adapter::load(&module.unwrap().path()).unwrap();
            modules.insert(adapter.manifest.task.clone(), module_fingerprint(&adapter));
        }
    }
    modules
}

#[test]
fn upstream_shards_side_by_side_build_the_library_one_process_builds() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, str::to_string);
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    run(&experiment, &whole, Stage::Upstream).unwrap();
    let library = module_tensors(&whole);
    assert_eq!(library.len(), 2, "{:?}", library.keys());
    let second = Shard { index: 1, count: 2 };
    run_shard(&experiment, &split, Stage::Upstream, second).unwrap();
    let share = module_tensors(&split);
    assert_eq!(
        share.keys().collect::<Vec<_>>(),
        ["digits-rotated"],
        "shard 1/2 trains the suite's second module only"
    );
    let first = Shard { index: 0, count: 2 };
    run_shard(&experiment, &split, Stage::Upstream, first).unwrap();
    assert!(
        module_tensors(&split) == library,
        "the split library has other bits"
    );
}

/// Gives upstream module `optdigits-a` of the finished, tuned sweep in `runs` other bits, as a
/// rebuild on another CPU would (one factor's last bit): the next transfer stops and names it;
/// accepted, exactly the cells of the methods that compose modules run again, tuning and
/// evaluation, and the report counts the sweep complete.
fn a_rebuilt_module_stops_the_sweep_unless_accepted(experiment: &Path, runs: &Path) {
    use loramix_experiment::rows::CellRow;
    use loramix_experiment::store::read_rows;
    use std::collections::BTreeSet;
    let sweep = runs.join("tiny/sweep");
    let registered = || -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(sweep.join("modules.json")).unwrap()).unwrap()
    };
    let before = registered();
    let upstream = (fs::read_dir(runs.join("tiny")).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("upstream-")
        })
        .unwrap();
    let module = upstream.join("optdigits-a");
    let mut rebuilt = loramix_lora::Adapter::load(&module).unwrap();
    let a = &mut rebuilt.layers[0].a[0];
    *a = f32::from_bits(a.to_bits() ^ 1);
    rebuilt.save(&module).unwrap();
    let options = |accept_rebuilt_modules| Options {
        runs: runs.to_path_buf(),
        shard: Shard::ALL,
        parts: loramix_backend::DEFAULT_BATCH_PARTS,
        accept_rebuilt_modules,
    };
    let err = execute(experiment, Stage::Transfer, &options(false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 of 2 upstream modules are not the ones this sweep's cells were computed")
            && err.contains("`optdigits-a`'s factors hash to")
            && err.contains("--accept-rebuilt-modules"),
        "{err}"
    );
    assert_eq!(
        registered(),
        before,
        "a refused rebuild changes no registration"
    );
    assert!(!sweep.join("all.csv").exists(), "no cell ran");
    execute(experiment, Stage::Transfer, &options(true)).unwrap();
    let after = registered();
    assert_eq!(after["replaced"][0]["modules"], before["modules"]);
    assert_ne!(
        after["modules"]["optdigits-a"],
        before["modules"]["optdigits-a"]
    );
    assert_eq!(
        after["modules"]["optdigits-b"],
        before["modules"]["optdigits-b"]
    );
    let composing = ["uniform", "fixed", "ties", "dare", "learned", "search"];
    for file in [sweep.join("all.csv"), sweep.join("tuning/all.csv")] {
        let rows = read_rows::<CellRow>(&file).unwrap();
        let methods: BTreeSet<&str> = rows.iter().map(|r| r.result.method.as_str()).collect();
        assert_eq!(methods, BTreeSet::from(composing), "{}", file.display());
    }
    let evaluated = read_rows::<CellRow>(&sweep.join("all.csv")).unwrap();
    assert_eq!(evaluated.len(), CELLS / METHODS * composing.len());
    // The accepted set is the registered one now: the next run needs no flag and adds nothing.
    execute(experiment, Stage::Transfer, &options(false)).unwrap();
    let again = read_rows::<CellRow>(&sweep.join("all.csv")).unwrap();
    assert_eq!(again.len(), evaluated.len());
    run(experiment, runs, Stage::Report).unwrap();
    let summary = fs::read_to_string(runs.join("tiny/summary.md")).unwrap();
    assert!(!summary.contains("Interim"), "{summary}");
}

#[test]
fn modules_too_close_to_chance_stop_the_run_before_the_sweep() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let bar = |points: &str| {
        let points = points.to_string();
        move |t: &str| {
            t.replace(
                "targets = [\"query\", \"value\"]\n",
                &format!("targets = [\"query\", \"value\"]\nmin_above_chance = {points}\n"),
            )
        }
    };
    // No module of three or four classes can be 100 points above chance.
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, bar("100.0"));
    let runs = dir.path().join("runs");
    let err = run(&experiment, &runs, Stage::Run).unwrap_err().to_string();
    assert!(
        err.contains("upstream modules less than 100 points above chance on their own test split")
            && err.contains("`optdigits-a`")
            && err.contains("`digits-rotated`"),
        "{err}"
    );
    assert!(!runs.join("tiny/sweep/all.csv").exists(), "no cell ran");
    // A bar every module passes (below chance itself) lets the run go on.
    let experiment = write_experiment(dir.path(), VISION_SUITE, VISION_EXPERIMENT, bar("-100.0"));
    run(&experiment, &runs, Stage::Upstream).unwrap();
}

/// The fixture experiment (with `edit` applied) loaded as the stages see it, its runs folder
/// `dir/runs`.
fn fixture_context(
    dir: &Path,
    edit: impl Fn(&str) -> String,
) -> loramix_experiment::context::Context<loramix_experiment::family::Vision> {
    use loramix_data::{ImageItem, Suite};
    use loramix_experiment::config::Experiment;
    use loramix_experiment::context::Context;
    use loramix_experiment::family::Vision;
    use loramix_experiment::plan::{Plan, SuiteKeys};
    let path = write_experiment(dir, VISION_SUITE, VISION_EXPERIMENT, edit);
    let experiment = Experiment::from_file(&path).unwrap();
    let suite = Suite::<ImageItem>::from_file(&experiment.suite).unwrap();
    let keys = SuiteKeys::parse(VISION_SUITE, &experiment.suite).unwrap();
    let family = Vision::new(&experiment.model, suite.image.unwrap()).unwrap();
    let plan = Plan::new(experiment, &suite, keys, None, &dir.join("runs")).unwrap();
    Context::new(plan, suite, family, 1).unwrap()
}

#[test]
fn the_sweep_warm_up_runs_one_throwaway_cell_per_task_and_method_and_writes_nothing() {
    use loramix_experiment::stage::{pretrain, transfer, upstream};
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture_context(dir.path(), |t| t.to_string());
    let methods = ctx.plan.experiment.methods.len();
    let base = pretrain::pretrain(&ctx).unwrap();
    let adapters = upstream::upstream(&ctx, &base, Shard::ALL).unwrap();
    // One downstream task; two shots and two seeds per method, but one warm-up cell each.
    assert_eq!(
        transfer::warm_up(&ctx, &base, &adapters, Shard::ALL).unwrap(),
        methods
    );
    assert!(
        !ctx.plan.run.sweep().exists(),
        "the warm-up wrote into the sweep folder"
    );
}

#[test]
fn the_gpu_warm_up_trains_at_each_planned_batch_size_and_writes_nothing() {
    use loramix_experiment::stage::warmup::warm_up;
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let ctx = fixture_context(dir.path(), |t| {
        t.replace("[transfer]\n", "[transfer]\neval_batch = 2\n")
    });
    // Pretraining and upstream batches are both 8 (trained once), the sweep's is 4.
    assert_eq!(warm_up(&ctx).unwrap(), vec![8, 4]);
    let runs = dir.path().join("runs");
    assert!(
        !runs.exists() || fs::read_dir(&runs).unwrap().next().is_none(),
        "the warm-up wrote into the run folder"
    );
}

/// The similarity stage stopped after shard 1/2 and resumed whole writes the file one process
/// writes: each task is saved as it finishes and computed once.
#[test]
fn similarity_in_shards_resumes_and_writes_the_file_one_process_writes() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let second_task = r#"
[[downstream]]
name = "optdigits-b-upright"
source = "digits"
part = { index = 1, of = 2 }
classes = ["1", "3", "9"]
shift = "label"
"#;
    let suite = format!("{VISION_SUITE}{second_task}");
    let experiment = write_experiment(dir.path(), &suite, VISION_EXPERIMENT, str::to_string);
    let similarity_files = |runs: &Path| -> Vec<(String, String)> {
        let mut files: Vec<_> = (fs::read_dir(runs.join("tiny")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("similarity-"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                (name, fs::read_to_string(&p).unwrap_or_default())
            })
            .collect();
        files.sort();
        files
    };
    let (whole, split) = (dir.path().join("whole"), dir.path().join("split"));
    run(&experiment, &whole, Stage::Similarity).unwrap();
    let one_process = similarity_files(&whole);
    assert_eq!(one_process.len(), 2, "rows and references: {one_process:?}");
    assert_eq!(
        one_process[0].1.lines().count(),
        1 + 2 * 3,
        "base and 2 modules per task"
    );

    let second = Shard { index: 1, count: 2 };
    run_shard(&experiment, &split, Stage::Similarity, second).unwrap();
    let parts = similarity_files(&split);
    assert_eq!(
        parts.len(),
        1,
        "only the parts folder, no file yet: {parts:?}"
    );
    let part = split
        .join("tiny")
        .join(&parts[0].0)
        .join("optdigits-b-upright.json");
    assert!(part.exists(), "shard 1/2 saved the suite's second task");
    assert!(!part.with_file_name("optdigits-b-rotated.json").exists());
    // A finished task is not computed again: a value planted in its part reaches the file.
    let mut saved: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&part).unwrap()).unwrap();
    assert_eq!(saved["rows"][0]["module"], "(base)");
    saved["rows"][0]["cka"] = 0.125.into();
    fs::write(&part, serde_json::to_string(&saved).unwrap()).unwrap();
    // A later whole run (a resumed one, or the last shard) computes only what is missing.
    run(&experiment, &split, Stage::Similarity).unwrap();
    // The planted line: its `cka` field (the third) replaced, the rest as one process wrote it.
    let planted = |line: &str| {
        let mut fields: Vec<&str> = line.split(',').collect();
        fields[2] = "0.125";
        fields.join(",")
    };
    let expected: Vec<(String, String)> = (one_process.iter())
        .map(|(name, text)| {
            let lines = text.lines().map(|line| match line {
                l if l.starts_with("optdigits-b-upright,(base),") => planted(l),
                l => l.to_string(),
            });
            (name.clone(), lines.map(|l| format!("{l}\n")).collect())
        })
        .collect();
    assert_eq!(
        similarity_files(&split),
        expected,
        "the shards' file differs from one process's, or a saved task ran again"
    );
}
