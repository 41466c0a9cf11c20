//! loramix adapters (manifest and tensors), PEFT adapter tensors, sweep and report CSVs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loramix_models::hf::BERT;

mod scratch;

const PEFT_CONFIG: &str = r#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4,
  "target_modules": ["query", "value"], "bias": "none"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch::folder();
    match pick % 3 {
        0 => {
            let half = bytes.len() / 2;
            scratch::file(&dir, "manifest.json", &bytes[..half]);
            scratch::file(&dir, "adapter.safetensors", &bytes[half..]);
            let _ = loramix_lora::Adapter::load(&dir);
        }
        1 => {
            scratch::file(&dir, "adapter_config.json", PEFT_CONFIG.as_bytes());
            scratch::file(&dir, "adapter_model.safetensors", bytes);
            let _ = loramix_peft::read(&dir, &BERT, "fingerprint");
        }
        _ => {
            let path = scratch::file(&dir, "all.csv", bytes);
            let _ = loramix_experiment::store::read_rows::<loramix_experiment::pipeline::CellRow>(
                &path,
            );
            let paths = std::slice::from_ref(&path);
            let _ = loramix_report::read_results(paths);
            let _ = loramix_report::read_weights(paths);
        }
    }
});
