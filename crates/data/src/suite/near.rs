//! The near-copy screen of a suite's sources, run once when it loads: near copies within a
//! source are dropped there (the first kept, as exact copies are), so no task's split and no
//! pair of tasks sharing the source can hold both; near copies across sources are kept for the
//! leakage check, which refuses a downstream example that is one of a trained example.

use std::collections::BTreeMap;

use crate::suite::SuiteItem;
use crate::suite::plan::SourceItems;

/// An example of a loaded source: the source's key and the example's position in it.
pub(crate) type Example = (String, usize);

/// For each example (source key, position) that has near copies in other sources, those.
pub(crate) type Partners = BTreeMap<String, BTreeMap<usize, Vec<Example>>>;

/// Finds the near copies among all examples of all `sources` in one pass, drops those within
/// a source, and returns those across sources (by the positions left after the drops).
pub(crate) fn screen<I: SuiteItem>(sources: &mut BTreeMap<String, SourceItems<I>>) -> Partners {
    let keys: Vec<String> = sources.keys().cloned().collect();
    let owners: Vec<(usize, usize)> = (sources.values().enumerate())
        .flat_map(|(s, source)| (0..source.items.len()).map(move |p| (s, p)))
        .collect();
    let pairs = {
        let items: Vec<&I> = sources.values().flat_map(|s| &s.items).collect();
        I::near_copies(&items)
    };
    let mut within = vec![Vec::new(); keys.len()];
    let mut across = Vec::new();
    for (a, b) in pairs {
        let ((sa, pa), (sb, pb)) = (owners[a], owners[b]);
        match sa == sb {
            true => within[sa].push((pa, pb)),
            false => across.push((owners[a], owners[b])),
        }
    }
    let moved: Vec<Vec<Option<usize>>> = (sources.values_mut().zip(within))
        .map(|(source, pairs)| source.drop_near_copies(&pairs))
        .collect();
    let mut partners = Partners::new();
    for ((sa, pa), (sb, pb)) in across {
        if let (Some(a), Some(b)) = (moved[sa][pa], moved[sb][pb]) {
            for ((s, p), other) in [((sa, a), (sb, b)), ((sb, b), (sa, a))] {
                (partners.entry(keys[s].clone()).or_default().entry(p))
                    .or_default()
                    .push((keys[other.0].clone(), other.1));
            }
        }
    }
    partners
}
