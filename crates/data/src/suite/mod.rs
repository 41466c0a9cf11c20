//! Task suites: a pretraining pool, upstream tasks and downstream tasks under each kind of
//! shift, declared in TOML and materialised from the fetched data with a leakage check.

mod item;
mod loaded;
mod near;
mod plan;
mod spec;

pub use item::SuiteItem;
pub use loaded::{LoadedSuite, Task};
pub use spec::{
    MAX_IMAGE_SIDE, Modality, Part, Role, Shift, Source, Suite, TaskSpec, is_folder_name,
};
