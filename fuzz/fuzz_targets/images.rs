//! IDX, MNIST JSON, digits CSV and image-folder files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loramix_data::ImageShape;
use loramix_data::image::{
    load_digits_csv, load_idx, load_image_folder, load_image_splits, load_mnist_json,
};

mod scratch;

const SHAPE: ImageShape = ImageShape {
    channels: 1,
    height: 8,
    width: 8,
};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = scratch::folder();
    match pick % 5 {
        0 => {
            let half = bytes.len() / 2;
            let images = scratch::file(&dir, "images", &bytes[..half]);
            let labels = scratch::file(&dir, "labels", &bytes[half..]);
            let _ = load_idx(&images, &labels, SHAPE);
        }
        1 => {
            scratch::file(&dir, "3.json", bytes);
            let _ = load_mnist_json(&dir, SHAPE);
        }
        2 => {
            let _ = load_digits_csv(&scratch::file(&dir, "digits.csv", bytes), SHAPE);
        }
        3 => {
            scratch::file(&dir, "a/x.png", bytes);
            let _ = load_image_folder(&dir, SHAPE);
        }
        _ => {
            scratch::file(&dir, "train/a/x.jpg", bytes);
            scratch::file(&dir, "test/a/y.png", bytes);
            let _ = load_image_splits(&dir, SHAPE);
        }
    }
});
