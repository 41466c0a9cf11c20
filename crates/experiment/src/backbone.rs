//! The `[model]` section of an experiment: a backbone loramix pretrains itself (a size), or a
//! pretrained Hugging Face checkpoint (whose `config.json` gives the size).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The backbone, checked when read: a size that loramix pretrains itself (the suite decides
/// ViT or text transformer), or a pretrained Hugging Face checkpoint (BertModel for text,
/// Dinov2Model for images) whose `config.json` gives the size.
///
/// The file writes both as one flat `[model]` table ([`ModelSection`]), and the enum
/// serialises back to exactly that table: run folders are named by a hash of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "ModelSection", into = "ModelSection")]
pub enum ModelSpec {
    Own(OwnModel),
    Pretrained(PretrainedModel),
}

/// A backbone loramix pretrains itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnModel {
    pub size: OwnSize,
    /// ViT patch side in pixels (image suites).
    pub patch_size: Option<usize>,
    /// Longest token sequence (text suites).
    pub max_len: Option<usize>,
}

/// The size of a backbone loramix pretrains itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnSize {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_dim: usize,
}

/// A pretrained checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainedModel {
    /// A folder of the data cache (`minilm-l6`, `dinov2-s`) or a path (containing `/`)
    /// relative to the experiment file, as written.
    pub name: String,
    /// The folder `name` resolves to ([`crate::config::Experiment::from_file`] sets it).
    pub dir: PathBuf,
    /// Longest token sequence (text); default 128, or the checkpoint's positions if fewer.
    pub max_len: Option<usize>,
    /// Side in pixels that images are resized to; default 112 on the CPU, 224 on a GPU
    /// backend.
    pub image_size: Option<usize>,
}

impl ModelSpec {
    /// Longest token sequence, where the file sets one.
    pub fn max_len(&self) -> Option<usize> {
        match self {
            ModelSpec::Own(own) => own.max_len,
            ModelSpec::Pretrained(pretrained) => pretrained.max_len,
        }
    }

    /// The resized image side of a pretrained backbone, where the file sets one.
    pub fn image_size(&self) -> Option<usize> {
        match self {
            ModelSpec::Own(_) => None,
            ModelSpec::Pretrained(pretrained) => pretrained.image_size,
        }
    }
}

/// The `[model]` table as the file writes it, every field optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pretrained: Option<String>,
    dim: Option<usize>,
    depth: Option<usize>,
    heads: Option<usize>,
    mlp_dim: Option<usize>,
    patch_size: Option<usize>,
    max_len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image_size: Option<usize>,
}

impl TryFrom<ModelSection> for ModelSpec {
    type Error = String;

    fn try_from(s: ModelSection) -> Result<Self, String> {
        let sizes = [
            ("dim", s.dim),
            ("depth", s.depth),
            ("heads", s.heads),
            ("mlp_dim", s.mlp_dim),
            ("patch_size", s.patch_size),
        ];
        if let Some(name) = s.pretrained {
            if let Some((field, _)) = sizes.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "model.{field} cannot be set with model.pretrained = {name:?}: the checkpoint's config.json sets the size"
                ));
            }
            return Ok(ModelSpec::Pretrained(PretrainedModel {
                name,
                dir: PathBuf::new(),
                max_len: s.max_len,
                image_size: s.image_size,
            }));
        }
        let missing = |field: &str| {
            format!("model.{field} is missing (or name a checkpoint with model.pretrained)")
        };
        let size = OwnSize {
            dim: s.dim.ok_or_else(|| missing("dim"))?,
            depth: s.depth.ok_or_else(|| missing("depth"))?,
            heads: s.heads.ok_or_else(|| missing("heads"))?,
            mlp_dim: s.mlp_dim.ok_or_else(|| missing("mlp_dim"))?,
        };
        if s.image_size.is_some() {
            return Err("model.image_size applies to pretrained backbones only (an own ViT takes the suite's size)".into());
        }
        if size.heads == 0 || !size.dim.is_multiple_of(size.heads) {
            return Err(format!(
                "model.dim {} is not a multiple of model.heads {}",
                size.dim, size.heads
            ));
        }
        Ok(ModelSpec::Own(OwnModel {
            size,
            patch_size: s.patch_size,
            max_len: s.max_len,
        }))
    }
}

impl From<ModelSpec> for ModelSection {
    fn from(spec: ModelSpec) -> Self {
        match spec {
            ModelSpec::Own(own) => ModelSection {
                pretrained: None,
                dim: Some(own.size.dim),
                depth: Some(own.size.depth),
                heads: Some(own.size.heads),
                mlp_dim: Some(own.size.mlp_dim),
                patch_size: own.patch_size,
                max_len: own.max_len,
                image_size: None,
            },
            ModelSpec::Pretrained(p) => ModelSection {
                pretrained: Some(p.name),
                dim: None,
                depth: None,
                heads: None,
                mlp_dim: None,
                patch_size: None,
                max_len: p.max_len,
                image_size: p.image_size,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml: &str) -> Result<ModelSpec, String> {
        toml::from_str::<ModelSpec>(toml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_enum_serialises_as_the_flat_table_the_runs_are_hashed_by() {
        // The JSON the flat struct of earlier versions wrote: committed runs are named by a
        // hash of it, so these strings must never change.
        let own = read("dim = 64\ndepth = 4\nheads = 4\nmlp_dim = 128\npatch_size = 7\n").unwrap();
        assert_eq!(
            serde_json::to_string(&own).unwrap(),
            r#"{"dim":64,"depth":4,"heads":4,"mlp_dim":128,"patch_size":7,"max_len":null}"#
        );
        let bert = read("pretrained = \"minilm-l6\"\nmax_len = 64\n").unwrap();
        assert_eq!(
            serde_json::to_string(&bert).unwrap(),
            r#"{"pretrained":"minilm-l6","dim":null,"depth":null,"heads":null,"mlp_dim":null,"patch_size":null,"max_len":64}"#
        );
        let dino = read("pretrained = \"dinov2-s\"\nimage_size = 56\n").unwrap();
        assert_eq!(
            serde_json::to_string(&dino).unwrap(),
            r#"{"pretrained":"dinov2-s","dim":null,"depth":null,"heads":null,"mlp_dim":null,"patch_size":null,"max_len":null,"image_size":56}"#
        );
    }

    #[test]
    fn a_section_that_is_neither_backbone_is_refused_by_name() {
        let cases = [
            (
                "pretrained = \"m\"\ndim = 8\n",
                "model.dim cannot be set with model.pretrained",
            ),
            (
                "pretrained = \"m\"\npatch_size = 7\n",
                "model.patch_size cannot be set",
            ),
            (
                "dim = 8\ndepth = 2\nheads = 2\n",
                "model.mlp_dim is missing",
            ),
            ("depth = 2\n", "model.dim is missing"),
            (
                "dim = 8\ndepth = 2\nheads = 3\nmlp_dim = 8\n",
                "model.dim 8 is not a multiple of model.heads 3",
            ),
            (
                "dim = 8\ndepth = 2\nheads = 0\nmlp_dim = 8\n",
                "not a multiple of model.heads 0",
            ),
            (
                "dim = 8\ndepth = 2\nheads = 2\nmlp_dim = 8\nimage_size = 56\n",
                "model.image_size applies to pretrained backbones only",
            ),
            ("pretrained = \"m\"\nwidth = 3\n", "unknown field `width`"),
        ];
        for (toml, expected) in cases {
            let error = read(toml).unwrap_err();
            assert!(error.contains(expected), "{toml:?}: {error}");
        }
    }
}
