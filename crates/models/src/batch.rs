use std::ops::Range;

use burn::tensor::backend::Backend;
use burn::tensor::{BasicOps, Int, Tensor, TensorData, TensorKind};

/// A model input that can be cut along its first (batch) dimension: what a data-parallel step
/// hands to each of its threads.
pub trait Batch: Clone + Send + Sync {
    /// Examples in the batch.
    fn batch_len(&self) -> usize;

    /// Examples `rows` of the batch.
    fn rows(&self, rows: Range<usize>) -> Self;

    /// Examples `index` of the batch, in that order: a minibatch drawn from a training set
    /// held as one batch.
    fn select_rows(&self, index: &[i64]) -> Self;
}

impl<B: Backend, const D: usize, K> Batch for Tensor<B, D, K>
where
    K: TensorKind<B> + BasicOps<B>,
    Tensor<B, D, K>: Send + Sync,
{
    fn batch_len(&self) -> usize {
        self.dims()[0]
    }

    fn rows(&self, rows: Range<usize>) -> Self {
        self.clone().narrow(0, rows.start, rows.len())
    }

    fn select_rows(&self, index: &[i64]) -> Self {
        let data = TensorData::new(index.to_vec(), [index.len()]);
        self.clone()
            .select(0, Tensor::<B, 1, Int>::from_data(data, &self.device()))
    }
}

/// Fewest tokens (rows x tokens per row) a part is given: smaller parts cost more in
/// per-operation overhead and thread start-up than their thread gains. Measured (BENCHMARKS.md):
/// 8 rows of the vision sweep's 17-token model, 2 rows of the 64-token text model and of the
/// 50-token reference ViT are each worth a thread; 4 rows of 17 tokens are not.
pub const MIN_PART_TOKENS: usize = 128;

/// Parts a batch of `len` rows of `tokens` tokens each is cut into when `parts` are asked: at
/// most one per [`MIN_PART_TOKENS`] tokens, at least one.
pub fn parts_for(len: usize, tokens: usize, parts: usize) -> usize {
    let rows_per_part = MIN_PART_TOKENS.div_ceil(tokens.max(1));
    parts.min(len / rows_per_part).max(1)
}

/// `len` examples cut into at most `parts` contiguous ranges of near-equal size, in order (the
/// first ones one longer when `len` does not divide), none empty.
pub fn split_rows(len: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    let (base, extra) = (len / parts, len % parts);
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let end = start + base + usize::from(i < extra);
            let range = start..end;
            start = end;
            range
        })
        .filter(|r| !r.is_empty())
        .collect()
}

/// `f(state(part), part, rows, input rows)` for each range of [`split_rows`]`(len, parts)`, each
/// on its own thread, results in part order; `state` runs on the calling thread (a model clone, say, so the model itself need not
/// be `Sync`).
///
/// burn's CPU backends parallelise only large operations, so one small-model forward pass keeps
/// about one core busy; threads over parts of the batch use the others (and, measured on 2 cores,
/// more threads than cores fill the gaps where one of them waits).
pub fn in_parts<I: Batch, S: Send, T: Send>(
    input: &I,
    parts: usize,
    mut state: impl FnMut(usize) -> S,
    f: impl Fn(S, usize, Range<usize>, I) -> T + Sync,
) -> Vec<T> {
    let len = input.batch_len();
    let ranges = split_rows(len, parts);
    if ranges.len() <= 1 {
        return vec![f(state(0), 0, 0..len, input.clone())];
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = ranges
            .into_iter()
            .enumerate()
            .map(|(i, rows)| {
                let (s, part) = (state(i), input.rows(rows.clone()));
                scope.spawn(move || f(s, i, rows, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::{parts_for, split_rows};

    #[test]
    fn split_rows_covers_every_row_once_in_order() {
        assert_eq!(split_rows(64, 2), vec![0..32, 32..64]);
        assert_eq!(split_rows(5, 2), vec![0..3, 3..5]);
        assert_eq!(split_rows(1, 4), vec![0..1]);
        assert_eq!(split_rows(7, 1), vec![0..7]);
        assert!(split_rows(0, 2).is_empty());
    }

    #[test]
    fn parts_have_at_least_128_tokens() {
        // 17 tokens a row: 8 rows a part.
        assert_eq!(parts_for(64, 17, 8), 8);
        assert_eq!(parts_for(32, 17, 8), 4);
        assert_eq!(parts_for(15, 17, 8), 1);
        // 64 tokens a row: 2 rows a part; 50: 3.
        assert_eq!(parts_for(16, 64, 8), 8);
        assert_eq!(parts_for(16, 50, 8), 5);
        assert_eq!(parts_for(0, 64, 8), 1);
        assert_eq!(parts_for(640, 64, 1), 1);
        assert_eq!(parts_for(8, 1000, 8), 8);
    }
}
