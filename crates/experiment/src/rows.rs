//! The rows the stages write: `sweep/*.csv` (one per cell), `sweep/*.weights.csv` (module
//! weights a cell chose), `sweep/tuning/` (the tuning tasks' cells and every factor they
//! tried) and `similarity-*.csv`. Each carries the hash of the config that made
//! it, so rows of another config are never mistaken for this one's.

use loramix_design::Shot;
use loramix_report::ResultRow;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// One finished cell of the sweep: the report's [`ResultRow`], then the config hash and what
/// the tuning chose. One flat CSV row, the result's columns first, read back by column name
/// (files written before the tuning columns existed still read).
#[derive(Debug, Clone, PartialEq)]
pub struct CellRow {
    pub result: ResultRow,
    pub facts: CellFacts,
}

/// The sweep's own columns of a cell row, after the result's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFacts {
    /// Hash of everything the cell depends on; rows of another config are not reused.
    pub config: String,
    /// What the tuning chose on the cell's validation examples (empty without tuning): the
    /// rates, the steps kept by early stopping and the validation accuracy.
    #[serde(default)]
    pub lr: Option<f64>,
    #[serde(default)]
    pub head_lr: Option<f64>,
    #[serde(default)]
    pub steps: Option<usize>,
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Every rate factor the tuning tried and its validation accuracy, `factor=accuracy`
    /// separated by spaces, in the order tried (empty without tuning).
    #[serde(default)]
    pub candidates: String,
    /// The factor added past an edge of the grid because the best lay on it (once).
    #[serde(default)]
    pub extended_to: Option<f64>,
}

/// A learned (or searched) module weight of one cell: the report's row, then the hash of the
/// config that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightRow {
    pub weight: loramix_report::WeightRow,
    pub config: String,
}

/// The one column a [`WeightRow`] adds to the report's.
#[derive(Serialize, Deserialize)]
struct ConfigColumn {
    config: String,
}

impl Serialize for CellRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.result, &self.facts).serialize(s)
    }
}

impl<'de> Deserialize<'de> for CellRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (result, facts) = read_two(d)?;
        Ok(Self { result, facts })
    }
}

impl Serialize for WeightRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let config = ConfigColumn {
            config: self.config.clone(),
        };
        (&self.weight, config).serialize(s)
    }
}

impl<'de> Deserialize<'de> for WeightRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (weight, ConfigColumn { config }) = read_two(d)?;
        Ok(Self { weight, config })
    }
}

/// One CSV row (read with its header) as two structs, each taking its own columns by name:
/// the row is read as text, then each part by csv's own rules, as if it were the whole row.
fn read_two<'de, D, A, B>(d: D) -> Result<(A, B), D::Error>
where
    D: Deserializer<'de>,
    A: DeserializeOwned,
    B: DeserializeOwned,
{
    let columns = BTreeMap::<String, String>::deserialize(d)?;
    let header: csv::StringRecord = columns.keys().collect();
    let values: csv::StringRecord = columns.values().collect();
    let a = values
        .deserialize(Some(&header))
        .map_err(D::Error::custom)?;
    let b = values
        .deserialize(Some(&header))
        .map_err(D::Error::custom)?;
    Ok((a, b))
}

/// One rate factor a tuning cell tried (`sweep/tuning/<shard>.candidates.csv`), with the validation
/// score of its best check: what the choice per method and shot is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRow {
    pub task: String,
    pub method: String,
    pub k: Shot,
    pub seed: u64,
    pub factor: f64,
    pub val_accuracy: Option<f64>,
    pub val_loss: Option<f64>,
    pub config: String,
}

/// CKA between a downstream task's representation and an upstream module's: the report's own
/// row type, so the file is written and read by one definition.
pub use loramix_report::SimilarityRow;

/// How the similarity stage's reference LoRA of a downstream task trained
/// (`similarity-<hash>.references.csv`): a reference that stayed near the base makes its
/// CKA uninformative, so the report states this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    pub task: String,
    pub steps: usize,
    pub max_steps: usize,
    pub val_accuracy: Option<f64>,
    /// Stopped because validation stopped improving, before `max_steps`.
    pub converged: bool,
    pub test_accuracy: f64,
}

impl ReferenceRow {
    /// The file beside the similarity rows at `similarity`.
    pub fn path(similarity: &std::path::Path) -> std::path::PathBuf {
        similarity.with_extension("references.csv")
    }
}

/// What identifies a cell: task, method, k, seed and the config hash.
pub type CellKey = (String, String, Shot, u64, String);

impl CellRow {
    pub fn key(&self) -> CellKey {
        let r = &self.result;
        cell_key(&r.task, &r.method, r.k, r.seed, &self.facts.config)
    }
}

impl CandidateRow {
    /// The key of the tuning cell that tried this factor.
    pub fn key(&self) -> CellKey {
        cell_key(&self.task, &self.method, self.k, self.seed, &self.config)
    }
}

impl WeightRow {
    /// The key of the cell that chose this weight.
    pub fn key(&self) -> CellKey {
        let w = &self.weight;
        cell_key(&w.task, &w.method, w.k, w.seed, &self.config)
    }
}

fn cell_key(task: &str, method: &str, k: Shot, seed: u64, config: &str) -> CellKey {
    let (task, method, config) = (task.to_string(), method.to_string(), config.to_string());
    (task, method, k, seed, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `text` read as `T` and written back.
    fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> (Vec<T>, String) {
        let rows: Vec<T> = (csv::Reader::from_reader(text.as_bytes()).deserialize())
            .collect::<Result<_, _>>()
            .unwrap();
        let mut writer = csv::Writer::from_writer(Vec::new());
        rows.iter().for_each(|r| writer.serialize(r).unwrap());
        (
            rows,
            String::from_utf8(writer.into_inner().unwrap()).unwrap(),
        )
    }

    #[test]
    fn a_cell_row_is_one_flat_row_with_the_result_columns_first() {
        let text = "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec,config,lr,head_lr,steps,val_accuracy,candidates,extended_to\n\
                    7,label,lora,full,1,0.5,8452,1.25,100.0,0123456789,0.002,,48,0.75,0.1=0.5 1=0.75,\n";
        let (rows, written) = round_trip::<CellRow>(text);
        assert_eq!(written, text);
        let row = &rows[0];
        // A task named by digits and a hash of digits stay text.
        assert_eq!(
            (row.result.task.as_str(), row.facts.config.as_str()),
            ("7", "0123456789")
        );
        assert_eq!((row.result.k, row.result.seed), (Shot::Full, 1));
        assert_eq!(
            (row.facts.lr, row.facts.head_lr, row.facts.steps),
            (Some(0.002), None, Some(48))
        );
        assert_eq!(row.facts.candidates, "0.1=0.5 1=0.75");
    }

    #[test]
    fn cell_rows_written_before_the_tuning_columns_still_read() {
        let text = "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec,config\n\
                    a,covariate,uniform,5,0,0.25,36,2.0,40.0,abc\n";
        let (rows, written) = round_trip::<CellRow>(text);
        let facts = &rows[0].facts;
        assert_eq!(
            (facts.lr, facts.steps, facts.candidates.as_str()),
            (None, None, "")
        );
        assert!(
            written.ends_with("a,covariate,uniform,5,0,0.25,36,2.0,40.0,abc,,,,,,\n"),
            "{written}"
        );
    }

    #[test]
    fn a_weight_row_is_the_reports_row_and_its_config() {
        let text = "task,method,k,seed,layer,module,weight,config\n\
                    a,learned,1,2,encoder.blocks.0.query,up-a,0.125,abc\n";
        let (rows, written) = round_trip::<WeightRow>(text);
        assert_eq!(written, text);
        assert_eq!((rows[0].weight.seed, rows[0].weight.weight), (2, 0.125));
        assert_eq!(rows[0].config, "abc");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_it() {
        let text = "task,shift,method,k,seed,accuracy,trainable_params,train_seconds,samples_per_sec,config\n\
                    a,covariate,uniform,5,zero,0.25,36,2.0,40.0,abc\n";
        let row = csv::Reader::from_reader(text.as_bytes())
            .deserialize::<CellRow>()
            .next()
            .unwrap();
        let error = row.unwrap_err().to_string();
        assert!(
            error.contains("seed") || error.contains("invalid digit"),
            "{error}"
        );
    }
}
