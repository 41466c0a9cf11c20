//! The data layer of loramix: loaders for the datasets the fetch step (`datasets/fetch.sh`)
//! brings from package registries, users' own image folders and CSV files, deterministic
//! covariate-shift transforms, the k-shot protocol's sampling, burn batchers, and task suites
//! (`experiments/suites/*.toml`) with a check that downstream data never leaks upstream.
//!
//! Everything is backend-agnostic until a batcher turns items into tensors.

mod batch;
mod dataset;
mod error;
pub mod image;
mod item;
mod near;
mod raster;
mod role;
mod sampler;
mod suite;
pub mod text;
mod transform;

pub use batch::{ImageBatch, ImageBatcher, TextBatch, TextBatcher};
pub use dataset::{GivenSplits, LabelledDataset};
pub use error::{DEFAULT_MAX_DECOMPRESSED_BYTES, DataError, MAX_DECOMPRESSED_VAR, Result};
pub use item::{ImageItem, ImageShape, Labelled, TextItem};
pub use raster::{convert, resize_bilinear};
pub use sampler::{Draw, ShotSampler, Split, balanced_split};
pub use suite::{
    LoadedSuite, MAX_IMAGE_SIDE, Modality, Part, Role, Shift, Source, Suite, SuiteItem, Task,
    TaskSpec, is_folder_name,
};
pub use transform::{ImageTransform, TextTransform, apply_image_transforms, apply_text_transforms};
