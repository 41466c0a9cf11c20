//! Spam Assassin, tweets, Brown, fortunes, WordNet and users' CSV text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loramix_data::text::{
    load_brown, load_csv_splits, load_csv_text, load_fortunes, load_spam_assassin, load_tweets,
    load_wordnet_glosses,
};

mod scratch;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch::folder();
    match pick % 7 {
        0 => {
            scratch::file(&dir, "spam-1.jsonl", bytes);
            let _ = load_spam_assassin(&dir);
        }
        1 => {
            let _ = load_tweets(&scratch::file(&dir, "t.csv", bytes));
        }
        2 => {
            let half = bytes.len() / 2;
            scratch::file(&dir, "cats.txt", &bytes[..half]);
            scratch::file(&dir, "ca01", &bytes[half..]);
            let _ = load_brown(&dir);
        }
        3 => {
            scratch::file(&dir, "food", bytes);
            let _ = load_fortunes(&dir);
        }
        4 => {
            let _ = load_wordnet_glosses(&scratch::file(&dir, "data.noun", bytes));
        }
        5 => {
            let _ = load_csv_text(&scratch::file(&dir, "d.csv", bytes), "text", "label");
        }
        _ => {
            let half = bytes.len() / 2;
            scratch::file(&dir, "train.csv", &bytes[..half]);
            scratch::file(&dir, "test.csv", &bytes[half..]);
            let _ = load_csv_splits(&dir, "text", "label");
        }
    }
});
