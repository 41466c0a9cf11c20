//! The pre-registered analysis plan: the few primary tests a study's verdicts rest on, written
//! before the run. Holm runs within this family only, so its size, not the number of tables
//! the report prints, sets the bar; everything else the report computes is exploratory.

use crate::rows::Shot;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// DESIGN.md's few-shot range: 1 to ~10 shots per class.
pub(crate) const FEW_SHOT_MAX: usize = 10;

/// What a primary test asks of `a − b` (accuracy in points, paired on task, k and seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// One-sided: `a` beats `b`.
    Superiority,
    /// One-sided: `a` is not worse than `b` by the plan's margin or more.
    Noninferiority,
    /// TOST: `a − b` lies within ± the margin.
    Equivalence,
    /// Claim 3: does the `a − b` effect differ across shifts? One F test over the shifts.
    Interaction,
    /// Claim 4: method `a`'s learned weights rise with the modules' CKA (no `b`, no shots).
    Similarity,
}

impl TestKind {
    pub fn name(self) -> &'static str {
        match self {
            TestKind::Superiority => "superiority",
            TestKind::Noninferiority => "noninferiority",
            TestKind::Equivalence => "equivalence",
            TestKind::Interaction => "interaction",
            TestKind::Similarity => "similarity",
        }
    }
}

/// One primary hypothesis. The shots listed are averaged per (task, seed) before testing, so
/// a test over `[1, 5]` asks about the mean effect at k = 1 and 5 and stays one test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimaryTest {
    /// The claim of DESIGN.md it bears on, 1 to 4.
    pub claim: u8,
    pub test: TestKind,
    pub a: String,
    /// The method `a` is compared with; absent for a similarity test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<String>,
    /// Shots per class, numbers or `"full"`; empty for a similarity test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shots: Vec<Shot>,
}

/// The plan as an experiment file declares it (`[analysis]`, say):
///
/// ```toml
/// margin = 2.0
/// [[primary]]
/// claim = 1
/// test = "superiority"
/// a = "learned"
/// b = "lora"
/// shots = [1, 5]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisPlan {
    pub primary: Vec<PrimaryTest>,
    /// Claim 2's equivalence / non-inferiority margin in accuracy points. Our choice (the
    /// paper gives none); without one, "no significant difference" would reward noise.
    #[serde(default = "default_margin")]
    pub margin: f64,
}

fn default_margin() -> f64 {
    2.0
}

/// An empty plan: the report then judges no claim and calls every comparison exploratory.
impl Default for AnalysisPlan {
    fn default() -> Self {
        AnalysisPlan {
            primary: Vec::new(),
            margin: default_margin(),
        }
    }
}

/// Whether the plan a report uses is the one its run was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanStatus {
    /// The plan's hash was recorded with the run before the transfer stage started.
    RegisteredWithRun,
    /// A new analysis of old data: the run recorded another plan (its hash) or none.
    Reanalysis { registered_hash: Option<String> },
}

/// Unless the caller shows the plan was registered with the run, a report says it is not.
impl Default for PlanStatus {
    fn default() -> Self {
        PlanStatus::Reanalysis {
            registered_hash: None,
        }
    }
}

/// What is wrong with a plan's shape (method names are the caller's to check). Tests are
/// numbered from 1 in the order written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("the analysis plan has no primary test")]
    Empty,
    #[error("the analysis plan's margin must be a finite number of points above 0, not {0}")]
    Margin(f64),
    #[error("primary test {index}: {message}")]
    Test { index: usize, message: String },
    #[error("primary tests {first} and {second} are the same test")]
    Duplicate { first: usize, second: usize },
}

impl AnalysisPlan {
    /// Checks the shapes: a family to test, a usable margin, each test complete for its kind,
    /// no test twice (same kind, pair and set of shots).
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.primary.is_empty() {
            return Err(PlanError::Empty);
        }
        if !(self.margin.is_finite() && self.margin > 0.0) {
            return Err(PlanError::Margin(self.margin));
        }
        for (i, test) in self.primary.iter().enumerate() {
            test.check().map_err(|message| PlanError::Test {
                index: i + 1,
                message,
            })?;
            let same = self.primary[..i].iter().position(|t| t.key() == test.key());
            if let Some(first) = same {
                return Err(PlanError::Duplicate {
                    first: first + 1,
                    second: i + 1,
                });
            }
        }
        Ok(())
    }

    /// A small default family from the methods playing each part (4 to 5 tests):
    /// claim 1, learned − LoRA and uniform − LoRA superiority over the two smallest few-shot
    /// k (<= 10) of `shots`, pooled over shifts; claim 2, learned − LoRA non-inferiority at
    /// `full`; claim 3, the interaction of learned − LoRA with shift at claim 1's k; claim 4,
    /// learned weights against CKA. Tests missing a role or a shot are left out. Full
    /// fine-tuning's comparisons stay exploratory here, to keep the family small.
    pub fn default_for(roles: &ClaimRoles, shots: &[Shot]) -> AnalysisPlan {
        let mut few: Vec<Shot> = shots
            .iter()
            .copied()
            .filter(|s| matches!(s, Shot::K(k) if *k <= FEW_SHOT_MAX))
            .collect();
        few.sort();
        few.dedup();
        few.truncate(2);
        let full: Vec<Shot> = shots
            .iter()
            .copied()
            .filter(|s| *s == Shot::Full)
            .take(1)
            .collect();
        let test = |claim, kind, a: &Option<String>, b: Option<&Option<String>>, shots: &[Shot]| {
            let b = match b {
                Some(b) => Some(b.clone()?),
                None => None,
            };
            let test = PrimaryTest {
                claim,
                test: kind,
                a: a.clone()?,
                b,
                shots: shots.to_vec(),
            };
            (kind == TestKind::Similarity || !shots.is_empty()).then_some(test)
        };
        let (learned, uniform, lora) = (&roles.learned, &roles.uniform, &roles.lora);
        let primary = [
            test(1, TestKind::Superiority, learned, Some(lora), &few),
            test(1, TestKind::Superiority, uniform, Some(lora), &few),
            test(2, TestKind::Noninferiority, learned, Some(lora), &full),
            test(3, TestKind::Interaction, learned, Some(lora), &few),
            test(4, TestKind::Similarity, learned, None, &[]),
        ];
        AnalysisPlan {
            primary: primary.into_iter().flatten().collect(),
            margin: default_margin(),
        }
    }

    /// The canonical text the hash is taken over: a version line, the margin, then one line
    /// per test in the order written. Independent of TOML layout, comments and field order.
    pub fn canonical(&self) -> String {
        let mut text = format!("loramix analysis plan v1\nmargin {:?}\n", self.margin);
        for t in &self.primary {
            let shots: Vec<String> = t.shots.iter().map(Shot::to_string).collect();
            let _ = writeln!(
                text,
                "claim {} {} a {:?} b {:?} shots [{}]",
                t.claim,
                t.test.name(),
                t.a,
                t.b,
                shots.join(",")
            );
        }
        text
    }

    /// SHA-256 of [`AnalysisPlan::canonical`], in hex: what a run records before its transfer
    /// stage, and what a report compares with.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.canonical().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl PrimaryTest {
    /// Whether the test reads `method`'s cells, as `a` or as `b`.
    pub fn compares(&self, method: &str) -> bool {
        self.a == method || self.b.as_deref() == Some(method)
    }

    /// Whether the test reads `method`'s cells at `shot` (a test with no shots reads every shot).
    pub fn reads(&self, method: &str, shot: Shot) -> bool {
        (self.shots.is_empty() || self.shots.contains(&shot)) && self.compares(method)
    }

    /// What makes two tests the same: kind, pair and the set of shots.
    fn key(&self) -> (TestKind, &str, Option<&str>, Vec<Shot>) {
        let mut shots = self.shots.clone();
        shots.sort();
        (self.test, &self.a, self.b.as_deref(), shots)
    }

    fn check(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.claim) {
            return Err(format!("claim must be 1 to 4, not {}", self.claim));
        }
        if self.a.trim().is_empty() {
            return Err("`a` names no method".into());
        }
        if self.test == TestKind::Similarity {
            return match (self.claim, &self.b, self.shots.is_empty()) {
                (4, None, true) => Ok(()),
                (4, _, _) => Err("a similarity test takes `a` only (no `b`, no `shots`)".into()),
                _ => Err("a similarity test belongs to claim 4".into()),
            };
        }
        let Some(b) = &self.b else {
            return Err(format!("a {} test needs `b`", self.test.name()));
        };
        if b == &self.a {
            return Err(format!("`a` and `b` are both `{b}`"));
        }
        if self.shots.is_empty() {
            return Err("`shots` is empty".into());
        }
        let mut sorted = self.shots.clone();
        sorted.sort();
        match sorted.windows(2).find(|w| w[0] == w[1]) {
            Some(w) => Err(format!("shot {} is listed twice", w[0])),
            None => Ok(()),
        }
    }
}

/// Which method (by its name in the runs) plays each part in DESIGN.md's claims. The experiment
/// knows each method's kind and fills this in, so a renamed method is still judged; the
/// default is the names methods get when a config does not rename them (their kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRoles {
    pub uniform: Option<String>,
    pub learned: Option<String>,
    pub full: Option<String>,
    pub lora: Option<String>,
}

impl Default for ClaimRoles {
    fn default() -> Self {
        let name = |n: &str| Some(n.to_string());
        ClaimRoles {
            uniform: name("uniform"),
            learned: name("learned"),
            full: name("full"),
            lora: name("lora"),
        }
    }
}

impl ClaimRoles {
    /// The head-to-head pairs claims 1 and 2 rest on: each composition against full
    /// fine-tuning and LoRA, then learned against uniform; pairs missing a role are left out.
    pub fn comparisons(&self) -> Vec<(String, String)> {
        let (uniform, learned) = (&self.uniform, &self.learned);
        let (full, lora) = (&self.full, &self.lora);
        [
            (uniform, full),
            (uniform, lora),
            (learned, full),
            (learned, lora),
            (learned, uniform),
        ]
        .into_iter()
        .filter_map(|(a, b)| Some((a.clone()?, b.clone()?)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AnalysisPlan, String> {
        toml::from_str::<AnalysisPlan>(text).map_err(|e| e.to_string())
    }

    const PLAN: &str = r#"
        margin = 1.5
        [[primary]]
        claim = 1
        test = "superiority"
        a = "learned"
        b = "lora"
        shots = [1, 5]
        [[primary]]
        claim = 2
        test = "equivalence"
        a = "learned"
        b = "lora"
        shots = ["full"]
        [[primary]]
        claim = 4
        test = "similarity"
        a = "learned"
    "#;

    #[test]
    fn a_plan_reads_from_toml_and_validates() {
        let plan = parse(PLAN).unwrap();
        assert_eq!(plan.margin, 1.5);
        assert_eq!(plan.primary[0].shots, [Shot::K(1), Shot::K(5)]);
        assert_eq!(plan.primary[1].shots, [Shot::Full]);
        assert_eq!(plan.primary[2].b, None);
        plan.validate().unwrap();
        let plain = parse(
            "[[primary]]\nclaim = 1\ntest = \"superiority\"\na = \"x\"\nb = \"y\"\nshots = [1]",
        );
        assert_eq!(plain.unwrap().margin, 2.0, "the default margin");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused_when_read() {
        let typo = PLAN.replace("shots = [1, 5]", "shot = [1, 5]");
        assert!(parse(&typo).unwrap_err().contains("unknown field `shot`"));
        let kind = PLAN.replace("\"superiority\"", "\"better\"");
        assert!(
            parse(&kind)
                .unwrap_err()
                .contains("unknown variant `better`")
        );
        let top = format!("alpha = 0.01\n{PLAN}");
        assert!(parse(&top).unwrap_err().contains("unknown field `alpha`"));
    }

    fn error(edit: impl Fn(&mut AnalysisPlan)) -> String {
        let mut plan = parse(PLAN).unwrap();
        edit(&mut plan);
        plan.validate().unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_test_and_what_is_wrong() {
        assert_eq!(
            error(|p| p.primary.clear()),
            "the analysis plan has no primary test"
        );
        for margin in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                error(|p| p.margin = margin).contains("margin must be"),
                "{margin}"
            );
        }
        type Edit = fn(&mut AnalysisPlan);
        let cases: [(Edit, &str); 7] = [
            (
                |p| p.primary[0].claim = 5,
                "primary test 1: claim must be 1 to 4, not 5",
            ),
            (
                |p| p.primary[0].b = None,
                "primary test 1: a superiority test needs `b`",
            ),
            (
                |p| p.primary[0].b = Some("learned".into()),
                "`a` and `b` are both `learned`",
            ),
            (
                |p| p.primary[1].shots.clear(),
                "primary test 2: `shots` is empty",
            ),
            (
                |p| p.primary[0].shots.push(Shot::K(1)),
                "shot 1 is listed twice",
            ),
            (|p| p.primary[2].shots.push(Shot::K(1)), "takes `a` only"),
            (
                |p| p.primary[2].claim = 1,
                "a similarity test belongs to claim 4",
            ),
        ];
        for (edit, message) in cases {
            let got = error(edit);
            assert!(got.contains(message), "{got} lacks {message}");
        }
        let duplicate = error(|p| {
            let mut again = p.primary[0].clone();
            again.shots.reverse();
            p.primary.push(again);
        });
        assert_eq!(duplicate, "primary tests 1 and 4 are the same test");
    }

    #[test]
    fn the_hash_is_stable_and_follows_every_change() {
        let plan = parse(PLAN).unwrap();
        // Layout, comments and key order do not matter; the content does.
        let relaid = parse(&format!(
            "# registered\n{}",
            PLAN.replace("margin = 1.5", "margin = 1.50")
        ));
        assert_eq!(relaid.unwrap().hash(), plan.hash());
        assert_eq!(plan.hash().len(), 64);
        // Pinned: a change to the canonical text would orphan every recorded hash.
        assert_eq!(
            plan.hash(),
            "d81ed7f9fdc19e9ec7fd5ab5dff27881cbc022aee1e8255fca5c2e649cba6f91"
        );
        let mut changes: Vec<AnalysisPlan> = Vec::new();
        for edit in [
            |p: &mut AnalysisPlan| p.margin = 2.0,
            |p: &mut AnalysisPlan| p.primary[0].shots = vec![Shot::K(1)],
            |p: &mut AnalysisPlan| p.primary[0].b = Some("full".into()),
            |p: &mut AnalysisPlan| p.primary[1].test = TestKind::Noninferiority,
            |p: &mut AnalysisPlan| p.primary[1].claim = 3,
            |p: &mut AnalysisPlan| p.primary.swap(0, 1),
        ] {
            let mut changed = plan.clone();
            edit(&mut changed);
            changes.push(changed);
        }
        let mut hashes: Vec<String> = changes.iter().map(AnalysisPlan::hash).collect();
        hashes.push(plan.hash());
        let count = hashes.len();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), count, "every change gives another hash");
    }

    #[test]
    fn the_default_family_follows_the_roles_and_the_shots() {
        let shots = [Shot::Full, Shot::K(20), Shot::K(5), Shot::K(1), Shot::K(2)];
        let plan = AnalysisPlan::default_for(&ClaimRoles::default(), &shots);
        plan.validate().unwrap();
        let summary: Vec<String> = plan
            .primary
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {:?} {:?}",
                    t.claim,
                    t.test.name(),
                    t.a,
                    t.b,
                    t.shots
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "1 superiority learned Some(\"lora\") [K(1), K(2)]",
                "1 superiority uniform Some(\"lora\") [K(1), K(2)]",
                "2 noninferiority learned Some(\"lora\") [Full]",
                "3 interaction learned Some(\"lora\") [K(1), K(2)]",
                "4 similarity learned None []",
            ]
        );
        // No LoRA, no full shot: only the tests that can be written.
        let roles = ClaimRoles {
            lora: None,
            ..ClaimRoles::default()
        };
        let plan = AnalysisPlan::default_for(&roles, &[Shot::K(1)]);
        assert_eq!(plan.primary.len(), 1);
        assert_eq!(plan.primary[0].test, TestKind::Similarity);
    }
}
