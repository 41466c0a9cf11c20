//! `loramix compose` and `loramix predict` end to end on the committed tiny BERT and the PEFT
//! adapters PEFT wrote for it (crates/models and crates/peft fixtures).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use loramix_experiment::compose::{ComposeJob, ComposeReport, Method, compose};
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
        let fingerprint = {
            let base = loramix_models::Bert::<loramix_backend::Inference>::from_pretrained(
                &tiny_bert(),
                1,
                &loramix_backend::device(),
            )
            .unwrap();
            loramix_lora::AdapterHost::fingerprint(&base)
        };
        let read = loramix_peft::read(&job.out, &BERT, &fingerprint).unwrap();
        let record = read.manifest.composition.clone().unwrap();
        let tasks: Vec<&str> = record.parents.iter().map(|p| p.task.as_str()).collect();
        assert_eq!(
            tasks,
            ["tiny-bert-lora-qv", "tiny-bert-lora-patterns", "qv-again"]
        );
        assert_eq!(read.manifest.metrics["validation_accuracy"], written);
        if method == Method::Uniform {
            // The written update of every layer is the mean of the parents' updates.
            let parents: Vec<Adapter> = job
                .adapters
                .iter()
                .map(|dir| {
                    loramix_experiment::user::load_adapter(dir, &BERT, &fingerprint).unwrap()
                })
                .collect();
            for layer in &read.manifest.layers {
                let got = dense(&read, &layer.name).unwrap();
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

        // `predict` on the validation file reproduces the reported accuracy, by another path
        // (the files on disk, the head read back).
        let out = dir.path().join("predictions.csv");
        let (rows, accuracy) = predict(&PredictJob {
            base: tiny_bert(),
            adapter: job.out.clone(),
            data: job.val.clone().unwrap(),
            input: text_input(),
            label_column: Some("label".into()),
            out: out.clone(),
            batch: 3,
            parts: 1,
        })
        .unwrap();
        assert_eq!(rows.len(), 8);
        assert_eq!(accuracy, Some(written), "{method:?}");
        let csv = std::fs::read_to_string(&out).unwrap();
        assert!(
            csv.starts_with("item,prediction,confidence,label\n1,"),
            "{csv}"
        );
    }
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

#[test]
fn images_compose_on_a_dinov2_base_and_predict_reads_class_folders() {
    let _turn = one_at_a_time();
    use burn::module::Param;
    use burn::tensor::{Distribution, Tensor};
    use loramix_lora::{AdapterHost, LoraConfig, Target};
    use loramix_models::Classifier;
    let dir = tempfile::tempdir().unwrap();
    let base_dir = fixtures("models").join("tiny-dinov2");
    let device = loramix_backend::device();
    let base = loramix_models::dinov2::from_pretrained::<loramix_backend::Inference>(
        &base_dir, 16, 1, &device,
    )
    .unwrap();
    // Two loramix-format adapters with random factors.
    let adapters: Vec<PathBuf> = (0..2)
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
            let path = dir.path().join(&task);
            adapter.save(&path).unwrap();
            path
        })
        .collect();
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
