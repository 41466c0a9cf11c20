//! `[[method]]` tables: each kind reads only its own settings with its defaults, and anything
//! else is refused with the method's name before a run starts.

use loramix_compose::{Normalisation, Penalty, Sharing};
use loramix_experiment::method::{Dare, Kind, Learned, MethodSpec, Select, Then, Ties};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct File {
    method: Vec<MethodSpec>,
}

fn read(text: &str) -> Result<Vec<MethodSpec>, String> {
    toml::from_str::<File>(text)
        .map(|f| f.method)
        .map_err(|e| e.to_string())
}

fn one(text: &str) -> MethodSpec {
    let mut methods = read(&format!("[[method]]\n{text}")).unwrap();
    assert_eq!(methods.len(), 1);
    methods.remove(0)
}

fn refused(text: &str) -> String {
    read(&format!("[[method]]\n{text}")).expect_err(text)
}

#[test]
fn every_kind_reads_with_its_defaults() {
    let ties = one("kind = \"ties\"\nsteps = 10\nlr = 0.01\ndensity = 0.2");
    assert_eq!(ties.name, "ties", "the name defaults to the kind");
    assert_eq!((ties.steps, ties.lr), (10, 0.01));
    assert_eq!(
        ties.kind,
        Kind::Ties(Ties {
            density: 0.2,
            lambda: 1.0
        })
    );
    let dare = one("kind = \"dare\"\nname = \"dare-90\"\nsteps = 1\nlr = 1.0\ndrop = 0.9");
    assert_eq!(dare.name, "dare-90");
    assert_eq!(
        dare.kind,
        Kind::Dare(Dare {
            drop: 0.9,
            weights: None,
            seed: 0,
        })
    );
    let search = one("kind = \"search\"\nsteps = 1\nlr = 1.0\nbudget = 12");
    let Kind::Search(search) = search.kind else {
        panic!("search read as another kind")
    };
    // LoraHub's settings, except the one given.
    assert_eq!((search.budget, search.population), (12, 8));
    assert_eq!((search.sigma, search.l1, search.bound), (0.3, 0.05, 1.5));
    let learned = one("kind = \"learned\"\nsteps = 1\nlr = 1.0");
    assert_eq!(
        learned.kind,
        Kind::Learned(Learned {
            head_lr: None,
            sharing: Sharing::PerLayer,
            normalisation: Normalisation::Softmax,
            penalty: Penalty::None,
        })
    );
    let select = one("kind = \"select\"\nsteps = 1\nlr = 1.0\nk = 4");
    assert_eq!(
        select.kind,
        Kind::Select(Select {
            k: 4,
            then: Then::Uniform,
            head_lr: None
        })
    );
    assert!(
        refused("kind = \"select\"\nsteps = 1\nlr = 1.0\nk = 0").contains("`k` must be 1 or more")
    );
    for kind in ["head-only", "full", "lora", "uniform"] {
        let method = one(&format!("kind = \"{kind}\"\nsteps = 1\nlr = 1.0"));
        assert_eq!(method.kind.label(), kind);
    }
}

#[test]
fn settings_of_another_kind_are_refused_with_the_method_name() {
    let err = refused("kind = \"lora\"\nname = \"small-lora\"\nsteps = 1\nlr = 1.0\ndensity = 0.5");
    assert!(
        err.contains("method `small-lora`: `density` does not apply to kind `lora`"),
        "{err}"
    );
    let err = refused("kind = \"uniform\"\nsteps = 1\nlr = 1.0\nhead_lr = 0.1");
    assert!(
        err.contains("method `uniform`: `head_lr` does not apply to kind `uniform`"),
        "{err}"
    );
}

#[test]
fn missing_and_out_of_range_settings_are_refused() {
    let cases = [
        (
            "kind = \"ties\"\nsteps = 1\nlr = 1.0",
            "missing field `density`",
        ),
        (
            "kind = \"fixed\"\nsteps = 1\nlr = 1.0",
            "missing field `weights`",
        ),
        (
            "kind = \"ties\"\nlr = 1.0\ndensity = 0.5",
            "`steps` is missing",
        ),
        (
            "kind = \"full\"\nsteps = 0\nlr = 1.0",
            "steps must be at least 1",
        ),
        (
            "kind = \"full\"\nsteps = 1\nlr = -1.0",
            "lr must be positive, not -1",
        ),
        (
            "kind = \"full\"\nsteps = 1\nlr = 1.0\nhead_lr = 0.0",
            "`head_lr` must be positive, not 0",
        ),
        (
            "kind = \"lora\"\nsteps = 1\nlr = 1.0\nalpha = -2.0",
            "`alpha` must be positive, not -2",
        ),
        (
            "kind = \"search\"\nsteps = 1\nlr = 1.0\npopulation = 1",
            "`population` must be 2 or more, not 1",
        ),
        (
            "kind = \"learned\"\nsteps = 1\nlr = 1.0\npenalty = { entropy = -1.0 }",
            "`penalty` must be 0 or more, not -1",
        ),
        ("steps = 1\nlr = 1.0", "a [[method]] needs `kind`"),
        (
            "kind = \"magic\"\nsteps = 1\nlr = 1.0",
            "unknown variant `magic`",
        ),
    ];
    for (text, expected) in cases {
        let err = refused(text);
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn module_weights_are_checked_against_the_module_count() {
    let fixed = one("kind = \"fixed\"\nsteps = 1\nlr = 1.0\nweights = [0.5, 0.5]");
    assert_eq!(fixed.kind.check_modules(2), Ok(()));
    assert_eq!(
        fixed.kind.check_modules(3),
        Err("2 weights given for 3 upstream modules".to_string())
    );
    let dare = one("kind = \"dare\"\nsteps = 1\nlr = 1.0\ndrop = 0.5");
    assert_eq!(dare.kind.check_modules(7), Ok(()), "DARE defaults to 1/N");
}

#[test]
fn a_spec_reads_back_what_it_writes() {
    let text = "kind = \"learned\"\nname = \"shared\"\nsteps = 3\nlr = 0.5\nsharing = \"shared\"\npenalty = { l1 = 0.01 }";
    let method = one(text);
    let json = serde_json::to_string(&method).unwrap();
    assert!(json.contains("\"kind\":\"learned\""), "{json}");
    let file = File {
        method: vec![method],
    };
    let back: File = toml::from_str(&toml::to_string(&file).unwrap()).unwrap();
    assert_eq!(back.method, file.method);
}

/// DARE's seed is read when given and left out of the written settings at its default 0, so
/// the cells of runs from before it existed keep their config hash.
#[test]
fn dare_writes_its_seed_only_when_it_is_not_the_default() {
    let plain = one("kind = \"dare\"\nsteps = 1\nlr = 1.0\ndrop = 0.5");
    let json = serde_json::to_string(&plain).unwrap();
    assert_eq!(
        json,
        r#"{"name":"dare","steps":1,"lr":1.0,"kind":"dare","drop":0.5,"weights":null}"#
    );
    let seeded = one("kind = \"dare\"\nsteps = 1\nlr = 1.0\ndrop = 0.5\nseed = 3");
    let Kind::Dare(dare) = &seeded.kind else {
        panic!("dare read as another kind")
    };
    assert_eq!(dare.seed, 3);
    assert!(
        serde_json::to_string(&seeded)
            .unwrap()
            .contains(r#""seed":3"#)
    );
}
