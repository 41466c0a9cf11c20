//! `compose`, `predict` and `export-peft` options on the tiny BERT and its PEFT fixtures: the
//! fuzzer's bytes choose the method, weights, rank, rates, steps, sizes and seeds (floats
//! among ordinary, zero, huge, NaN and infinite values). Each run answers with a value or an
//! error: no panic, no hang (libFuzzer's -timeout), and nothing written on error.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use loramix_experiment::compose::{ComposeJob, Method, compose};
use loramix_experiment::predict::{PredictJob, predict};
use loramix_experiment::user::InputArgs;

mod scratch;

/// The fuzzer's bytes read as option values, zeros once they run out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn float(&mut self) -> f32 {
        match self.byte() % 8 {
            0 => 0.0,
            1 => f32::NAN,
            2 => f32::INFINITY,
            3 => -3e38,
            4 => 3e38,
            5 => f32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()]),
            b => (self.byte() as f32 - 128.0) / 64.0 * b as f32,
        }
    }

    fn size(&mut self) -> usize {
        match self.byte() % 4 {
            0 => usize::MAX,
            1 => 1 << 30,
            _ => self.byte() as usize,
        }
    }

    fn maybe<T>(&mut self, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.byte() % 2 == 1).then(|| value(self))
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let dir = scratch::folder();
    let train = scratch::file(&dir, "train.csv", b"text,label\nab,a\ncd,a\n12,b\n34,b\n");
    let val = scratch::file(&dir, "val.csv", b"text,label\nef,a\n56,b\n");
    let peft = repo("crates/peft/tests/fixtures");
    let methods = [
        Method::Uniform,
        Method::Learned,
        Method::Search,
        Method::Ties,
        Method::Dare,
        Method::Fixed,
    ];
    let input = InputArgs {
        text_column: "text".into(),
        max_len: b.maybe(Bytes::size),
        image_size: b.maybe(Bytes::size),
    };
    let job = ComposeJob {
        base: repo("crates/models/tests/fixtures/tiny-bert"),
        adapters: vec![
            peft.join("tiny-bert-lora-qv"),
            peft.join("tiny-bert-lora-patterns"),
        ],
        data: train,
        val: Some(val.clone()),
        label_column: "label".into(),
        method: methods[b.byte() as usize % methods.len()],
        weights: b.maybe(|b| (0..b.byte() % 4).map(|_| b.float()).collect()),
        rank: b.maybe(Bytes::size),
        density: b.float(),
        lambda: b.float(),
        drop: b.float(),
        steps: b.byte() as usize % 4,
        head_steps: b.byte() as usize % 4,
        lr: b.float().into(),
        head_lr: b.float().into(),
        batch: b.size().min(1 << 20),
        input: input.clone(),
        seed: u64::from(b.byte()),
        out: dir.join("out"),
        parts: 1,
    };
    if compose(&job).is_err() {
        assert!(!job.out.exists(), "a failed compose wrote its output");
        return;
    }
    let _ = predict(&PredictJob {
        base: job.base.clone(),
        adapter: job.out.clone(),
        data: val,
        label_column: b.maybe(|_| "label".to_string()),
        input,
        batch: b.size().min(1 << 20),
        out: dir.join("p.csv"),
        parts: 1,
    });
    // export-peft of the composition (as a loramix adapter), onto its base or another family's.
    let own = dir.join("own");
    let composed = loramix_peft::read(&job.out, &loramix_models::hf::BERT, "f").unwrap();
    composed.save(&own).unwrap();
    let base = match b.byte() % 2 {
        0 => job.base.clone(),
        _ => repo("crates/models/tests/fixtures/tiny-dinov2"),
    };
    let image_size = b.maybe(Bytes::size);
    let out = dir.join("peft");
    let exported = loramix_experiment::pretrained::export_peft(&own, &base, image_size, &out);
    assert!(exported.is_ok() || !out.exists(), "a failed export wrote its output");
});
