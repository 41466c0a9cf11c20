//! `loramix compose` and `loramix predict` end to end on the committed tiny BERT and the PEFT
//! adapters PEFT wrote for it (crates/models and crates/peft fixtures).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use loramix_experiment::compose::{ComposeJob, ComposeReport, Method, compose};
use loramix_experiment::method::Then;
use loramix_experiment::predict::{PredictJob, predict};
use loramix_experiment::user::InputArgs;
use loramix_lora::Adapter;
use loramix_models::hf::BERT;

/// burn's random generator is process-wide and compose seeds it before each head, so two
/// compositions in one process must not interleave: the tests take turns.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn fixtures(krate: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../{krate}/tests/fixtures"))
}

fn tiny_bert() -> PathBuf {
    fixtures("models").join("tiny-bert")
}

/// Two classes a tiny BERT can tell apart from word statistics: letters vs digits.
fn write_data(dir: &Path) -> (PathBuf, PathBuf) {
    let rows = |words: &[&str], label: &str| -> String {
        words.iter().map(|w| format!("{w},{label}\n")).collect()
    };
    let train = dir.join("train.csv");
    std::fs::write(
        &train,
        format!(
            "text,label\n{}{}",
            rows(&["abc def", "ghi jkl", "mno pqr"], "letters"),
            rows(&["123 456", "789 012", "345 678"], "digits")
        ),
    )
    .unwrap();
    let val = dir.join("val.csv");
    std::fs::write(
        &val,
        format!(
            "text,label\n{}{}",
            rows(&["stu vwx", "yza bcd", "efg hij", "klm nop"], "letters"),
            rows(&["901 234", "567 890", "135 791", "246 802"], "digits")
        ),
    )
    .unwrap();
    (train, val)
}

/// The two PEFT fixtures and the first one again in loramix format under another name.
fn adapters(dir: &Path) -> Vec<PathBuf> {
    let peft = fixtures("peft");
    let qv = peft.join("tiny-bert-lora-qv");
    let base = loramix_models::Bert::<loramix_backend::Inference>::from_pretrained(
        &tiny_bert(),
        1,
        &loramix_backend::device(),
    )
    .unwrap();
    let fingerprint = loramix_lora::AdapterHost::fingerprint(&base);
    let mut own = loramix_peft::read(&qv, &BERT, &fingerprint).unwrap();
    own.manifest.task = "qv-again".into();
    let own_dir = dir.join("own-format");
    own.save(&own_dir).unwrap();
    vec![qv, peft.join("tiny-bert-lora-patterns"), own_dir]
}

fn tiny_bert_fingerprint() -> String {
    let device = loramix_backend::device();
    let base = loramix_models::Bert::<loramix_backend::Inference>::from_pretrained(
        &tiny_bert(),
        1,
        &device,
    )
    .unwrap();
    loramix_lora::AdapterHost::fingerprint(&base)
}

fn text_input() -> InputArgs {
    InputArgs {
        text_column: "text".into(),
        max_len: Some(16),
        image_size: None,
    }
}

fn image_input() -> InputArgs {
    InputArgs {
        text_column: "text".into(),
        max_len: None,
        image_size: Some(16),
    }
}

fn job(dir: &Path, method: Method) -> ComposeJob {
    let (train, val) = write_data(dir);
    ComposeJob {
        base: tiny_bert(),
        adapters: adapters(dir),
        data: train,
        val: Some(val),
        input: text_input(),
        label_column: "label".into(),
        method,
        weights: None,
        rank: None,
        density: 0.5,
        lambda: 1.0,
        drop: 0.3,
        top_k: Some(2),
        temperature: 1.0,
        general: Vec::new(),
        then: Then::Learned,
        alone: 16,
        steps: 4,
        lr: 0.05,
        head_steps: 20,
        head_lr: 0.05,
        batch: 4,
        seed: 0,
        out: dir.join("out"),
        parts: 1,
    }
}

/// `scale * B A` of layer `name` (`[d_out, d_in]` row-major), in plain loops.
fn dense(adapter: &Adapter, name: &str) -> Option<Vec<f64>> {
    let i = adapter
        .manifest
        .layers
        .iter()
        .position(|l| l.name == name)?;
    let shape = &adapter.manifest.layers[i];
    let (a, b) = (&adapter.layers[i].a, &adapter.layers[i].b);
    let scale = (adapter.manifest.alpha / shape.rank as f32) as f64;
    let mut out = vec![0.0; shape.d_out * shape.d_in];
    for o in 0..shape.d_out {
        for k in 0..shape.rank {
            for j in 0..shape.d_in {
                out[o * shape.d_in + j] +=
                    scale * b[o * shape.rank + k] as f64 * a[k * shape.d_in + j] as f64;
            }
        }
    }
    Some(out)
}

fn score(report: &ComposeReport, starts: &str) -> f64 {
    report
        .scores
        .iter()
        .find(|s| s.candidate.starts_with(starts))
        .unwrap_or_else(|| panic!("no score `{starts}` in {:?}", report.scores))
        .accuracy
}

#[test]
fn every_method_composes_writes_peft_and_predict_scores_as_reported() {
    let _turn = one_at_a_time();
    for (method, weights) in [
        (Method::Uniform, None),
        (Method::Fixed, Some(vec![1.0, -0.5, 0.25])),
        (Method::Learned, None),
        (Method::Cat, None),
        (Method::Select, None),
        (Method::Search, None),
        (Method::Ties, None),
        (Method::Dare, None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let job = ComposeJob {
            weights,
            ..job(dir.path(), method)
        };
        let report = compose(&job).unwrap_or_else(|e| panic!("{method:?}: {e}"));
        // Head only, three adapters alone, the composition, the adapter as written.
        assert_eq!(report.scores.len(), 6, "{method:?}");
        assert_eq!(report.scored_on, "validation");
        assert_eq!((report.train_examples, report.validation_examples), (6, 8));
        for name in [
            "adapter_config.json",
            "adapter_model.safetensors",
            "loramix_manifest.json",
            "head.safetensors",
            "compose.json",
        ] {
            assert!(job.out.join(name).exists(), "{method:?}: no {name}");
        }
        let written = score(&report, "written adapter");
        if matches!(method, Method::Ties | Method::Dare) {
            assert!(report.rank >= 1);
        } else {
            // Exact export: the written adapter scores what the composition scored.
            assert_eq!(
                written,
                score(&report, &format!("{method:?}").to_lowercase())
            );
            assert_eq!(report.approximation_error, 0.0);
        }

        // The written adapter reads back (PEFT format), with its parents recorded.
        let fingerprint = tiny_bert_fingerprint();
        let read = loramix_peft::read(&job.out, &BERT, &fingerprint).unwrap();
        check_parents(&read, method);
        assert_eq!(read.manifest.metrics["validation_accuracy"], written);
        check_verdict(&report, &job.out);
        if method == Method::Uniform {
            check_the_mean_of_the_parents(&read, &job, &fingerprint);
        }

        predict_scores_as_reported(dir.path(), &job, written);
    }
}

/// The composition's parents as recorded: `--top-k 2` of the three for select, all three in
/// order otherwise.
fn check_parents(read: &Adapter, method: Method) {
    let record = read.manifest.composition.clone().unwrap();
    let tasks: Vec<&str> = record.parents.iter().map(|p| p.task.as_str()).collect();
    let all = ["tiny-bert-lora-qv", "tiny-bert-lora-patterns", "qv-again"];
    if method == Method::Select {
        // --top-k 2 of the three, each once.
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert!(tasks[0] != tasks[1] && tasks.iter().all(|t| all.contains(t)));
    } else {
        assert_eq!(tasks, all);
    }
}

/// The written update of every layer is the mean of the parents' updates (uniform).
fn check_the_mean_of_the_parents(read: &Adapter, job: &ComposeJob, fingerprint: &str) {
    // The written update of every layer is the mean of the parents' updates.
    let parents: Vec<Adapter> = job
        .adapters
        .iter()
        .map(|dir| loramix_experiment::user::load_adapter(dir, &BERT, fingerprint).unwrap())
        .collect();
    for layer in &read.manifest.layers {
        let got = dense(read, &layer.name).unwrap();
        let mut mean = vec![0.0; got.len()];
        for parent in &parents {
            if let Some(delta) = dense(parent, &layer.name) {
                mean.iter_mut().zip(delta).for_each(|(m, d)| *m += d / 3.0);
            }
        }
        let worst = got
            .iter()
            .zip(&mean)
            .map(|(g, m)| (g - m).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "{}: {worst}", layer.name);
    }
}

/// `predict` on the validation file reproduces the reported accuracy, by another path (the
/// files on disk, the head read back).
fn predict_scores_as_reported(dir: &Path, job: &ComposeJob, written: f64) {
    let out = dir.join("predictions.csv");
    let (rows, accuracy) = predict_text(&job.out, job.val.as_ref().unwrap(), &out).unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(accuracy, Some(written), "{:?}", job.method);
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(
        csv.starts_with("item,prediction,confidence,label\n1,"),
        "{csv}"
    );
}

/// An Arrow job on the routable fixtures: the PEFT qv fixture and two adapters made by PEFT
/// with the same layout, two general ones for GenKnowSub.
fn arrow_job(dir: &Path) -> ComposeJob {
    let arrow = fixtures("compose").join("arrow/adapters");
    ComposeJob {
        adapters: vec![
            fixtures("peft").join("tiny-bert-lora-qv"),
            arrow.join("task-b"),
            arrow.join("task-c"),
        ],
        general: vec![arrow.join("gen-0"), arrow.join("gen-1")],
        ..job(dir, Method::Arrow)
    }
}

#[test]
fn arrow_writes_the_adapters_for_peft_and_predict_routes_them_as_compose_did() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let job = arrow_job(dir.path());
    let report = compose(&job).unwrap();
    // Head only, three adapters alone, the composition (which is what is written).
    assert_eq!(report.scores.len(), 5, "{:?}", report.scores);
    let routed = score(&report, "arrow(k=2, temperature=1, genknowsub)");
    check_arrow_config(&job.out);
    // Each routed adapter is written as PEFT reads it, with the factors it was given.
    let fingerprint = tiny_bert_fingerprint();
    for (given, folder) in job.adapters.iter().zip(["task_0", "task_1", "task_2"]) {
        let given = loramix_peft::read(given, &BERT, &fingerprint).unwrap();
        let written = job.out.join("experts").join(folder);
        let written = loramix_peft::read(&written, &BERT, &fingerprint).unwrap();
        for (g, w) in given.layers.iter().zip(&written.layers) {
            assert_eq!((&g.a, &g.b), (&w.a, &w.b), "{folder}");
        }
    }
    // Read back as predict reads it: the same settings, the general adapters with them.
    let read_back = loramix_experiment::compose::arrow::read(&job.out, &BERT, &fingerprint)
        .unwrap()
        .unwrap();
    let expected = loramix_compose::ArrowConfig {
        top_k: 2,
        temperature: 1.0,
        seed: 0,
    };
    assert_eq!(read_back.config, expected);
    assert_eq!((read_back.experts.len(), read_back.general.len()), (3, 2));
    for (given, read) in job.general.iter().zip(&read_back.general) {
        let given = loramix_peft::read(given, &BERT, &fingerprint).unwrap();
        assert_eq!(given.layers, read.layers);
    }
    let predict_job = PredictJob {
        base: tiny_bert(),
        adapter: job.out.clone(),
        data: job.val.clone().unwrap(),
        input: text_input(),
        label_column: Some("label".into()),
        out: dir.path().join("predictions.csv"),
        batch: 3,
        parts: 1,
    };
    let (_, accuracy) = predict(&predict_job).unwrap();
    assert_eq!(accuracy, Some(routed));

    tampered_arrow_outputs_are_refused(&job.out, &predict_job, &fingerprint);
}

/// `arrow_config.json` as PEFT's `ArrowConfig` takes it, with the folders it names.
fn check_arrow_config(out: &Path) {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("arrow_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["top_k"], 2);
    assert_eq!(config["use_gks"], true);
    assert_eq!(config["rng_seed"], 0);
    assert_eq!(
        config["task_adapters"],
        serde_json::json!(["experts/task_0", "experts/task_1", "experts/task_2"])
    );
    assert_eq!(
        config["general_adapters"],
        serde_json::json!(["general/gks_0", "general/gks_1"])
    );
}

/// A changed adapter, or a folder outside the output, is refused naming the config.
fn tampered_arrow_outputs_are_refused(out: &Path, predict_job: &PredictJob, fingerprint: &str) {
    let tensors = out.join("experts/task_1/adapter_model.safetensors");
    let original = std::fs::read(&tensors).unwrap();
    let other = std::fs::read(out.join("experts/task_2/adapter_model.safetensors")).unwrap();
    std::fs::write(&tensors, &other).unwrap();
    let error = predict(predict_job).unwrap_err().to_string();
    assert!(
        error.contains("arrow_config.json") && error.contains("changed"),
        "{error}"
    );
    std::fs::write(&tensors, original).unwrap();
    let path = out.join("arrow_config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"experts/task_0\"", "\"../experts/task_0\""),
    )
    .unwrap();
    // The head records the config's hash, so predict refuses the edited config...
    let error = predict(predict_job).unwrap_err().to_string();
    assert!(error.contains("another adapter"), "{error}");
    // ...and the config's reader refuses a folder outside the output by itself.
    let error = loramix_experiment::compose::arrow::read(out, &BERT, fingerprint)
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a folder inside"), "{error}");
}

#[test]
fn arrow_options_out_of_range_or_on_other_methods_are_refused() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let arrow = arrow_job(dir.path());
    for (job, expected) in [
        (
            ComposeJob {
                top_k: Some(4),
                ..arrow.clone()
            },
            "--top-k 4 is more than the 3 adapters",
        ),
        (
            ComposeJob {
                temperature: 0.0,
                ..arrow.clone()
            },
            "--temperature must be positive",
        ),
        (
            ComposeJob {
                method: Method::Uniform,
                ..arrow.clone()
            },
            "--general applies to --method arrow",
        ),
        (
            ComposeJob {
                general: Vec::new(),
                ..job(dir.path(), Method::Arrow)
            },
            "tiny-bert-lora-patterns",
        ),
    ] {
        let error = error_of(&job);
        assert!(error.contains(expected), "{expected}: {error}");
        assert!(!job.out.exists());
    }
}

/// The verdict judges the written adapter against the base and the best adapter alone, every
/// interval holds its accuracy, and `compose.json` and the table carry the same.
fn check_verdict(report: &ComposeReport, out: &Path) {
    let verdict = &report.verdict;
    assert_eq!(verdict.against_base.against, "head only (base)");
    let alone = report
        .scores
        .iter()
        .filter(|s| s.candidate.ends_with(" alone"));
    let best = alone
        .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
        .unwrap();
    let best_accuracy = score(report, &verdict.against_best_adapter.against);
    assert_eq!(best_accuracy, best.accuracy, "{verdict:?}");
    let written = report.scores.last().unwrap();
    for (comparison, other) in [
        (&verdict.against_base, score(report, "head only")),
        (&verdict.against_best_adapter, best_accuracy),
    ] {
        // Discordant pairs differ by exactly the difference in correct answers.
        let n = report.validation_examples as f64;
        let gap = comparison.only_composition as f64 - comparison.only_other as f64;
        assert!(
            (gap - n * (written.accuracy - other)).abs() < 1e-9,
            "{comparison:?}"
        );
    }
    for s in &report.scores {
        assert!(
            s.interval.0 <= s.accuracy && s.accuracy <= s.interval.1,
            "{s:?}"
        );
        assert_eq!(
            s.correct as f64,
            s.accuracy * report.validation_examples as f64
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compose.json")).unwrap()).unwrap();
    assert_eq!(json["verdict"]["line"], verdict.line.as_str());
    assert!(json["scores"][0]["interval"].is_array(), "{json}");
    let table = loramix_experiment::compose::table(report);
    assert!(table.contains(&verdict.line), "{table}");
}

#[test]
fn with_more_adapters_than_alone_only_the_highest_ranked_are_scored_alone() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let all = compose(&job(dir.path(), Method::Uniform)).unwrap();
    let one = compose(&ComposeJob {
        alone: 1,
        out: dir.path().join("one"),
        ..job(dir.path(), Method::Uniform)
    })
    .unwrap();
    assert_eq!((all.scored_alone, one.scored_alone), (3, 1));
    // Head only, one adapter alone, the composition, the adapter as written.
    assert_eq!(one.scores.len(), 4, "{:?}", one.scores);
    let alone = &one.scores[1];
    let same = all
        .scores
        .iter()
        .find(|s| s.candidate == alone.candidate)
        .unwrap();
    assert_eq!(same.accuracy, alone.accuracy, "scored alike either way");
    assert_eq!(one.verdict.against_best_adapter.against, alone.candidate);
    // What is not scored alone does not change the composition.
    assert_eq!(one.scores[2].accuracy, all.scores[4].accuracy);
    let table = loramix_experiment::compose::table(&one);
    assert!(table.contains("1 of 3 adapters scored alone"), "{table}");
}

#[test]
fn learned_weights_are_recorded_per_layer_and_rank_compression_reports_its_error() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let job = ComposeJob {
        rank: Some(1),
        ..job(dir.path(), Method::Learned)
    };
    let report = compose(&job).unwrap();
    assert_eq!(report.rank, 1);
    assert!(report.approximation_error > 0.0);
    let manifest: Adapter = loramix_peft::read(&job.out, &BERT, "any").unwrap();
    let record = manifest.manifest.composition.unwrap();
    // One weight per composed layer for every module: softmax rows sum to one.
    let layers = record.parents[0].weights.len();
    assert!(layers > 1);
    for layer in 0..layers {
        let sum: f32 = record.parents.iter().map(|p| p.weights[layer]).sum();
        assert!((sum - 1.0).abs() < 1e-5, "layer {layer}: {sum}");
    }
    assert!(
        record.approximation_error > 0.0 && manifest.manifest.layers.iter().all(|l| l.rank == 1)
    );
}

#[test]
fn adapters_of_another_base_and_bad_options_are_refused_before_training() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut job = job(dir.path(), Method::Uniform);
    let foreign = dir.path().join("foreign");
    let mut adapter = Adapter::load(&job.adapters[2]).unwrap();
    adapter.manifest.base_fingerprint = "0123456789abcdef".into();
    adapter.save(&foreign).unwrap();
    job.adapters.push(foreign.clone());
    let err = compose(&job).unwrap_err().to_string();
    assert!(
        err.contains("1 of 4 adapters were trained on another base")
            && err.contains(&foreign.display().to_string())
            && err.contains("0123456789abcdef"),
        "{err}"
    );
    assert!(!job.out.exists(), "nothing is written");

    let fixed = ComposeJob {
        method: Method::Fixed,
        ..job.clone()
    };
    assert_eq!(
        compose(&fixed).unwrap_err().to_string(),
        "--method fixed needs --weights"
    );
    let counted = ComposeJob {
        weights: Some(vec![1.0]),
        ..fixed
    };
    assert_eq!(
        compose(&counted).unwrap_err().to_string(),
        "--weights has 1 values for 4 adapters"
    );
    let not_an_adapter = ComposeJob {
        adapters: vec![dir.path().to_path_buf()],
        ..job.clone()
    };
    let err = compose(&not_an_adapter).unwrap_err().to_string();
    assert!(err.contains("not an adapter"), "{err}");
    let long = ComposeJob {
        input: InputArgs {
            max_len: Some(1 << 20),
            ..text_input()
        },
        ..job.clone()
    };
    assert_eq!(
        compose(&long).unwrap_err().to_string(),
        "--max-len must be 2 to 4096 tokens, not 1048576"
    );
}

#[test]
fn a_rerun_writes_the_same_head_and_adapter() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let first = job(dir.path(), Method::Uniform);
    compose(&first).unwrap();
    let second = ComposeJob {
        out: dir.path().join("again"),
        ..first.clone()
    };
    compose(&second).unwrap();
    for file in ["head.safetensors", "adapter_model.safetensors"] {
        assert!(
            std::fs::read(first.out.join(file)).unwrap()
                == std::fs::read(second.out.join(file)).unwrap(),
            "{file} differs between two runs of one job"
        );
    }
}

#[test]
fn without_validation_data_scores_say_they_are_training_accuracy() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let job = ComposeJob {
        val: None,
        ..job(dir.path(), Method::Uniform)
    };
    let report = compose(&job).unwrap();
    assert_eq!(report.scored_on, "training");
    assert_eq!(report.validation_examples, 0);
    let read = loramix_peft::read(&job.out, &BERT, "any").unwrap();
    assert!(read.manifest.metrics.contains_key("training_accuracy"));
}

/// `root/<split>/<class>/<i>.png`: reddish images for `warm`, bluish ones for `cold`.
fn write_images(root: &Path, split: &str, per_class: u8) {
    for (class, rgb) in [("cold", [20, 40, 200]), ("warm", [200, 60, 20])] {
        let dir = root.join(split).join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let pixel = image::Rgb(rgb.map(|v: u8| v.saturating_add(7 * i)));
            image::RgbImage::from_pixel(20, 20, pixel)
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
}

/// Two loramix-format adapters on the DINOv2 fixture in `base_dir` with random `B` factors,
/// saved under `dir`.
fn random_dinov2_adapters(base_dir: &Path, dir: &Path) -> Vec<PathBuf> {
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    use loramix_lora::{AdapterHost, LoraConfig, Target};
    use loramix_models::Classifier;
    let device = loramix_backend::device();
    let base = loramix_models::Vit::<loramix_backend::Inference>::from_pretrained(
        base_dir, 16, 1, &device,
    )
    .unwrap();
    (0..2)
        .map(|i| {
            let config = LoraConfig::new()
                .with_rank(2)
                .with_alpha(4.0)
                .with_targets(vec![Target::Query, Target::Value]);
            let mut model = base.clone().with_lora(&config, &device);
            for (_, layer) in model.adaptable_layers_mut() {
                if let Some(lora) = layer.lora.as_mut() {
                    let shape = lora.b.dims();
                    lora.b = Param::from_tensor(Tensor::random(
                        shape,
                        Distribution::Normal(0.0, 0.5),
                        &device,
                    ));
                }
            }
            let task = format!("random-{i}");
            let adapter = Adapter::extract(&model, &task, &config, Default::default()).unwrap();
            let path = dir.join(&task);
            adapter.save(&path).unwrap();
            path
        })
        .collect()
}

#[test]
fn images_compose_on_a_dinov2_base_and_predict_reads_class_folders() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base_dir = fixtures("models").join("tiny-dinov2");
    let adapters = random_dinov2_adapters(&base_dir, dir.path());
    let data = dir.path().join("colours");
    write_images(&data, "train", 3);
    write_images(&data, "val", 4);
    let job = ComposeJob {
        base: base_dir.clone(),
        adapters,
        data: data.clone(),
        val: None,
        input: image_input(),
        ..job(dir.path(), Method::Uniform)
    };
    let report = compose(&job).unwrap();
    assert_eq!(report.classes, ["cold", "warm"]);
    assert_eq!((report.train_examples, report.validation_examples), (6, 8));
    let written = score(&report, "written adapter");
    assert_eq!(written, score(&report, "uniform"));

    let (rows, accuracy) = predict(&PredictJob {
        base: base_dir,
        adapter: job.out.clone(),
        data: data.join("val"),
        input: image_input(),
        label_column: None,
        out: dir.path().join("predictions.csv"),
        batch: 3,
        parts: 1,
    })
    .unwrap();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows[0].label, "cold");
    assert!(rows[0].item.ends_with("val/cold/0.png"), "{}", rows[0].item);
    assert_eq!(accuracy, Some(written));
}

fn error_of(job: &ComposeJob) -> String {
    match compose(job) {
        Ok(_) => panic!("{} was written", job.out.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn overflowing_or_non_finite_merges_stop_naming_the_cause_instead_of_hanging() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base = job(dir.path(), Method::Ties);
    for lambda in [f32::NAN, f32::INFINITY] {
        let err = error_of(&ComposeJob {
            lambda,
            ..base.clone()
        });
        assert_eq!(
            err,
            format!("--lambda must be a finite number, not {lambda}")
        );
    }
    let huge = Some(vec![3e38; 3]);
    for (method, rank) in [
        (Method::Dare, None),
        (Method::Fixed, Some(2)),
        (Method::Fixed, None),
    ] {
        let err = error_of(&ComposeJob {
            method,
            rank,
            weights: huge.clone(),
            ..base.clone()
        });
        assert!(
            err.contains("the composed update is not finite"),
            "{method:?} {rank:?}: {err}"
        );
    }
    // Finite weights, a finite update, but one that overflows in the forward pass.
    let err = error_of(&ComposeJob {
        lambda: 1e38,
        ..base.clone()
    });
    assert!(
        err.starts_with("ties(density=0.5, lambda=1000") && err.contains("its update overwhelms"),
        "{err}"
    );
    let err = error_of(&ComposeJob {
        rank: Some(200_000),
        method: Method::Uniform,
        ..base.clone()
    });
    assert!(err.contains("--rank 200000 is above 16"), "{err}");
    assert!(!base.out.exists());
}

#[test]
fn validation_data_that_is_empty_a_folder_or_the_training_rows_is_refused() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base = job(dir.path(), Method::Uniform);
    let header_only = dir.path().join("header.csv");
    std::fs::write(&header_only, "text,label\n").unwrap();
    let err = error_of(&ComposeJob {
        val: Some(header_only.clone()),
        ..base.clone()
    });
    assert!(
        err.starts_with(&header_only.display().to_string())
            && err.contains("no validation examples"),
        "{err}"
    );
    // The same inside a data folder.
    let folder = dir.path().join("splits");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&base.data, folder.join("train.csv")).unwrap();
    std::fs::copy(&header_only, folder.join("val.csv")).unwrap();
    let err = error_of(&ComposeJob {
        data: folder.clone(),
        val: None,
        ..base.clone()
    });
    assert!(
        err.contains("no validation examples") && err.contains("splits"),
        "{err}"
    );
    // A folder given as --val is not read as its train.csv.
    let err = error_of(&ComposeJob {
        val: Some(folder.clone()),
        ..base.clone()
    });
    assert!(err.contains("--val takes one CSV file"), "{err}");
    // The training rows as validation.
    let err = error_of(&ComposeJob {
        val: Some(base.data.clone()),
        ..base.clone()
    });
    assert!(
        err.contains("every validation example is also a training example"),
        "{err}"
    );
    assert!(!base.out.exists());
}

#[test]
fn an_out_that_is_an_input_a_link_or_someone_elses_folder_is_refused_before_loading() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base = job(dir.path(), Method::Uniform);
    let input = base.adapters[2].clone();
    let before = std::fs::read(input.join("adapter.safetensors")).unwrap();
    let err = error_of(&ComposeJob {
        out: input.clone(),
        ..base.clone()
    });
    assert!(
        err.contains("is the input") && err.contains("overwrite"),
        "{err}"
    );

    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "keep").unwrap();
    let linked = dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&victim, linked.join("compose.json")).unwrap();
    let half = dir.path().join("half");
    std::fs::create_dir_all(half.join("head.safetensors")).unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    for (out, named) in [
        (&linked, "compose.json"),
        (&half, "head.safetensors"),
        (&mine, "notes.txt"),
    ] {
        let err = error_of(&ComposeJob {
            out: out.clone(),
            ..base.clone()
        });
        assert!(err.contains(&format!("holds `{named}`")), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert_eq!(
        std::fs::read(input.join("adapter.safetensors")).unwrap(),
        before
    );
    // An earlier output of compose is replaced, and no staging folder is left.
    compose(&base).unwrap();
    compose(&base).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn task_names_from_adapter_files_cannot_forge_table_rows() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base = job(dir.path(), Method::Uniform);
    let mut adapter = Adapter::load(&base.adapters[2]).unwrap();
    adapter.manifest.task = "x\n  head only (base)  100.00%\u{1b}[31m".into();
    let forged = dir.path().join("forged");
    adapter.save(&forged).unwrap();
    let report = compose(&ComposeJob {
        adapters: vec![forged],
        ..base
    })
    .unwrap();
    let table = loramix_experiment::compose::table(&report);
    let rows = table
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("verdict"));
    assert_eq!(rows.count(), report.scores.len(), "{table}");
    assert!(
        table.contains(r"x\n  head only (base)  100.00%\u{1b}[31m alone"),
        "{table}"
    );
}

/// Writes a head file into `dir` with `weight` `[rows, dim]`, a zero bias and `classes`.
fn write_head(dir: &Path, rows: usize, dim: usize, fill: f32, classes: &[&str]) {
    let weight: Vec<u8> = std::iter::repeat_n(fill, rows * dim)
        .flat_map(f32::to_le_bytes)
        .collect();
    let bias = vec![0u8; 4 * rows];
    let views = [
        (
            "weight",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, dim], &weight)
                .unwrap(),
        ),
        (
            "bias",
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows], &bias)
                .unwrap(),
        ),
    ];
    let metadata = std::collections::HashMap::from([(
        "classes".to_string(),
        serde_json::to_string(classes).unwrap(),
    )]);
    safetensors::serialize_to_file(views, Some(metadata), &dir.join("head.safetensors")).unwrap();
}

/// `predict` on the tiny BERT base with `adapter`, texts of `data` labelled by `label`.
fn predict_text(
    adapter: &Path,
    data: &Path,
    out: &Path,
) -> loramix_experiment::error::Result<(Vec<loramix_experiment::predict::Prediction>, Option<f64>)>
{
    predict(&PredictJob {
        base: tiny_bert(),
        adapter: adapter.to_path_buf(),
        data: data.to_path_buf(),
        input: text_input(),
        label_column: Some("label".into()),
        out: out.to_path_buf(),
        batch: 3,
        parts: 1,
    })
}

/// Heads `predict` must refuse, naming `head.safetensors` and the problem: (folder, classes,
/// width, every weight, class names, expected).
#[allow(clippy::type_complexity)]
const BAD_HEADS: &[(&str, usize, usize, f32, &[&str], &str)] = &[
    ("zero-classes", 0, 16, 0.0, &[], "0 class"),
    (
        "zero-dim",
        2,
        0,
        0.0,
        &["digits", "letters"],
        "takes 0 features",
    ),
    (
        "nan",
        2,
        16,
        f32::NAN,
        &["digits", "letters"],
        "`weight` holds NaN",
    ),
    (
        "twice",
        2,
        16,
        0.0,
        &["a", "a"],
        "class `a` is listed twice",
    ),
];

#[test]
fn predict_refuses_heads_that_cannot_be_right_and_notes_unknown_labels() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base = job(dir.path(), Method::Uniform);
    compose(&base).unwrap();
    let out = dir.path().join("p.csv");
    let val = base.val.clone().unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).unwrap();
        // The files a uniform composition writes (not Arrow's).
        for file in loramix_experiment::compose::OUTPUT_FILES {
            if base.out.join(file).is_file() {
                std::fs::copy(base.out.join(file), to.join(file)).unwrap();
            }
        }
        to
    };
    for &(name, rows, dim, fill, classes, expected) in BAD_HEADS {
        let adapter = copy(name);
        write_head(&adapter, rows, dim, fill, classes);
        let err = predict_text(&adapter, &val, &out).unwrap_err().to_string();
        assert!(
            err.contains("head.safetensors") && err.contains(expected),
            "{name}: {err}"
        );
    }
    // A head fitted beside other adapters: same width, same classes, refused.
    let other = ComposeJob {
        adapters: base.adapters[..1].to_vec(),
        out: dir.path().join("other"),
        ..base.clone()
    };
    compose(&other).unwrap();
    let mixed = copy("mixed");
    std::fs::copy(
        other.out.join("head.safetensors"),
        mixed.join("head.safetensors"),
    )
    .unwrap();
    let err = predict_text(&mixed, &val, &out).unwrap_err().to_string();
    assert!(err.contains("beside another adapter"), "{err}");
    // Writing over the data is refused; labels the head lacks are predicted and counted wrong.
    let err = predict_text(&base.out, &val, &val).unwrap_err().to_string();
    assert!(err.contains("is the input"), "{err}");
    let three = dir.path().join("three.csv");
    std::fs::write(&three, "text,label\nabc def,letters\n123 456,neutral\n").unwrap();
    let (rows, accuracy) = predict_text(&base.out, &three, &out).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(accuracy.unwrap() <= 0.5);
}

#[test]
fn export_peft_refuses_an_adapter_that_does_not_fit_the_base() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let own = job(dir.path(), Method::Uniform).adapters[2].clone();
    let export = loramix_experiment::pretrained::export_peft;
    let out = dir.path().join("peft");
    export(&own, &tiny_bert(), None, &out).unwrap();
    assert!(out.join("adapter_model.safetensors").exists());
    let dino = fixtures("models").join("tiny-dinov2");
    let err = export(&own, &dino, Some(16), &dir.path().join("to-dino"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another base") || err.contains("fingerprint"),
        "{err}"
    );
    let mut deep = Adapter::load(&own).unwrap();
    deep.manifest.layers[0].name = "encoder.blocks.7.query".into();
    let deep_dir = dir.path().join("deep");
    deep.save(&deep_dir).unwrap();
    let err = export(&deep_dir, &tiny_bert(), None, &dir.path().join("x"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder.blocks.7.query"), "{err}");
    assert!(!dir.path().join("to-dino").exists() && !dir.path().join("x").exists());
}

#[test]
fn image_classes_without_images_are_refused_naming_the_folder() {
    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("colours");
    write_images(&data, "train", 2);
    std::fs::create_dir_all(data.join("val/cold")).unwrap();
    std::fs::create_dir_all(data.join("val/warm")).unwrap();
    let job = ComposeJob {
        base: fixtures("models").join("tiny-dinov2"),
        adapters: vec![],
        data: data.clone(),
        val: None,
        input: image_input(),
        ..job(dir.path(), Method::Uniform)
    };
    let job = ComposeJob {
        adapters: vec![dir.path().join("unused")],
        ..job
    };
    // A held-out split skips a class it lacks; one that lacks them all holds nothing.
    let err = error_of(&job);
    assert!(
        err.contains("colours") && err.contains("no validation examples"),
        "{err}"
    );
    std::fs::remove_dir_all(data.join("val")).unwrap();
    std::fs::create_dir_all(data.join("train/empty")).unwrap();
    let err = error_of(&job);
    assert!(
        err.contains("train/empty") && err.contains("no PNG or JPEG image"),
        "{err}"
    );
}

/// What a sweep cell needs of a compose job on the tiny BERT: the family, the job's adapters
/// read for it, and its training examples.
/// A sweep cell on the tiny BERT of [`sweep_inputs`]: `items` to train on with `schedule`,
/// `test` to score, seed 7, no validation split.
fn text_cell<'a>(
    family: &'a loramix_experiment::family::BertText,
    device: &'a loramix_backend::Device,
    adapters: &'a [Adapter],
    (items, test): (Vec<loramix_data::TextItem>, &'a [loramix_data::TextItem]),
    (method, eval_batch): (&'a str, usize),
    schedule: loramix_experiment::fit::Schedule,
) -> loramix_experiment::method::CellJob<'a, loramix_experiment::family::BertText> {
    loramix_experiment::method::CellJob {
        family,
        device,
        eval_batch,
        parts: 1,
        lora: loramix_lora::LoraConfig::new(),
        base: loramix_experiment::user::base_of(family),
        adapters,
        task: "t",
        classes: 2,
        test,
        method,
        items,
        schedule,
        seed: 7,
        label: "cell".into(),
        validation: None,
    }
}

fn sweep_inputs(
    job: &ComposeJob,
) -> (
    Box<loramix_experiment::family::BertText>,
    Vec<Adapter>,
    loramix_data::LabelledDataset<loramix_data::TextItem>,
) {
    use loramix_experiment::user::{self, UserBase};
    let UserBase::Text(family) = UserBase::open(&tiny_bert(), Some(16), None).unwrap() else {
        panic!("tiny-bert opens as text")
    };
    let fingerprint = loramix_lora::AdapterHost::fingerprint(user::base_of(family.as_ref()));
    let adapters = (job.adapters.iter())
        .map(|d| user::load_adapter(d, &BERT, &fingerprint).unwrap())
        .collect();
    let train = loramix_data::text::load_csv_splits(&job.data, "text", "label").unwrap();
    (family, adapters, train.train)
}

/// The sweep's cell entry point (`Kind::run`, as a sweep cell calls it) and `compose`, given the
/// same base, modules, examples, settings and seed, choose the same module weights: one
/// implementation behind both. The method settings are written out here from compose's
/// documented options, so a compose option that stopped reaching the method would show.
/// The steps and rate compose trains `job`'s method with: the weights' for the methods that
/// learn them, the head's for the rest.
fn compose_schedule(job: &ComposeJob) -> loramix_experiment::fit::Schedule {
    let (steps, lr) = match job.method {
        Method::Learned | Method::Cat | Method::Select => (job.steps, job.lr),
        _ => (job.head_steps, job.head_lr),
    };
    loramix_experiment::fit::Schedule {
        steps,
        batch: job.batch,
        lr,
        head_lr: None,
        parts: 1,
    }
}

/// Each method compose offers beside uniform, as a sweep `[[method]]` written out from
/// compose's documented options (`job`'s, seed 7), with the weights compose is given.
fn kinds_written_out(
    job: &ComposeJob,
) -> Vec<(Method, loramix_experiment::method::Kind, Option<Vec<f32>>)> {
    use loramix_compose::{Normalisation, Penalty, Sharing};
    use loramix_experiment::method::{Dare, Kind, Learned, Search, Select};
    let learned = |normalisation| {
        Kind::Learned(Learned {
            head_lr: Some(0.03),
            sharing: Sharing::PerLayer,
            normalisation,
            penalty: Penalty::None,
        })
    };
    let dare_weights = vec![0.5, 0.3, 0.2];
    vec![
        (Method::Learned, learned(Normalisation::Softmax), None),
        (Method::Cat, learned(Normalisation::Unconstrained), None),
        (Method::Search, Kind::Search(Search::default()), None),
        (
            Method::Select,
            Kind::Select(Select {
                k: 2,
                then: Then::Learned,
                head_lr: Some(0.03),
            }),
            None,
        ),
        (
            Method::Dare,
            Kind::Dare(Dare {
                drop: job.drop,
                weights: Some(dare_weights.clone()),
                seed: 7,
            }),
            Some(dare_weights.clone()),
        ),
    ]
}

/// DARE's weights are given, not chosen: the sweep's merge, exported at compose's rank, is the
/// adapter compose wrote (the same entries dropped, the same seed).
fn dare_is_the_sweeps_merge(
    kind: &loramix_experiment::method::Kind,
    cell: &loramix_experiment::method::CellJob<'_, loramix_experiment::family::BertText>,
    rank: usize,
    written: &Adapter,
) {
    use loramix_experiment::method::Update;
    let composition = kind.compose(cell).unwrap().unwrap();
    let Update::Dense(deltas) = composition.update else {
        panic!("DARE merges dense deltas")
    };
    let record = loramix_lora::CompositionRecord {
        method: "dare".into(),
        parents: Vec::new(),
        approximation_error: 0.0,
    };
    let ours = loramix_compose::compress_dense(cell.base, deltas, rank, "c", record)
        .unwrap()
        .adapter;
    for layer in &written.manifest.layers {
        let (a, b) = (dense(&ours, &layer.name), dense(written, &layer.name));
        let worst = (a.unwrap().iter().zip(b.unwrap()))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{}: {worst}", layer.name);
    }
}

/// The weights compose recorded for its parents are the sweep cell's (a selection's kept
/// modules, best first; the sweep names every module, 0 for those left out).
fn sweep_weights_are_the_parents(
    method: Method,
    weights: &[(String, Vec<f32>)],
    parents: &[loramix_lora::ParentModule],
    adapters: &[Adapter],
) {
    assert!(!weights.is_empty(), "{method:?}");
    let tasks: Vec<&str> = (adapters.iter())
        .map(|a| a.manifest.task.as_str())
        .collect();
    let expected = if method == Method::Select { 2 } else { 3 };
    assert_eq!(parents.len(), expected, "{method:?}");
    for parent in parents {
        let m = tasks.iter().position(|t| *t == parent.task).unwrap();
        let sweep: Vec<f32> = weights.iter().map(|(_, row)| row[m]).collect();
        assert_eq!(parent.weights, sweep, "{method:?}, module {m}");
    }
    let left_out = (0..3).filter(|&m| weights.iter().all(|(_, row)| row[m] == 0.0));
    assert_eq!(left_out.count(), 3 - expected, "{method:?}: {:?}", weights);
    if method == Method::Cat {
        // Unconstrained: the weights of a layer need not sum to one.
        let sums = (weights.iter()).map(|(_, row)| row.iter().sum::<f32>());
        assert!(
            sums.clone().any(|s| (s - 1.0).abs() > 1e-4),
            "{:?}",
            weights
        );
    }
}

#[test]
fn compose_and_a_sweep_cell_choose_the_same_module_weights() {
    use loramix_experiment::method::FrozenCache;

    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let base_job = job(dir.path(), Method::Uniform);
    let (family, adapters, train) = sweep_inputs(&base_job);
    let family = family.as_ref();
    let base = loramix_experiment::user::base_of(family);
    let fingerprint = loramix_lora::AdapterHost::fingerprint(base);
    let val = loramix_data::text::load_csv_text(base_job.val.as_ref().unwrap(), "text", "label")
        .unwrap()
        .items;
    for (method, kind, weights) in kinds_written_out(&base_job) {
        let out = dir.path().join(format!("{method:?}"));
        let job = ComposeJob {
            method,
            weights,
            seed: 7,
            // The weights' rate apart from the heads', so each reaches what it should.
            lr: 0.1,
            head_lr: 0.03,
            out: out.clone(),
            ..base_job.clone()
        };
        let report = compose(&job).unwrap_or_else(|e| panic!("{method:?}: {e}"));
        let written = loramix_peft::read(&out, &BERT, &fingerprint).unwrap();
        let parents = written.manifest.composition.clone().unwrap().parents;

        let device = loramix_backend::device();
        assert_eq!(train.classes.len(), 2);
        let schedule = compose_schedule(&job);
        let examples = (train.items.clone(), &val[..]);
        let cell = text_cell(
            family,
            &device,
            &adapters,
            examples,
            ("m", job.batch.max(32)),
            schedule,
        );
        loramix_lora::init::seed::<loramix_backend::Train>(&device, 7);
        if method == Method::Dare {
            dare_is_the_sweeps_merge(&kind, &cell, report.rank, &written);
            continue;
        }
        let outcome = kind.run(&cell, &mut FrozenCache::default()).unwrap();
        sweep_weights_are_the_parents(method, &outcome.weights, &parents, &adapters);
        assert!(report.scores.len() == 6, "{method:?}");
    }
}

/// The selection's score of each module, one backward pass for all, is minus the derivative of
/// the loss in that module's weight: checked against a central finite difference that adds the
/// module alone at weights ±0.01 to the base and scores it with the same head.
#[test]
fn selection_scores_are_the_loss_gradient_in_each_module_weight() {
    use burn::nn::loss::CrossEntropyLoss;
    use burn::tensor::{ElementConversion, Tensor, TensorData};
    use loramix_experiment::fit::{Schedule, features};
    use loramix_experiment::method::gradient_scores;
    use loramix_models::Classifier;

    let _turn = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let (family, adapters, train) = sweep_inputs(&job(dir.path(), Method::Uniform));
    let family = family.as_ref();
    let base = loramix_experiment::user::base_of(family);
    let device = loramix_backend::device();
    let schedule = Schedule {
        steps: 30,
        batch: 6,
        lr: 0.05,
        head_lr: None,
        parts: 1,
    };
    let examples = (train.items.clone(), &train.items[..]);
    // An eval batch of 4 makes two batches: the scores add up across them.
    let cell = text_cell(
        family,
        &device,
        &adapters,
        examples,
        ("select", 4),
        schedule,
    );
    let scores = gradient_scores(&cell).unwrap();
    let (head, _) = cell.fit_head_on(base).unwrap();
    let labels: Vec<i64> = train.items.iter().map(|i| i.label as i64).collect();
    let targets = Tensor::from_data(TensorData::new(labels, [train.items.len()]), &device);
    let loss_at = |m: usize, w: f32| -> f64 {
        let mut weights = vec![0.0; adapters.len()];
        weights[m] = w;
        let mut host = base.clone();
        loramix_compose::attach(&mut host, &adapters, &weights, &device).unwrap();
        let x = features(family, &host.fold_lora(), &train.items, 6, 1);
        (CrossEntropyLoss::new(None, &device).forward(head.forward(x), targets.clone()))
            .into_scalar()
            .elem()
    };
    let eps = 0.01;
    for (m, score) in scores.iter().enumerate() {
        let slope = (loss_at(m, eps) - loss_at(m, -eps)) / (2.0 * eps as f64);
        let error = (-slope - *score as f64).abs();
        assert!(
            error < 1e-3 + 1e-2 * slope.abs(),
            "module {m}: score {score}, finite difference {}",
            -slope
        );
    }
    assert!(scores.iter().any(|s| s.abs() > 1e-3), "{scores:?}");
}
