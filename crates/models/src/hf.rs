//! Hugging Face module names of the shared [`Encoder`](crate::Encoder)'s blocks, per model
//! family: what maps a checkpoint's keys (and a PEFT adapter's module paths) onto loramix's.

use loramix_lora::Target;

use crate::checkpoint::{Layout, Source};

/// Where one family keeps each part of block `i` (`{layers}.{i}.{part}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HfBlockNames {
    /// Prefix of the block list, e.g. `encoder.layer`.
    pub layers: &'static str,
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub output: &'static str,
    pub mlp_in: &'static str,
    pub mlp_out: &'static str,
    pub norm_attn: &'static str,
    pub norm_mlp: &'static str,
    /// LayerScale parameters (DINOv2), if the family has them.
    pub scale_attn: Option<&'static str>,
    pub scale_mlp: Option<&'static str>,
    /// The module names of the current transformers model class, where they differ from the
    /// checkpoint's tensor names: transformers 5 renames Dinov2's attention linears when it
    /// loads a checkpoint, and PEFT adapters name the modules.
    pub modules: Option<&'static HfBlockNames>,
    /// Linears the Hugging Face model has outside its blocks that loramix's forward pass never
    /// reads, each with the reason: a LoRA there (PEFT's `target_modules` often catch them)
    /// cannot change a loramix prediction, so an adapter may carry one and it is left out.
    pub unread: &'static [(&'static str, &'static str)],
}

/// BertModel (and every BERT-family encoder with the same names, e.g. MiniLM).
pub const BERT: HfBlockNames = HfBlockNames {
    layers: "encoder.layer",
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    output: "attention.output.dense",
    mlp_in: "intermediate.dense",
    mlp_out: "output.dense",
    norm_attn: "attention.output.LayerNorm",
    norm_mlp: "output.LayerNorm",
    scale_attn: None,
    scale_mlp: None,
    modules: None,
    unread: &[(
        "pooler.dense",
        "BertModel's pooler feeds only its pooler_output, and loramix classifies the mean of the token embeddings (sentence-transformers' pooling), so the pooler never reaches a prediction",
    )],
};

/// Dinov2Model.
pub const DINOV2: HfBlockNames = HfBlockNames {
    layers: "encoder.layer",
    query: "attention.attention.query",
    key: "attention.attention.key",
    value: "attention.attention.value",
    output: "attention.output.dense",
    mlp_in: "mlp.fc1",
    mlp_out: "mlp.fc2",
    norm_attn: "norm1",
    norm_mlp: "norm2",
    scale_attn: Some("layer_scale1.lambda1"),
    scale_mlp: Some("layer_scale2.lambda1"),
    modules: Some(&DINOV2_MODULES),
    unread: &[],
};

/// Dinov2Model's module names in transformers 5 (`attention.q_proj` where the checkpoint says
/// `attention.attention.query`; `transformers/conversion_mapping.py` renames them on load).
pub const DINOV2_MODULES: HfBlockNames = HfBlockNames {
    layers: "encoder.layer",
    query: "attention.q_proj",
    key: "attention.k_proj",
    value: "attention.v_proj",
    output: "attention.o_proj",
    mlp_in: "mlp.fc1",
    mlp_out: "mlp.fc2",
    norm_attn: "norm1",
    norm_mlp: "norm2",
    scale_attn: Some("layer_scale1.lambda1"),
    scale_mlp: Some("layer_scale2.lambda1"),
    modules: None,
    unread: &[],
};

impl HfBlockNames {
    /// The names the model's modules have in the current transformers: what PEFT adapters
    /// are written with.
    pub fn current_modules(&self) -> &HfBlockNames {
        self.modules.unwrap_or(self)
    }

    /// Why loramix never reads `path`, if it is one of the family's [`unread`](Self::unread)
    /// linears.
    pub fn unread_reason(&self, path: &str) -> Option<&'static str> {
        (self.unread.iter())
            .find(|(module, _)| *module == path)
            .map(|(_, why)| *why)
    }

    /// The block and target of a module path in the current transformers' names or in the
    /// checkpoint's (older PEFT adapters use these).
    pub fn parse_any_module(&self, path: &str) -> Option<(usize, Target)> {
        self.current_modules()
            .parse_module(path)
            .or_else(|| self.parse_module(path))
    }

    /// The Hugging Face path of the linear `target` in block `i`, e.g.
    /// `encoder.layer.0.attention.self.query`.
    pub fn module(&self, i: usize, target: Target) -> String {
        let part = match target {
            Target::Query => self.query,
            Target::Key => self.key,
            Target::Value => self.value,
            Target::Output => self.output,
            Target::MlpIn => self.mlp_in,
            Target::MlpOut => self.mlp_out,
        };
        format!("{}.{i}.{part}", self.layers)
    }

    /// The block and target of a Hugging Face module path such as
    /// `encoder.layer.0.attention.self.query` (the inverse of [`HfBlockNames::module`]).
    pub fn parse_module(&self, path: &str) -> Option<(usize, Target)> {
        let rest = path.strip_prefix(self.layers)?.strip_prefix('.')?;
        let i = rest.split_once('.')?.0.parse().ok()?;
        Target::ALL
            .into_iter()
            .find(|&t| self.module(i, t) == path)
            .map(|t| (i, t))
    }

    /// The checkpoint tensor of an encoder parameter `path` (as burn names it below the
    /// encoder: `blocks.{i}.attn.query.base.weight`), or `None` if it is not a block parameter.
    pub fn source(&self, path: &str) -> Option<Source> {
        let rest = path.strip_prefix("blocks.")?;
        let (i, rest) = rest.split_once('.')?;
        let i: usize = i.parse().ok()?;
        let prefix = format!("{}.{i}", self.layers);
        let linear = |target: Target, param: &str| {
            let layout = if param == "weight" {
                Layout::Transposed
            } else {
                Layout::AsIs
            };
            Some(Source::new(
                format!("{}.{param}", self.module(i, target)),
                layout,
            ))
        };
        let norm = |part: &str, param: &str| norm_source(&format!("{prefix}.{part}"), param);
        let scale =
            |part: Option<&str>| part.map(|s| Source::new(format!("{prefix}.{s}"), Layout::AsIs));
        match rest {
            "scale_attn" => return scale(self.scale_attn),
            "scale_mlp" => return scale(self.scale_mlp),
            _ => {}
        }
        let (module, param) = rest.rsplit_once('.')?;
        match module {
            "attn.query.base" => linear(Target::Query, param),
            "attn.key.base" => linear(Target::Key, param),
            "attn.value.base" => linear(Target::Value, param),
            "attn.output.base" => linear(Target::Output, param),
            "mlp_in.base" => linear(Target::MlpIn, param),
            "mlp_out.base" => linear(Target::MlpOut, param),
            "norm_attn" => norm(self.norm_attn, param),
            "norm_mlp" => norm(self.norm_mlp, param),
            _ => None,
        }
    }
}

/// The checkpoint tensor of a `LayerNorm` parameter (`gamma`/`beta`) of the module at `hf`.
pub fn norm_source(hf: &str, param: &str) -> Option<Source> {
    match param {
        "gamma" => Some(Source::new(format!("{hf}.weight"), Layout::AsIs)),
        "beta" => Some(Source::new(format!("{hf}.bias"), Layout::AsIs)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_block_parameters_map_to_hugging_face_keys() {
        let s = |p| BERT.source(p).unwrap();
        assert_eq!(
            s("blocks.3.attn.query.base.weight"),
            Source::new(
                "encoder.layer.3.attention.self.query.weight",
                Layout::Transposed
            )
        );
        assert_eq!(
            s("blocks.0.mlp_out.base.bias"),
            Source::new("encoder.layer.0.output.dense.bias", Layout::AsIs)
        );
        assert_eq!(
            s("blocks.11.norm_attn.gamma"),
            Source::new(
                "encoder.layer.11.attention.output.LayerNorm.weight",
                Layout::AsIs
            )
        );
        assert_eq!(BERT.source("blocks.0.scale_attn"), None);
        assert_eq!(BERT.source("blocks.0.attn.query.lora.a"), None);
    }

    #[test]
    fn dinov2_layer_scales_map() {
        assert_eq!(
            DINOV2.source("blocks.2.scale_mlp").unwrap(),
            Source::new("encoder.layer.2.layer_scale2.lambda1", Layout::AsIs)
        );
        assert_eq!(DINOV2.module(5, Target::MlpIn), "encoder.layer.5.mlp.fc1");
    }

    #[test]
    fn dinov2_adapters_name_the_current_modules_and_read_the_checkpoint_names_too() {
        let current = DINOV2.current_modules();
        assert_eq!(
            current.module(3, Target::Value),
            "encoder.layer.3.attention.v_proj"
        );
        assert_eq!(
            current.module(0, Target::Output),
            "encoder.layer.0.attention.o_proj"
        );
        for path in [
            "encoder.layer.3.attention.v_proj",
            "encoder.layer.3.attention.attention.value",
        ] {
            assert_eq!(DINOV2.parse_any_module(path), Some((3, Target::Value)));
        }
        assert_eq!(BERT.current_modules(), &BERT);
    }

    #[test]
    fn module_paths_parse_back_to_block_and_target() {
        for names in [BERT, DINOV2] {
            for t in Target::ALL {
                assert_eq!(names.parse_module(&names.module(7, t)), Some((7, t)));
            }
        }
        assert_eq!(
            BERT.parse_module("encoder.layer.0.attention.self.dense"),
            None
        );
        assert_eq!(BERT.parse_module("pooler.dense"), None);
        assert_eq!(BERT.parse_module("encoder.layer.x.output.dense"), None);
    }
}

/// The Hugging Face model families loramix reads, by `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfFamily {
    /// `bert`: BertModel (sentence encoders such as all-MiniLM-L6-v2).
    Bert,
    /// `dinov2`: Dinov2Model.
    Dinov2,
}

impl HfFamily {
    /// The family of the checkpoint in `dir`.
    pub fn of(dir: &std::path::Path) -> Result<Self, crate::CheckpointError> {
        #[derive(serde::Deserialize)]
        struct ModelType {
            #[serde(default)]
            model_type: String,
        }
        let path = dir.join("config.json");
        let found: ModelType = crate::checkpoint::read_config(&path)?;
        match found.model_type.as_str() {
            "bert" => Ok(Self::Bert),
            "dinov2" => Ok(Self::Dinov2),
            other => Err(crate::CheckpointError::Config {
                path,
                detail: format!(
                    "model_type `{other}`: loramix reads `bert` (BertModel) and `dinov2` (Dinov2Model) checkpoints"
                ),
            }),
        }
    }

    /// Its Hugging Face module names.
    pub fn names(self) -> &'static HfBlockNames {
        match self {
            Self::Bert => &BERT,
            Self::Dinov2 => &DINOV2,
        }
    }
}
