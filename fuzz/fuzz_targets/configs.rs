//! Suite TOML (image and text), experiment TOML and PEFT `adapter_config.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loramix_data::{ImageItem, Suite, TextItem};

mod scratch;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch::folder();
    match pick % 4 {
        0 => {
            let _ = Suite::<TextItem>::from_file(&scratch::file(&dir, "suite.toml", bytes));
        }
        1 => {
            let _ = Suite::<ImageItem>::from_file(&scratch::file(&dir, "suite.toml", bytes));
        }
        2 => {
            let path = scratch::file(&dir, "experiment.toml", bytes);
            let _ = loramix_experiment::config::Experiment::from_file(&path);
        }
        _ => {
            let path = scratch::file(&dir, "adapter_config.json", bytes);
            let _ = loramix_peft::PeftConfig::from_file(&path);
        }
    }
});
