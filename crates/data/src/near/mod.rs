//! Near-copy screening: pairs of examples that are the same content with small changes (a word
//! changed, a few pixels edited), which an exact hash misses. Each modality fingerprints its
//! examples, puts them in buckets by parts of the fingerprint ([`candidates`]), and keeps the
//! candidate pairs its own measure confirms.

pub(crate) mod image;
pub(crate) mod text;

/// Pairs `(i, j)`, `i < j`, of examples that share a bucket in at least one band:
/// `keys(item, band)` is the bucket of `item` in `band`, `None` for an item that takes no part.
/// Sorted and without repeats.
pub(crate) fn candidates(
    items: usize,
    bands: usize,
    keys: impl Fn(usize, usize) -> Option<u64> + Sync,
) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = parallel_map(bands, |band| {
        let mut bucket: Vec<(u64, u32)> = (0..items)
            .filter_map(|i| keys(i, band).map(|k| (k, i as u32)))
            .collect();
        bucket.sort_unstable();
        let mut pairs = Vec::new();
        for run in bucket.chunk_by(|a, b| a.0 == b.0) {
            for (at, &(_, i)) in run.iter().enumerate() {
                pairs.extend(run[at + 1..].iter().map(|&(_, j)| (i, j)));
            }
        }
        pairs
    })
    .concat();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// SplitMix64's finaliser: spreads a hash's bits so that any slice of them is uniform.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `work(i)` for every `i < n`, spread over the machine's cores (a suite loads tens of
/// thousands of examples every time it is read).
pub(crate) fn parallel_map<T: Send>(n: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let work = &work;
                scope.spawn(move || {
                    (start..(start + chunk).min(n))
                        .map(work)
                        .collect::<Vec<T>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a fingerprinting thread panicked"))
            .collect()
    })
}
