//! A suite with its sources loaded and every task's examples decided and leak-checked.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{DataError, Result};
use crate::sampler::{Draw, ShotSampler};
use crate::suite::item::{load_key, source_key};
use crate::suite::near::{self, Partners};
use crate::suite::plan::{Plan, SourceItems, overlap, plan};
use crate::suite::{Role, Shift, Suite, SuiteItem, TaskSpec};
use crate::{ImageShape, LabelledDataset};
use loramix_rng::{derive_seed, example_seed};

/// A suite ready to hand out tasks: sources loaded once, splits fixed, leakage checked.
#[derive(Debug)]
pub struct LoadedSuite<I: SuiteItem> {
    suite: Suite<I>,
    sources: BTreeMap<String, SourceItems<I>>,
    plans: Vec<Plan>,
    /// Near copies across sources (those within one are dropped when it loads).
    partners: Partners,
}

/// One task's data: the training pool (k-shot sets are drawn from it with [`Task::shots`])
/// and the fixed test split (class-balanced, unless the data gave its own).
#[derive(Debug, Clone)]
pub struct Task<I> {
    pub name: String,
    pub role: Role,
    pub shift: Option<Shift>,
    pub train: LabelledDataset<I>,
    pub test: LabelledDataset<I>,
}

impl<I: SuiteItem> Suite<I> {
    /// Loads every source (fetched ones from under `data_dir`, the fetch step's `DEST`; users'
    /// data from the task's path), drops copies and near copies within each, decides every
    /// task's examples, and rejects the suite if a downstream task's examples, or near copies
    /// of them, are trained on upstream (unless the task says `drop_leaked`).
    pub fn load(self, data_dir: &Path) -> Result<LoadedSuite<I>> {
        let mut sources = BTreeMap::new();
        for (_, task) in self.tasks() {
            if let Entry::Vacant(slot) = sources.entry(load_key(task)) {
                let data = I::load(task, data_dir, self.image)?.ok_or_else(|| {
                    self.task_error(
                        &task.name,
                        format!("source {:?} is not {:?} data", task.source, I::MODALITY),
                    )
                })?;
                slot.insert(SourceItems::from(data));
            }
        }
        let partners = near::screen(&mut sources);
        let mut plans = Vec::new();
        for (role, task) in self.tasks() {
            let leaked = match role.is_transfer() && task.drop_leaked {
                true => leaked_into(&self, role, task, &plans, &partners),
                false => BTreeSet::new(),
            };
            plans.push(plan(&self, task, &sources[&load_key(task)], &leaked)?);
        }
        let loaded = LoadedSuite {
            suite: self,
            sources,
            plans,
            partners,
        };
        loaded.check_leakage()?;
        Ok(loaded)
    }
}

/// Positions in `task`'s source whose copies or near copies in another source are trained on by
/// the tasks of earlier roles than `role` (planned before it).
fn leaked_into<I: SuiteItem>(
    suite: &Suite<I>,
    role: Role,
    task: &TaskSpec<I>,
    plans: &[Plan],
    partners: &Partners,
) -> BTreeSet<usize> {
    let trained: BTreeSet<(String, usize)> = (suite.tasks().zip(plans))
        .filter(|((earlier, _), _)| *earlier < role)
        .flat_map(|((_, t), p)| p.train.iter().map(move |&(i, _)| (load_key(t), i)))
        .collect();
    (partners.get(&load_key(task)).into_iter().flatten())
        .filter(|(_, theirs)| theirs.iter().any(|e| trained.contains(e)))
        .map(|(&at, _)| at)
        .collect()
}

impl<I: SuiteItem> LoadedSuite<I> {
    pub fn suite(&self) -> &Suite<I> {
        &self.suite
    }

    /// Downstream tasks that left out copies of trained examples ([`TaskSpec::drop_leaked`]),
    /// with how many.
    pub fn leaked(&self) -> Vec<(&str, usize)> {
        (self.suite.tasks().zip(&self.plans))
            .filter(|(_, plan)| plan.leaked > 0)
            .map(|((_, task), plan)| (task.name.as_str(), plan.leaked))
            .collect()
    }

    /// Sources that held copies or near copies of an example (the first kept), with how many
    /// were dropped.
    pub fn duplicates(&self) -> Vec<(String, usize)> {
        (self.sources.iter())
            .filter(|(_, s)| s.duplicates > 0)
            .map(|(key, s)| (key.clone(), s.duplicates))
            .collect()
    }

    /// Sources that left out blank images, with how many.
    pub fn blank(&self) -> Vec<(String, usize)> {
        (self.sources.iter())
            .filter(|(_, s)| s.blank > 0)
            .map(|(key, s)| (key.clone(), s.blank))
            .collect()
    }

    /// Names of the tasks with their roles, pretraining first.
    pub fn task_names(&self) -> Vec<(Role, &str)> {
        self.suite
            .tasks()
            .map(|(r, t)| (r, t.name.as_str()))
            .collect()
    }

    /// The items of task `name`, transformed (each example with its own seed derived from the
    /// suite's split seed, the task and the example, so they are the same on every call).
    pub fn task(&self, name: &str) -> Result<Task<I>> {
        let (at, (role, spec)) = self
            .suite
            .tasks()
            .enumerate()
            .find(|(_, (_, t))| t.name == name)
            .ok_or_else(|| self.suite.task_error(name, "no such task"))?;
        let plan = &self.plans[at];
        let source = &self.sources[&load_key(spec)];
        let seed = derive_seed(self.suite.split_seed, &format!("transform/{name}"));
        let shape: Option<ImageShape> = self.suite.image;
        let items = |picks: &[(usize, usize)]| {
            let items = picks
                .iter()
                .map(|&(i, label)| {
                    let item = source.items[i].clone().fitted(source.shape, shape);
                    let mut item = item.transformed(&spec.transforms, shape, example_seed(seed, i));
                    item.set_label(label);
                    item
                })
                .collect();
            LabelledDataset::new(items, plan.classes.clone())
        };
        Ok(Task {
            name: name.to_owned(),
            role,
            shift: spec.shift,
            train: items(&plan.train),
            test: items(&plan.test),
        })
    }

    /// No downstream or tuning example (training pool or test split) may be one that a task of
    /// an earlier role trains on (pretraining, an upstream task, and for downstream tasks a
    /// tuning task, whose data choose the rates): not the same example of a shared source, not the same content
    /// anywhere (a copy in another source, a duplicate within one), and not a near copy of it
    /// in another source (near copies within a source were dropped when it loaded).
    fn check_leakage(&self) -> Result<()> {
        let tasks: Vec<(Role, &TaskSpec<I>, &Plan)> = self
            .suite
            .tasks()
            .zip(&self.plans)
            .map(|((r, t), p)| (r, t, p))
            .collect();
        let content = |spec: &TaskSpec<I>, picks: &[(usize, usize)]| -> BTreeSet<u64> {
            let items = &self.sources[&load_key(spec)].items;
            picks.iter().map(|&(i, _)| items[i].content_key()).collect()
        };
        // Each task's training content, hashed once: every later task is checked against it.
        let trained: Vec<BTreeSet<u64>> = (tasks.iter())
            .map(|(_, spec, plan)| content(spec, &plan.train))
            .collect();
        for (down_role, down, down_plan) in tasks.iter().filter(|(r, ..)| r.is_transfer()) {
            let used: BTreeSet<u64> = content(down, &down_plan.train)
                .union(&content(down, &down_plan.test))
                .copied()
                .collect();
            let earlier = (tasks.iter().zip(&trained)).filter(|((r, ..), _)| r < down_role);
            for ((role, up, up_plan), up_trained) in earlier {
                let same_examples = match source_key(*up) == source_key(*down) {
                    true => overlap(up_plan, down_plan),
                    false => 0,
                };
                let same_content = up_trained.intersection(&used).count();
                let overlap = same_examples.max(same_content);
                if overlap > 0 {
                    return Err(DataError::Leakage {
                        role: *role,
                        of_role: *down_role,
                        task: up.name.clone(),
                        downstream: down.name.clone(),
                        overlap,
                    });
                }
                self.check_near_copies((*down_role, down, down_plan), (*role, up, up_plan))?;
            }
        }
        Ok(())
    }

    /// Refuses the downstream or tuning task if any of its examples has a near copy in what `up` trains
    /// on from another source, naming how many and showing the first.
    fn check_near_copies(
        &self,
        (down_role, down, down_plan): (Role, &TaskSpec<I>, &Plan),
        (role, up, up_plan): (Role, &TaskSpec<I>, &Plan),
    ) -> Result<()> {
        let (down_key, up_key) = (load_key(down), load_key(up));
        let Some(partners) = self.partners.get(&down_key) else {
            return Ok(());
        };
        let trained: BTreeSet<usize> = up_plan.train.iter().map(|&(i, _)| i).collect();
        let used: BTreeSet<usize> = (down_plan.train.iter().chain(&down_plan.test))
            .map(|&(i, _)| i)
            .collect();
        let copies: Vec<(usize, usize)> = (used.into_iter())
            .filter_map(|d| {
                let theirs = partners.get(&d)?.iter();
                let (_, u) = theirs
                    .filter(|(key, _)| *key == up_key)
                    .find(|(_, u)| trained.contains(u))?;
                Some((d, *u))
            })
            .collect();
        let Some(&(d, u)) = copies.first() else {
            return Ok(());
        };
        let show = |key: &str, at: usize| {
            let preview = self.sources[key].items[at].preview();
            format!(
                "example {at} of `{key}`{}",
                preview.map(|p| format!(" {p}")).unwrap_or_default()
            )
        };
        Err(DataError::NearCopies {
            role,
            of_role: down_role,
            task: up.name.clone(),
            downstream: down.name.clone(),
            count: copies.len(),
            rule: I::NEAR_COPY_RULE,
            example: format!("{} and {}", show(&down_key, d), show(&up_key, u)),
        })
    }
}

impl<I: SuiteItem> Task<I> {
    /// A training set drawn from the training pool: exactly k per class, nested across k for
    /// one `seed`, never touching the test split.
    pub fn shots(&self, draw: Draw, seed: u64) -> Result<Vec<I>> {
        let sampler = self.sampler(seed);
        self.items(sampler.sample(draw))
    }

    /// A training set as [`Task::shots`] draws it, and a validation set of `per_class`
    /// examples of every class, disjoint from it and from the test split. The training set is
    /// the one `shots` draws wherever a class has `per_class` examples beyond it.
    pub fn shots_and_validation(
        &self,
        draw: Draw,
        per_class: usize,
        seed: u64,
    ) -> Result<(Vec<I>, Vec<I>)> {
        let (validation, rest) = self
            .sampler(seed)
            .split_validation(per_class)
            .map_err(|e| self.named(e))?;
        let train = self.items(rest.sample(draw))?;
        Ok((train, self.items(Ok(validation))?))
    }

    fn sampler(&self, seed: u64) -> ShotSampler {
        let labels: Vec<usize> = self.train.items.iter().map(|i| i.label()).collect();
        let seed = derive_seed(seed, &format!("shots/{}", self.name));
        ShotSampler::new(&labels, &self.train.classes, seed)
    }

    /// A too-few-examples error with the task's name.
    fn named(&self, e: DataError) -> DataError {
        match e {
            DataError::TooFewExamples {
                split,
                class,
                available,
                needed,
            } => DataError::TooFewExamples {
                split: format!("task `{}` {split}", self.name),
                class,
                available,
                needed,
            },
            other => other,
        }
    }

    /// The training pool's items at `picks`; none is an error.
    fn items(&self, picks: Result<Vec<usize>>) -> Result<Vec<I>> {
        let picks = picks.map_err(|e| self.named(e))?;
        if picks.is_empty() {
            return Err(DataError::EmptyTraining {
                task: self.name.clone(),
            });
        }
        Ok(picks
            .into_iter()
            .map(|i| self.train.items[i].clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use crate::ImageItem;
    use crate::suite::item::load_key;
    use crate::suite::{Source, Suite};

    /// Needs `bash datasets/fetch.sh` first: `cargo test --release -p loramix-data -- --ignored`.
    #[test]
    #[ignore]
    fn shipped_glyph_tasks_keep_each_font_family_on_one_side() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = root.join("experiments/suites/vision-shifts.toml");
        let loaded = (Suite::<ImageItem>::from_file(&file).unwrap())
            .load(&root.join("datasets/cache"))
            .unwrap();
        let glyphs = [Source::GlyphLetters, Source::GlyphStyles];
        let mut checked = 0;
        for ((_, spec), plan) in loaded.suite.tasks().zip(&loaded.plans) {
            let Some(groups) = &loaded.sources[&load_key(spec)].groups else {
                continue;
            };
            let families = |picks: &[(usize, usize)]| -> BTreeSet<usize> {
                picks.iter().map(|&(i, _)| groups[i]).collect()
            };
            let (train, test) = (families(&plan.train), families(&plan.test));
            println!(
                "{}: {} families train, {} test",
                spec.name,
                train.len(),
                test.len()
            );
            assert!(
                train.is_disjoint(&test),
                "{}: a family on both sides",
                spec.name
            );
            assert!(glyphs.contains(&spec.source) && test.len() >= 2);
            checked += 1;
        }
        assert_eq!(checked, 2);
    }
}
