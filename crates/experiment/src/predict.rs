//! `loramix predict`: a base model and a composed adapter (with its head) applied to a batch
//! of inputs, predictions written as CSV, so a composition is usable without Python.

use std::path::{Path, PathBuf};

use burn::tensor::activation::softmax;
use loramix_data::{ImageItem, TextItem};
use loramix_lora::AdapterHost;
use loramix_models::Classifier;
use loramix_models::Learner;
use serde::Serialize;

use crate::error::{ExperimentError, Result, io};
use crate::family::Family;
use crate::fit::features;
use crate::user::{self, InputArgs, UserBase};
use crate::{head, output, progress};

/// Everything `loramix predict` is given (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct PredictJob {
    /// The base model directory the adapter was composed on.
    #[arg(long)]
    pub base: PathBuf,
    /// The adapter directory `loramix compose` wrote (PEFT or loramix format, or an Arrow
    /// composition's arrow_config.json with its adapters; and head.safetensors).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Images (a folder of images, or of <class>/ folders) or a CSV file of texts.
    #[arg(long)]
    pub data: PathBuf,
    /// CSV column holding the true label, if any (accuracy is then reported).
    #[arg(long)]
    pub label_column: Option<String>,
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// The CSV to write (item, prediction, confidence, label).
    #[arg(long, default_value = "predictions.csv")]
    pub out: PathBuf,
    /// Parts (threads) each batch is cut into; set by the caller, not the command line.
    #[arg(skip = 1usize)]
    pub parts: usize,
}

/// One row of the predictions file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The image's path, or the text's row number in the CSV (1 = first data row).
    pub item: String,
    pub prediction: String,
    /// Softmax probability of the prediction.
    pub confidence: f32,
    /// The known label (class folder or label column), empty if none.
    pub label: String,
}

/// An input to predict and what is known of it.
struct Input<I> {
    item: I,
    name: String,
    label: Option<String>,
}

/// Predicts every input of `job.data` and writes `job.out`; returns the rows and the accuracy
/// over the inputs with a known label (if any).
pub fn predict(job: &PredictJob) -> Result<(Vec<Prediction>, Option<f64>)> {
    let inputs = [
        job.base.as_path(),
        job.adapter.as_path(),
        job.data.as_path(),
    ];
    output::check(&job.out, output::Kind::File, &inputs)?;
    let names = loramix_models::hf::HfFamily::of(&job.base)?.names();
    let head = head::read_head(&job.adapter)?;
    let rows = match UserBase::open(&job.base, job.input.max_len, job.input.image_size)? {
        UserBase::Text(family) => {
            let inputs = texts(
                &job.data,
                &job.input.text_column,
                job.label_column.as_deref(),
            )?;
            run(family.as_ref(), names, inputs, &head, job)?
        }
        UserBase::Vision(family) => {
            let inputs = images(&job.data, family.shape)?;
            run(&family, names, inputs, &head, job)?
        }
    };
    note_unknown_labels(&rows, &head.classes);
    let labelled: Vec<_> = rows.iter().filter(|r| !r.label.is_empty()).collect();
    let accuracy = (!labelled.is_empty()).then(|| {
        labelled.iter().filter(|r| r.prediction == r.label).count() as f64 / labelled.len() as f64
    });
    let staged = output::Staged::begin(&job.out, output::Kind::File, &inputs)?;
    let path = staged.path();
    let mut writer = csv::Writer::from_path(path).map_err(|e| csv_error(&job.out, e))?;
    for row in &rows {
        writer.serialize(row).map_err(|e| csv_error(&job.out, e))?;
    }
    writer.flush().map_err(io(&job.out))?;
    drop(writer);
    staged.commit()?;
    Ok((rows, accuracy))
}

/// How many labelled inputs carry each label the head cannot predict.
fn unknown_labels<'a>(
    rows: &'a [Prediction],
    classes: &[String],
) -> std::collections::BTreeMap<&'a str, usize> {
    let mut unknown = std::collections::BTreeMap::new();
    for row in rows {
        if !row.label.is_empty() && !classes.contains(&row.label) {
            *unknown.entry(row.label.as_str()).or_default() += 1;
        }
    }
    unknown
}

/// Says how many labelled inputs carry a label the head cannot predict: they count as wrong.
fn note_unknown_labels(rows: &[Prediction], classes: &[String]) {
    let unknown = unknown_labels(rows, classes);
    if unknown.is_empty() {
        return;
    }
    let listed: Vec<String> = unknown
        .iter()
        .map(|(label, n)| format!("`{}` x{n}", user::printable(label)))
        .collect();
    eprintln!(
        "note: {} labelled inputs carry labels the head does not know ({}); they count as wrong (the head's classes: {})",
        unknown.values().sum::<usize>(),
        listed.join(", "),
        classes
            .iter()
            .map(|c| user::printable(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

fn csv_error(path: &Path, e: csv::Error) -> ExperimentError {
    ExperimentError::Artifact {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn run<F: Family>(
    family: &F,
    names: &loramix_models::hf::HfBlockNames,
    inputs: Vec<Input<F::Item>>,
    head: &head::Head,
    job: &PredictJob,
) -> Result<Vec<Prediction>> {
    let model = adapted_base(family, names, head, job)?;
    let (classes, head) = (&head.classes, &head.linear);
    let dim = model.head().weight.dims()[0];
    if head.weight.dims()[0] != dim {
        return Err(ExperimentError::Invalid(format!(
            "{}: the head takes {} features, the base gives {dim}",
            job.adapter.join(head::HEAD_FILE).display(),
            head.weight.dims()[0]
        )));
    }
    let bar = progress::bar(inputs.len(), "predict");
    let mut rows = Vec::with_capacity(inputs.len());
    for chunk in inputs.chunks(job.batch.max(1)) {
        let items: Vec<F::Item> = chunk.iter().map(|i| i.item.clone()).collect();
        let features = features(family, &model, &items, job.batch, job.parts);
        let probabilities = softmax(head.forward(features), 1);
        let [n, k] = probabilities.dims();
        let values = probabilities
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("f32");
        for (input, p) in chunk.iter().zip(values.chunks(k)).take(n) {
            let (best, confidence) = p
                .iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .expect("at least one class");
            rows.push(Prediction {
                item: input.name.clone(),
                prediction: classes[best].clone(),
                confidence,
                label: input.label.clone().unwrap_or_default(),
            });
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// The base with the written adapter applied (routed, for an Arrow output) and folded, once the
/// head is shown to come from this base and adapter.
fn adapted_base<F: Family>(
    family: &F,
    names: &loramix_models::hf::HfBlockNames,
    head: &head::Head,
    job: &PredictJob,
) -> Result<F::Frozen> {
    let mut model = user::base_of(family).clone();
    let fingerprint = model.fingerprint();
    head.check_origin(&job.adapter, &fingerprint)?;
    let device = loramix_backend::device();
    match crate::compose::arrow::read(&job.adapter, names, &fingerprint)? {
        Some(routed) => {
            user::check_same_base(&model, &job.base, &routed.experts)?;
            user::check_same_base(&model, &job.base, &routed.general)?;
            let (experts, general) = (&routed.experts, &routed.general);
            loramix_compose::route(&mut model, experts, general, &routed.config, &device).map_err(
                |e| ExperimentError::Artifact {
                    path: job.adapter.join(crate::compose::arrow::CONFIG_FILE),
                    message: e.to_string(),
                },
            )?;
        }
        None => {
            let adapter = user::load_adapter(&job.adapter, names, &fingerprint)?;
            user::check_same_base(&model, &job.base, std::slice::from_ref(&adapter))?;
            adapter.apply(&mut model, &device)?;
        }
    }
    Ok(model.fold_lora())
}

/// Texts of column `text_column` of the CSV `path`, with labels from `label_column` if given.
fn texts(
    path: &Path,
    text_column: &str,
    label_column: Option<&str>,
) -> Result<Vec<Input<TextItem>>> {
    let bad = |message: String| ExperimentError::Artifact {
        path: path.to_path_buf(),
        message,
    };
    let bytes = loramix_lora::files::read(path).map_err(io(path))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader.headers().map_err(|e| csv_error(path, e))?.clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "no column `{name}` (columns: {})",
                header.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let text_at = column(text_column)?;
    let label_at = label_column.map(column).transpose()?;
    let mut inputs = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| csv_error(path, e))?;
        inputs.push(Input {
            item: TextItem {
                text: record[text_at].to_string(),
                label: 0,
            },
            name: (row + 1).to_string(),
            label: label_at.map(|at| record[at].trim().to_string()),
        });
    }
    if inputs.is_empty() {
        return Err(bad("no rows".into()));
    }
    Ok(inputs)
}

/// The images of `root` (unlabelled) and of its class folders (labelled by the folder name).
fn images(root: &Path, shape: loramix_data::ImageShape) -> Result<Vec<Input<ImageItem>>> {
    let files = loramix_data::image::image_files(root)?;
    if files.is_empty() {
        return Err(ExperimentError::Invalid(format!(
            "{}: no PNG or JPEG images here or in its sub-folders",
            root.display()
        )));
    }
    files
        .into_iter()
        .map(|(path, label)| {
            Ok(Input {
                item: ImageItem {
                    pixels: loramix_data::image::read_image(&path, shape)?,
                    label: 0,
                },
                name: path.display().to_string(),
                label,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_the_head_lacks_are_counted_by_label() {
        let row = |label: &str| Prediction {
            item: "1".into(),
            prediction: "pos".into(),
            confidence: 0.9,
            label: label.into(),
        };
        let rows = [
            row("pos"),
            row("neutral"),
            row(""),
            row("Neutral"),
            row("neutral"),
        ];
        let classes = ["neg".to_string(), "pos".to_string()];
        let unknown = unknown_labels(&rows, &classes);
        assert_eq!(
            unknown.into_iter().collect::<Vec<_>>(),
            [("Neutral", 1), ("neutral", 2)]
        );
    }
}
