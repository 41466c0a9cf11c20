use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationParams};

use crate::checkpoint::CheckpointError;

/// A Hugging Face `tokenizer.json` (WordPiece for BERT models), read offline.
///
/// Whatever padding the file turns on is switched off (a batch is padded to its longest text,
/// not to a fixed length, or to the next multiple of [`with_pad_to_multiple_of`]), and texts
/// are truncated to `max_len` tokens with the closing special token kept.
///
/// [`with_pad_to_multiple_of`]: Self::with_pad_to_multiple_of
#[derive(Debug, Clone)]
pub struct WordPieceTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    /// Longest sequence, special tokens included.
    pub max_len: usize,
    /// The id that padding uses (the model's `pad_token_id`).
    pub pad_id: i64,
    /// A batch's length is rounded up to a multiple of this (at most `max_len`).
    pad_to_multiple_of: usize,
}

impl WordPieceTokenizer {
    pub fn from_file(path: &Path, max_len: usize, pad_id: i64) -> Result<Self, CheckpointError> {
        let invalid = |detail: String| CheckpointError::Config {
            path: path.to_path_buf(),
            detail,
        };
        if max_len < 2 {
            return Err(invalid(format!(
                "max_len {max_len} leaves no room for the special tokens"
            )));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| invalid(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            max_len,
            pad_id,
            pad_to_multiple_of: 1,
        })
    }

    /// Pads each batch to a multiple of `multiple` tokens (capped at `max_len`), as Hugging
    /// Face's `pad_to_multiple_of` does: a GPU backend compiles kernels for every new input
    /// shape, so a few length buckets instead of one shape per longest text save compilation
    /// (padding is masked, so the features do not change).
    pub fn with_pad_to_multiple_of(self, multiple: usize) -> Self {
        Self {
            pad_to_multiple_of: multiple.max(1),
            ..self
        }
    }

    /// Token ids of `text`, special tokens included, unpadded.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, CheckpointError> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| CheckpointError::Config {
                path: self.path.clone(),
                detail: format!("cannot tokenize {text:?}: {e}"),
            })?;
        Ok(encoding.get_ids().iter().map(|&id| id as i64).collect())
    }

    /// A batch `[texts, len]` of token ids, padded with `pad_id`: `len` is the longest text's,
    /// rounded up to the padding multiple (at most `max_len`).
    pub fn batch<B: Backend, S: AsRef<str>>(
        &self,
        texts: &[S],
        device: &B::Device,
    ) -> Result<Tensor<B, 2, Int>, CheckpointError> {
        let encoded = texts
            .iter()
            .map(|t| self.encode(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let longest = encoded.iter().map(Vec::len).max().unwrap_or(0).max(1);
        // Not below `longest`: texts were truncated to `max_len`.
        let len = longest
            .next_multiple_of(self.pad_to_multiple_of)
            .min(self.max_len);
        let mut ids = Vec::with_capacity(texts.len() * len);
        for mut row in encoded {
            row.resize(len, self.pad_id);
            ids.extend(row);
        }
        Ok(Tensor::from_data(
            TensorData::new(ids, [texts.len(), len]),
            device,
        ))
    }
}
