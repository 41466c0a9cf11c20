//! The `[model]` section of an experiment: a backbone loramix pretrains itself (a size), or a
//! pretrained Hugging Face checkpoint (whose `config.json` gives the size).

use serde::{Deserialize, Serialize};

/// The backbone: a size that loramix pretrains itself (the suite decides ViT or text
/// transformer), or a pretrained Hugging Face checkpoint (BertModel for text, Dinov2Model for
/// images) whose `config.json` gives the size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// A pretrained checkpoint: a folder of the data cache (`minilm-l6`, `dinov2-s`) or a
    /// path (containing `/`) relative to the experiment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
    pub dim: Option<usize>,
    pub depth: Option<usize>,
    pub heads: Option<usize>,
    pub mlp_dim: Option<usize>,
    /// ViT patch side in pixels (image suites, own backbone).
    pub patch_size: Option<usize>,
    /// Longest token sequence (text suites).
    pub max_len: Option<usize>,
    /// Side in pixels that images are resized to (image suites, pretrained backbone); default
    /// 112 on the CPU, 224 on a GPU backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
}

/// The size of a backbone loramix pretrains itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnSize {
    pub dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_dim: usize,
}

impl ModelSpec {
    /// The size of an own backbone, or `None` for a pretrained one (checked when read).
    pub fn own_size(&self) -> Option<OwnSize> {
        Some(OwnSize {
            dim: self.dim?,
            depth: self.depth?,
            heads: self.heads?,
            mlp_dim: self.mlp_dim?,
        })
    }

    pub(crate) fn check(&self, has_pretrain: bool) -> std::result::Result<(), String> {
        let sizes = [
            ("dim", self.dim),
            ("depth", self.depth),
            ("heads", self.heads),
            ("mlp_dim", self.mlp_dim),
            ("patch_size", self.patch_size),
        ];
        if let Some(name) = &self.pretrained {
            if let Some((field, _)) = sizes.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "model.{field} cannot be set with model.pretrained = {name:?}: the checkpoint's config.json sets the size"
                ));
            }
            if has_pretrain {
                return Err(format!(
                    "[pretrain] cannot be given with model.pretrained = {name:?}: a pretrained backbone is not pretrained again"
                ));
            }
            return Ok(());
        }
        if let Some((field, _)) = sizes[..4].iter().find(|(_, v)| v.is_none()) {
            return Err(format!(
                "model.{field} is missing (or name a checkpoint with model.pretrained)"
            ));
        }
        if !has_pretrain {
            return Err("[pretrain] is missing: an own backbone is pretrained first".into());
        }
        if self.image_size.is_some() {
            return Err("model.image_size applies to pretrained backbones only (an own ViT takes the suite's size)".into());
        }
        let size = self.own_size().expect("checked above");
        if size.heads == 0 || !size.dim.is_multiple_of(size.heads) {
            return Err(format!(
                "model.dim {} is not a multiple of model.heads {}",
                size.dim, size.heads
            ));
        }
        Ok(())
    }
}
