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
        let bytes = loramix_lora::files::read(path).map_err(|e| invalid(e.to_string()))?;
        let mut inner = Tokenizer::from_bytes(bytes).map_err(|e| invalid(e.to_string()))?;
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
            .encode(leading_words(text, self.max_len), true)
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

/// Characters kept of a text per token of `max_len` at most, not counting whitespace (BERT's
/// WordPiece turns a word of over 100 characters into one unknown token, so real tokens are
/// far shorter).
const MAX_CHARS_PER_TOKEN: usize = 128;

/// Whether BERT's pre-tokenizer splits words at `c`: whitespace its normaliser keeps (it
/// deletes control characters such as U+000B and U+0085 before splitting, but turns tab and
/// newlines into spaces).
fn splits_words(c: char) -> bool {
    c.is_whitespace() && (!c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

/// What of `text` to tokenize for its first `max_len` tokens, so that a huge text costs no
/// more than a short one. Words are tokenized independently, so the text can end after its
/// `max_len`-th word (one holding a letter, digit or ASCII punctuation mark gives at least one
/// token); and a run of whitespace separates words as one space does, so runs become one space.
/// Both leave the tokens unchanged. The one cut that can change them is the cost cap: at most
/// `MAX_CHARS_PER_TOKEN * (max_len + 1)` characters that are not whitespace are kept, which
/// only a text whose first `max_len` words are longer than that reaches.
fn leading_words(text: &str, max_len: usize) -> String {
    let most_chars = MAX_CHARS_PER_TOKEN.saturating_mul(max_len.saturating_add(1));
    let mut out = String::new();
    let (mut words, mut kept) = (0, 0);
    let (mut in_word, mut counted, mut space) = (false, false, false);
    for c in text.chars() {
        if splits_words(c) {
            if in_word && counted {
                words += 1;
                if words == max_len {
                    return out;
                }
            }
            (in_word, counted, space) = (false, false, true);
            continue;
        }
        if kept == most_chars {
            return out;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        out.push(c);
        kept += 1;
        (in_word, space) = (true, false);
        counted |= c.is_alphanumeric() || c.is_ascii_punctuation();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_cut_after_its_first_max_len_words_or_the_character_cap() {
        assert_eq!(leading_words("one two  three four", 2), "one two");
        // Whitespace runs are one space; words with nothing that makes a token do not count;
        // characters BERT's normaliser deletes (U+000B) do not split words.
        assert_eq!(
            leading_words(" a \u{7} \t\n b\u{b}c d", 2),
            "a \u{7} b\u{b}c"
        );
        assert_eq!(leading_words("short", 8), "short");
        let long = "x".repeat(10_000);
        assert_eq!(leading_words(&long, 2).len(), 3 * MAX_CHARS_PER_TOKEN);
        let multibyte = "é".repeat(1000);
        assert_eq!(
            leading_words(&multibyte, 1).chars().count(),
            2 * MAX_CHARS_PER_TOKEN
        );
        let spaced = format!("a{}b", " ".repeat(100_000));
        assert_eq!(leading_words(&spaced, 4), "a b");
    }
}
