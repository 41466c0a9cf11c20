//! The "Claims" section: one verdict per claim of DESIGN.md, derived from the Holm-corrected
//! tests of [`Family`] and the permutation test of weights against similarity. Nothing here
//! states a verdict the numbers do not give.

use crate::aggregate;
use crate::family::{ALPHA, Family, Scope, Test};
use crate::rows::{ResultRow, Shift, Shot};
use crate::stats::{Estimate, RhoTest, holm, median, rho_permutation};
use crate::{ClaimRoles, ReportInputs};
use std::fmt::Write;

/// DESIGN.md's few-shot range: 1 to ~10 shots per class.
const FEW_SHOT_MAX: usize = 10;

/// Claim 2's "comparable": the 95% t interval of learned minus LoRA at full shot must exclude
/// a deficit larger than this many points (a non-inferiority margin). Our choice; the paper
/// gives none. Without a margin, "no significant difference" would reward noisy data.
const MARGIN_PP: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Supported,
    NotSupported,
    Mixed,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::Mixed => "mixed",
        }
    }

    /// Supported when every part is, not supported when none is, mixed otherwise.
    fn of(parts: impl IntoIterator<Item = bool>) -> Option<Verdict> {
        let parts: Vec<bool> = parts.into_iter().collect();
        let held = parts.iter().filter(|&&p| p).count();
        match (parts.len(), held) {
            (0, _) => None,
            (n, h) if h == n => Some(Verdict::Supported),
            (_, 0) => Some(Verdict::NotSupported),
            _ => Some(Verdict::Mixed),
        }
    }
}

/// A verdict and the numbers behind it; `None` verdict: the inputs cannot test the claim.
struct Judgement {
    verdict: Option<Verdict>,
    evidence: String,
    details: Vec<String>,
}

impl Judgement {
    fn untested() -> Judgement {
        Judgement {
            verdict: None,
            evidence: String::new(),
            details: Vec::new(),
        }
    }

    fn write(&self, md: &mut String, item: &str, claim: &str) {
        let _ = match self.verdict {
            None => writeln!(md, "{item} {claim}: **not tested here**."),
            Some(v) => writeln!(md, "{item} {claim}: **{}**: {}.", v.text(), self.evidence),
        };
        for d in &self.details {
            let _ = writeln!(md, "   - {d}");
        }
    }
}

/// `+2.1 [-0.3, +4.4]`: a difference in points with its 95% interval.
pub(crate) fn difference(e: &Estimate) -> String {
    match e.interval {
        Some((low, high)) => format!("{:+.1} [{low:+.1}, {high:+.1}]", e.mean),
        None => format!("{:+.1} (single run)", e.mean),
    }
}

pub(crate) fn p_value(p: f64) -> String {
    match p < 0.001 {
        true => "<0.001".into(),
        false => format!("{p:.3}"),
    }
}

/// `k=1: +2.1 [-0.3, +4.4], Holm p 0.410` with the test's own t interval, bold when
/// significant.
fn test_text(t: &Test) -> String {
    let text = match (t.t, t.holm) {
        (Some(test), Some(holm)) => format!(
            "k={}: {}, Holm p {}",
            t.k,
            difference(&test.estimate),
            p_value(holm)
        ),
        _ => format!("k={}: {}, untestable", t.k, difference(&t.estimate)),
    };
    match t.significant() {
        true => format!("**{text}**"),
        false => text,
    }
}

fn tasks_in(results: &[ResultRow], scope: Scope) -> usize {
    aggregate::first_appearance(
        results
            .iter()
            .filter(|r| scope.keeps(r))
            .map(|r| r.task.as_str()),
    )
    .len()
}

/// Claim 1 within `scope`: every composition above every baseline at every few-shot k.
fn few_shot(roles: &ClaimRoles, family: &Family, scope: Scope) -> Judgement {
    let compositions = [&roles.uniform, &roles.learned].map(Option::as_deref);
    let baselines = [&roles.full, &roles.lora].map(Option::as_deref);
    let claim_pair = |t: &&Test| {
        compositions.contains(&Some(t.a.as_str())) && baselines.contains(&Some(t.b.as_str()))
    };
    let tests: Vec<&Test> = family
        .tests
        .iter()
        .filter(|t| t.scope == scope && matches!(t.k, Shot::K(k) if k <= FEW_SHOT_MAX))
        .filter(claim_pair)
        .collect();
    let Some(verdict) = Verdict::of(
        tests
            .iter()
            .map(|t| t.significant() && t.estimate.mean > 0.0),
    ) else {
        return Judgement::untested();
    };
    let count = |sign: f64| {
        tests
            .iter()
            .filter(|t| t.significant() && t.estimate.mean * sign > 0.0)
            .count()
    };
    let (above, below) = (count(1.0), count(-1.0));
    let details = family
        .pairs
        .iter()
        .filter_map(|(a, b)| {
            let cells: Vec<String> = tests
                .iter()
                .filter(|t| &t.a == a && &t.b == b)
                .map(|t| test_text(t))
                .collect();
            (!cells.is_empty()).then(|| format!("`{a} − {b}`: {}", cells.join("; ")))
        })
        .collect();
    let mut missing = Vec::new();
    for (a, a_kind) in compositions.iter().zip(["uniform", "learned"]) {
        for (b, b_kind) in baselines.iter().zip(["full", "lora"]) {
            let tested =
                (tests.iter()).any(|t| Some(t.a.as_str()) == *a && Some(t.b.as_str()) == *b);
            if !tested {
                missing.push(format!(
                    "`{} − {}`",
                    a.unwrap_or(a_kind),
                    b.unwrap_or(b_kind)
                ));
            }
        }
    }
    let mut evidence = format!(
        "{above} of {} differences significantly above 0 after Holm, {below} significantly below",
        tests.len()
    );
    if !missing.is_empty() {
        let _ = write!(evidence, "; not tested: {}", missing.join(", "));
    }
    Judgement {
        verdict: Some(verdict),
        evidence,
        details,
    }
}

/// Claim 2 within `scope`: the t interval of learned minus LoRA at full shot stays above
/// `-MARGIN_PP`.
fn full_shot(roles: &ClaimRoles, family: &Family, scope: Scope) -> Judgement {
    let (Some(learned), Some(lora)) = (&roles.learned, &roles.lora) else {
        return Judgement::untested();
    };
    let Some((test, low)) = family
        .get(scope, learned, lora, Shot::Full)
        .and_then(|t| Some((t, t.t?.estimate.interval?.0)))
    else {
        return Judgement::untested();
    };
    let comparable = low > -MARGIN_PP;
    let how = match comparable {
        true => format!("the interval excludes a deficit of more than {MARGIN_PP} points"),
        false => format!("the interval reaches below -{MARGIN_PP} points"),
    };
    Judgement {
        verdict: Verdict::of([comparable]),
        evidence: format!(
            "`{learned} − {lora}` over {}, {}; {how}",
            test.units.text(),
            test_text(test)
        ),
        details: Vec::new(),
    }
}

/// Median trainable parameters of `method`, for claim 2's "far fewer".
fn parameters(results: &[ResultRow], method: &str) -> Option<f64> {
    let params: Vec<f64> = results
        .iter()
        .filter(|r| r.method == method)
        .map(|r| r.trainable_params as f64)
        .collect();
    median(&params)
}

/// Claim 3: claims 1 and 2 within each shift; a shift holds when each of them that it can
/// test is supported.
fn across_shifts(inputs: &ReportInputs, family: &Family) -> Judgement {
    let mut holds = Vec::new();
    let mut details = Vec::new();
    let roles = &inputs.roles;
    for &scope in family.scopes.iter().filter(|s| **s != Scope::All) {
        let (one, two) = (
            few_shot(roles, family, scope),
            full_shot(roles, family, scope),
        );
        let mut parts = Vec::new();
        if let Some(v) = one.verdict {
            parts.push((v, format!("claim 1 {} ({})", v.text(), one.evidence)));
        }
        if let Some(v) = two.verdict {
            parts.push((v, format!("claim 2 {} ({})", v.text(), two.evidence)));
        }
        if parts.is_empty() {
            continue;
        }
        holds.push(parts.iter().all(|(v, _)| *v == Verdict::Supported));
        let note = match tasks_in(&inputs.results, scope) {
            1 => "1 task: tested over its seeds, which says nothing about other tasks".into(),
            n => format!("{n} tasks"),
        };
        let texts: Vec<&str> = parts.iter().map(|(_, t)| t.as_str()).collect();
        details.push(format!("{} ({note}): {}", scope.name(), texts.join("; ")));
    }
    let Some(verdict) = Verdict::of(holds.iter().copied()) else {
        return Judgement::untested();
    };
    let absent: Vec<&str> = Shift::ALL
        .iter()
        .filter(|s| !family.scopes.contains(&Scope::Shift(**s)))
        .map(|s| s.name())
        .collect();
    let mut evidence = format!(
        "claims 1 and 2 both supported in {} of {} shift(s)",
        holds.iter().filter(|&&h| h).count(),
        holds.len()
    );
    if !absent.is_empty() {
        let _ = write!(evidence, "; no runs of {} shift", absent.join(" or "));
    }
    Judgement {
        verdict: Some(verdict),
        evidence,
        details,
    }
}

/// Learned against uniform weights at every k, all tasks pooled.
fn learned_vs_uniform(roles: &ClaimRoles, family: &Family) -> Judgement {
    let (Some(learned), Some(uniform)) = (&roles.learned, &roles.uniform) else {
        return Judgement::untested();
    };
    let tests: Vec<&Test> = family
        .tests
        .iter()
        .filter(|t| t.scope == Scope::All && &t.a == learned && &t.b == uniform)
        .collect();
    let Some(verdict) = Verdict::of(
        tests
            .iter()
            .map(|t| t.significant() && t.estimate.mean > 0.0),
    ) else {
        return Judgement::untested();
    };
    let above = tests
        .iter()
        .filter(|t| t.significant() && t.estimate.mean > 0.0)
        .count();
    let cells: Vec<String> = tests.iter().map(|t| test_text(t)).collect();
    Judgement {
        verdict: Some(verdict),
        evidence: format!(
            "{above} of {} k values significantly above 0 after Holm",
            tests.len()
        ),
        details: vec![format!("`{learned} − {uniform}`: {}", cells.join("; "))],
    }
}

/// The weight-vs-similarity test of each method with learned weights and CKA values, and its
/// p adjusted by Holm over those methods.
pub(crate) struct WeightTest {
    pub method: String,
    pub test: RhoTest,
    pub holm: f64,
}

pub(crate) fn weight_tests(inputs: &ReportInputs) -> Vec<WeightTest> {
    let methods = aggregate::first_appearance(inputs.weights.iter().map(|w| w.method.as_str()));
    let tested: Vec<(String, RhoTest)> = methods
        .into_iter()
        .filter_map(|method| {
            let tasks: Vec<(Vec<f64>, Vec<f64>)> = aggregate::first_appearance(
                inputs
                    .weights
                    .iter()
                    .filter(|w| w.method == method)
                    .map(|w| w.task.as_str()),
            )
            .iter()
            .map(|task| {
                aggregate::similarity_pairs(&inputs.similarity, &inputs.weights, task, &method)
                    .iter()
                    .map(|p| (p.cka, p.weight))
                    .unzip()
            })
            .collect();
            rho_permutation(&tasks).map(|t| (method, t))
        })
        .collect();
    let adjusted = holm(&tested.iter().map(|(_, t)| t.p).collect::<Vec<f64>>());
    tested
        .into_iter()
        .zip(adjusted)
        .map(|((method, test), holm)| WeightTest { method, test, holm })
        .collect()
}

/// Claim 4: each method's weights rise with CKA, significantly after Holm.
fn similarity(tests: &[WeightTest]) -> Judgement {
    let Some(verdict) = Verdict::of(tests.iter().map(|t| t.test.mean > 0.0 && t.holm < ALPHA))
    else {
        return Judgement::untested();
    };
    let parts: Vec<String> = tests
        .iter()
        .map(|t| {
            format!(
                "`{}` mean rho {:+.2} over {} task(s), permutation p {}, Holm p {}",
                t.method,
                t.test.mean,
                t.test.tasks,
                p_value(t.test.p),
                p_value(t.holm)
            )
        })
        .collect();
    Judgement {
        verdict: Some(verdict),
        evidence: parts.join("; "),
        details: Vec::new(),
    }
}

/// `uniform composition = `mix`, ...`: which method plays each part.
fn roles_text(roles: &ClaimRoles) -> String {
    let parts = [
        ("uniform composition", &roles.uniform),
        ("learned composition", &roles.learned),
        ("full fine-tuning", &roles.full),
        ("LoRA", &roles.lora),
    ];
    let named: Vec<String> = parts
        .iter()
        .map(|(part, name)| match name {
            Some(name) => format!("{part} `{name}`"),
            None => format!("{part} (none)"),
        })
        .collect();
    named.join(", ")
}

/// Writes `## Claims`.
pub(crate) fn write(
    md: &mut String,
    inputs: &ReportInputs,
    family: &Family,
    weight_tests: &[WeightTest],
) {
    md.push_str("## Claims\n\n");
    let _ = writeln!(
        md,
        "DESIGN.md's claims, each judged from the numbers below. A difference is the first \
         method's accuracy minus the second's in points, paired on (task, k, seed), then \
         averaged per task; it is tested by a paired t over those task means (the tasks are \
         the independent units; over seeds where a scope has one task), and shown with that \
         test's 95% t interval. Significant (**bold**): Holm-adjusted p < {ALPHA} over all {} \
         head-to-head tests of this report. The methods judged: {}; a claim without its \
         comparison reads \"not tested here\".\n",
        family.size(),
        roles_text(&inputs.roles)
    );
    let roles = &inputs.roles;
    few_shot(roles, family, Scope::All).write(
        md,
        "1.",
        "**Few-shot (k <= 10): uniform and learned composition beat full fine-tuning and LoRA** \
         (all tasks pooled)",
    );
    let mut claim2 = full_shot(roles, family, Scope::All);
    if let (Some(_), Some(learned), Some(lora)) = (claim2.verdict, &roles.learned, &roles.lora) {
        let sizes = parameters(&inputs.results, learned).zip(parameters(&inputs.results, lora));
        if let Some((learned_size, lora_size)) = sizes {
            let _ = write!(
                claim2.evidence,
                " (trainable parameters, median: `{learned}` {learned_size:.0}, `{lora}` \
                 {lora_size:.0})"
            );
        }
    }
    claim2.write(
        md,
        "2.",
        &format!(
            "**Full shot: learned composition comparable to LoRA** (not worse by more than \
             {MARGIN_PP} points; all tasks pooled)"
        ),
    );
    across_shifts(inputs, family).write(
        md,
        "3.",
        "**This holds across label, covariate and task shift** (claims 1 and 2 within each shift)",
    );
    similarity(weight_tests).write(
        md,
        "4.",
        "**Learned weights favour upstream modules similar to the downstream task** (Spearman \
         rho of mean weight vs CKA, averaged over tasks; CKA shuffled within tasks for p)",
    );
    learned_vs_uniform(roles, family).write(
        md,
        "-",
        "Also tested, not a claim of DESIGN.md: **learned weights beat uniform ones** (every k, \
         all tasks pooled)",
    );
    md.push_str(
        "\nTests over task means carry the sampling of each task's fixed test split (each \
         mean carries its split's error, and their spread includes it); a test over the seeds \
         of one task does not. With few tasks per shift, an interval describes these tasks \
         more than tasks in general.\n\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight_test(method: &str, mean: f64, holm: f64) -> WeightTest {
        WeightTest {
            method: method.into(),
            test: RhoTest {
                mean,
                tasks: 5,
                p: holm / 2.0,
            },
            holm,
        }
    }

    #[test]
    fn similarity_needs_a_positive_rho_that_survives_holm() {
        let verdict = |tests: &[WeightTest]| similarity(tests).verdict;
        let strong = weight_test("learned", 0.6, 0.01);
        assert_eq!(verdict(&[strong]), Some(Verdict::Supported));
        let weak = weight_test("learned", 0.6, 0.08);
        assert_eq!(verdict(&[weak]), Some(Verdict::NotSupported));
        let against = weight_test("learned", -0.6, 0.01);
        assert_eq!(verdict(&[against]), Some(Verdict::NotSupported));
        let both = [
            weight_test("learned", 0.6, 0.01),
            weight_test("search", 0.1, 0.6),
        ];
        assert_eq!(verdict(&both), Some(Verdict::Mixed));
        assert_eq!(verdict(&[]), None);
        let text = similarity(&both).evidence;
        assert!(
            text.starts_with("`learned` mean rho +0.60 over 5 task(s)"),
            "{text}"
        );
    }
}
