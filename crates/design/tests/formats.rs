//! Each type reads back what it writes, in every format the pipeline uses it in, and refuses
//! anything else with a message naming the value.

use loramix_design::{Shift, Shot};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    shift: Shift,
    k: Shot,
}

#[test]
fn toml_takes_numbers_and_full() {
    #[derive(Deserialize)]
    struct Config {
        shots: Vec<Shot>,
        shift: Shift,
    }
    let config: Config = toml::from_str("shots = [1, 20, \"full\"]\nshift = \"label\"").unwrap();
    assert_eq!(config.shots, [Shot::K(1), Shot::K(20), Shot::Full]);
    assert_eq!(config.shift, Shift::Label);
    for bad in [
        "shots = [0]",
        "shots = [\"most\"]",
        "shots = [-1]",
        "shots = [1.5]",
    ] {
        let err = toml::from_str::<Config>(&format!("{bad}\nshift = \"task\""))
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(err.to_string().contains("shots"), "{bad}: {err}");
    }
}

#[test]
fn csv_round_trips() {
    let rows = vec![
        Row {
            shift: Shift::Covariate,
            k: Shot::K(5),
        },
        Row {
            shift: Shift::Task,
            k: Shot::Full,
        },
    ];
    let mut writer = csv::Writer::from_writer(Vec::new());
    rows.iter().for_each(|r| writer.serialize(r).unwrap());
    let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
    assert_eq!(text, "shift,k\ncovariate,5\ntask,full\n");
    let back: Vec<Row> = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(back, rows);
    let err = csv::Reader::from_reader("shift,k\nsideways,5\n".as_bytes())
        .deserialize::<Row>()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("`sideways`"), "{err}");
}

#[test]
fn json_round_trips() {
    let row = Row {
        shift: Shift::Label,
        k: Shot::K(3),
    };
    let text = serde_json::to_string(&row).unwrap();
    assert_eq!(text, r#"{"shift":"label","k":3}"#);
    assert_eq!(serde_json::from_str::<Row>(&text).unwrap(), row);
    assert_eq!(serde_json::to_string(&Shot::Full).unwrap(), r#""full""#);
}

#[test]
fn text_round_trips_and_orders_full_last() {
    for shot in [Shot::K(1), Shot::K(100), Shot::Full] {
        assert_eq!(shot.to_string().parse::<Shot>(), Ok(shot));
    }
    for shift in Shift::ALL {
        assert_eq!(shift.to_string().parse::<Shift>(), Ok(shift));
    }
    let mut shots = vec![Shot::Full, Shot::K(10), Shot::K(2)];
    shots.sort();
    assert_eq!(shots, [Shot::K(2), Shot::K(10), Shot::Full]);
    assert_eq!(
        "0".parse::<Shot>().unwrap_err(),
        "shots are a whole number of at least 1 or `full`, not `0`"
    );
    assert!("".parse::<Shot>().is_err());
    assert!(
        "sideways"
            .parse::<Shift>()
            .unwrap_err()
            .contains("`sideways`")
    );
}
