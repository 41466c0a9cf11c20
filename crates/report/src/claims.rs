//! The "Claims" section: one verdict per claim of DESIGN.md, from the plan's primary tests
//! only ([`crate::primary`], Holm within that family). The exploratory comparisons further
//! down never decide a verdict, and nothing here states one the numbers do not give.

use crate::inputs::ReportInputs;
use crate::plan::ClaimRoles;
use crate::plan::{PlanStatus, TestKind};
use crate::primary::{ALPHA, Evaluated, Measured, Outcome, Primary};
use crate::rows::ResultRow;
use crate::stats::{median, p_value};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Supported,
    NotSupported,
    /// Only an interaction test stood between the claim and "supported": it can refute
    /// "holds across shifts", never prove it, and it detected no difference.
    NotContradicted,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::NotContradicted => "not contradicted",
        }
    }

    /// From a claim's testable outcomes; `None` when none is testable.
    fn of(tests: &[&Primary]) -> Option<Verdict> {
        let outcomes: Vec<(TestKind, Outcome)> = (tests.iter())
            .map(|t| (t.test.test, t.outcome()))
            .filter(|(_, o)| *o != Outcome::Untestable)
            .collect();
        if outcomes.is_empty() {
            return None;
        }
        let any = |o: Outcome| outcomes.iter().any(|(_, got)| *got == o);
        let misses_only_interactions = (outcomes.iter())
            .filter(|(_, o)| *o == Outcome::NotDetected)
            .all(|(kind, _)| *kind == TestKind::Interaction);
        Some(match () {
            _ if any(Outcome::Contradicts) => Verdict::NotSupported,
            _ if !any(Outcome::NotDetected) => Verdict::Supported,
            _ if misses_only_interactions => Verdict::NotContradicted,
            _ => Verdict::NotSupported,
        })
    }
}

/// `+2.1`: signed, one decimal, and never `-0.0` (a rounding artefact, not a sign).
pub(crate) fn points(x: f64) -> String {
    match format!("{x:+.1}") {
        zero if zero == "-0.0" => "+0.0".into(),
        text => text,
    }
}

/// `+2.1 [-0.3, +4.4]`: a difference in points with its 95% interval.
pub(crate) fn difference(mean: f64, (low, high): (f64, f64)) -> String {
    format!("{} [{}, {}]", points(mean), points(low), points(high))
}

/// `` `a − b` `` or `` `a` ``.
pub(crate) fn pair(test: &crate::plan::PrimaryTest) -> String {
    match &test.b {
        Some(b) => format!("`{} − {b}`", test.a),
        None => format!("`{}`", test.a),
    }
}

/// `k = 1, 5`, or nothing for a similarity test.
pub(crate) fn shots(test: &crate::plan::PrimaryTest) -> String {
    let k: Vec<String> = test.shots.iter().map(ToString::to_string).collect();
    k.join(", ")
}

/// What the outcome means for the test's question, with the power figure on a non-detection.
pub(crate) fn reading(p: &Primary, margin: f64) -> String {
    let detectable = p.result.as_ref().ok().and_then(|e| e.detectable);
    let at = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.1}"));
    match (p.test.test, p.outcome()) {
        (_, Outcome::Untestable) => match &p.result {
            Err(why) => format!("untestable: {why}"),
            Ok(_) => "untestable".into(),
        },
        (TestKind::Superiority, Outcome::Supports) => "detected".into(),
        (TestKind::Noninferiority, Outcome::Supports) => {
            format!("not worse by {margin} points or more")
        }
        (TestKind::Equivalence, Outcome::Supports) => format!("within ±{margin} points"),
        (TestKind::Interaction, Outcome::Contradicts) => "the effect differs across shifts".into(),
        (TestKind::Similarity, Outcome::Supports) => "weights rise with similarity".into(),
        (TestKind::Similarity, Outcome::Contradicts) => "weights fall with similarity".into(),
        (TestKind::Superiority, _) => format!(
            "not detected; would have detected ≥ {} points",
            at(detectable)
        ),
        (TestKind::Noninferiority, _) => format!(
            "not shown; 80% power needed a true difference ≥ {:+.1} points",
            detectable.unwrap_or(f64::NAN)
        ),
        (TestKind::Equivalence, _) => format!(
            "not shown; at a true difference of 0 it would have shown a margin of ±{} points",
            at(detectable)
        ),
        (TestKind::Interaction, _) => format!(
            "no difference detected; would have detected one shift off by ≥ {} points",
            at(detectable)
        ),
        (TestKind::Similarity, _) => "not detected (no power figure for a permutation test)".into(),
    }
}

/// The numbers of a testable test, for its line under the claim.
fn numbers(e: &Evaluated, holm: f64) -> String {
    let ps = format!("p {}, Holm p {}", p_value(e.p), p_value(holm));
    match &e.measured {
        Measured::Difference(d) => format!(
            "{} points over {} tasks ({} runs), {ps}",
            difference(d.mean, d.interval()),
            d.tasks,
            d.runs
        ),
        Measured::Interaction {
            means,
            f,
            df,
            tasks,
            ..
        } => {
            let means: Vec<String> = (means.iter())
                .map(|(shift, m)| format!("{} {}", shift.name(), points(*m)))
                .collect();
            format!(
                "{} over {tasks} tasks, F({}, {}) = {f:.2}, {ps}",
                means.join(", "),
                df.0,
                df.1
            )
        }
        Measured::Similarity(r) => format!(
            "mean Spearman rho {:+.2} over {} task(s), permutation {ps}",
            r.mean, r.tasks
        ),
    }
}

/// `` `learned − lora` superiority at k = 1, 5 ``, or `` `learned` weights vs CKA ``.
pub(crate) fn test_name(test: &crate::plan::PrimaryTest) -> String {
    match test.test {
        TestKind::Similarity => format!("{} weights vs CKA", pair(test)),
        kind => format!("{} {} at k = {}", pair(test), kind.name(), shots(test)),
    }
}

fn test_line(p: &Primary, margin: f64) -> String {
    let what = test_name(p.test);
    match (&p.result, p.holm) {
        (Ok(e), Some(holm)) => format!("{what}: {}: {}", numbers(e, holm), reading(p, margin)),
        _ => format!("{what}: {}", reading(p, margin)),
    }
}

/// The verdict on each of the four claims (`None`: not tested here).
pub(crate) fn verdicts(primary: &[Primary]) -> [Option<Verdict>; 4] {
    std::array::from_fn(|i| {
        let tests: Vec<&Primary> = (primary.iter())
            .filter(|p| usize::from(p.test.claim) == i + 1)
            .collect();
        Verdict::of(&tests)
    })
}

/// One claim: its verdict from its primary tests, then one line per test.
fn claim(md: &mut String, item: usize, text: &str, primary: &[Primary], margin: f64, note: &str) {
    let tests: Vec<&Primary> = primary
        .iter()
        .filter(|p| usize::from(p.test.claim) == item)
        .collect();
    let _ = match Verdict::of(&tests) {
        None => writeln!(md, "{item}. {text}: **not tested here**."),
        Some(v) => {
            let count = |o: Outcome| tests.iter().filter(|t| t.outcome() == o).count();
            let untestable = match count(Outcome::Untestable) {
                0 => String::new(),
                n => format!(" ({n} more untestable)"),
            };
            writeln!(
                md,
                "{item}. {text}: **{}**: {} of {} testable primary test(s) support it after \
                 Holm{untestable}{note}.",
                v.text(),
                count(Outcome::Supports),
                tests.len() - count(Outcome::Untestable),
            )
        }
    };
    for t in &tests {
        let _ = writeln!(md, "   - {}", test_line(t, margin));
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

/// `uniform composition `mix`, ...`: which method plays each part.
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

/// Whose plan this is: registered with the run, or a new analysis of old data.
pub(crate) fn plan_status(inputs: &ReportInputs) -> String {
    let hash = inputs.plan.hash();
    match &inputs.plan_status {
        PlanStatus::RegisteredWithRun => format!(
            "Analysis plan `{hash}` (SHA-256 of its canonical text), registered with this run \
             before its transfer stage."
        ),
        PlanStatus::Reanalysis { registered_hash } => {
            let before = match registered_hash {
                Some(h) => format!("the run was made with plan `{h}`"),
                None => "no plan was registered with the run".into(),
            };
            format!(
                "**This is a new analysis of old data**: the plan used here, `{hash}` (SHA-256 \
                 of its canonical text), was written after the runs; {before}."
            )
        }
    }
}

/// Writes `## Claims`.
pub(crate) fn write(md: &mut String, inputs: &ReportInputs, primary: &[Primary]) {
    md.push_str("## Claims\n\n");
    if let Some(p) = inputs.unfinished() {
        let _ = writeln!(
            md,
            "**Interim**: {} of the sweep's {} planned runs are in; these verdicts may change \
             as the rest come.\n",
            p.done, p.runs
        );
    }
    if inputs.plan.primary.is_empty() {
        md.push_str(
            "No analysis plan: no primary test, so no claim is judged; every comparison below \
             is exploratory.\n\n",
        );
    } else {
        let _ = writeln!(
            md,
            "{}\n\nEach claim of DESIGN.md is judged by the plan's primary tests alone (see \
             [Primary tests](#primary-tests)): supported when each of them passes at \
             Holm-adjusted p < {ALPHA}, Holm over those {} tests only. A difference is the \
             first method's accuracy minus the second's in points, paired on (task, k, seed). \
             Every other comparison in this report is exploratory. The methods: {}.\n",
            plan_status(inputs),
            primary.iter().filter(|p| p.holm.is_some()).count(),
            roles_text(&inputs.roles)
        );
    }
    let margin = inputs.plan.margin;
    let roles = &inputs.roles;
    let sizes = roles
        .learned
        .as_deref()
        .zip(roles.lora.as_deref())
        .and_then(|(l, r)| {
            let (a, b) = (
                parameters(&inputs.results, l)?,
                parameters(&inputs.results, r)?,
            );
            Some(format!(
                " (trainable parameters, median: `{l}` {a:.0}, `{r}` {b:.0})"
            ))
        });
    let claims = [
        "**Few-shot (k <= 10): uniform and learned composition beat full fine-tuning and LoRA**"
            .to_string(),
        format!(
            "**Full shot: learned composition comparable to LoRA** (not worse by more than \
             {margin} points)"
        ),
        "**This holds across label, covariate and task shift**".to_string(),
        "**Learned weights favour upstream modules similar to the downstream task**".to_string(),
    ];
    for (i, text) in claims.iter().enumerate() {
        let note = match i {
            1 => sizes.as_deref().unwrap_or(""),
            _ => "",
        };
        claim(md, i + 1, text, primary, margin, note);
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PrimaryTest;
    use crate::primary::Difference;

    fn test(kind: TestKind) -> PrimaryTest {
        PrimaryTest {
            claim: 1,
            test: kind,
            a: "learned".into(),
            b: Some("lora".into()),
            shots: vec![crate::rows::Shot::K(1)],
        }
    }

    fn evaluated(p: f64) -> Evaluated {
        let d = Difference {
            mean: 3.0,
            se: 1.0,
            df: 5,
            tau2: 1.0,
            sigma2: 1.0,
            tasks: 6,
            runs: 18,
        };
        Evaluated {
            measured: Measured::Difference(d),
            p,
            detectable: Some(4.2),
        }
    }

    fn primary(test: &PrimaryTest, holm: Option<f64>) -> Primary<'_> {
        Primary {
            test,
            result: holm
                .map(|_| evaluated(0.001))
                .ok_or_else(|| "1 task".to_string()),
            holm,
        }
    }

    fn verdict(tests: &[Primary]) -> Option<Verdict> {
        Verdict::of(&tests.iter().collect::<Vec<_>>())
    }

    #[test]
    fn verdicts_follow_the_outcomes_of_the_claims_tests() {
        let (sup, inter) = (test(TestKind::Superiority), test(TestKind::Interaction));
        let pass = || primary(&sup, Some(0.01));
        let miss = || primary(&sup, Some(0.2));
        assert_eq!(verdict(&[pass()]), Some(Verdict::Supported));
        assert_eq!(verdict(&[pass(), miss()]), Some(Verdict::NotSupported));
        assert_eq!(
            verdict(&[pass(), primary(&sup, None)]),
            Some(Verdict::Supported)
        );
        assert_eq!(verdict(&[primary(&sup, None)]), None, "untestable only");
        assert_eq!(
            verdict(&[primary(&inter, Some(0.01))]),
            Some(Verdict::NotSupported)
        );
        assert_eq!(
            verdict(&[primary(&inter, Some(0.3))]),
            Some(Verdict::NotContradicted)
        );
        assert_eq!(
            reading(&miss(), 2.0),
            "not detected; would have detected ≥ 4.2 points"
        );
        assert_eq!(reading(&primary(&sup, None), 2.0), "untestable: 1 task");
    }
}
