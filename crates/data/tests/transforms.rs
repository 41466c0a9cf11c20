use loramix_data::{
    ImageShape, ImageTransform, TextTransform, apply_image_transforms, apply_text_transforms,
};

const SHAPE: ImageShape = ImageShape {
    channels: 1,
    height: 9,
    width: 9,
};

/// A bright vertical bar right of the centre on a dark background.
fn bar() -> Vec<f32> {
    (0..81)
        .map(|i| if i % 9 == 6 { 1.0 } else { 0.1 })
        .collect()
}

fn all() -> Vec<ImageTransform> {
    use ImageTransform::*;
    vec![
        Rotate(30.0),
        Invert(1.0),
        Blur(1.0),
        Noise(0.2),
        Shear(0.3),
        Scale(0.2),
        Contrast(-0.5),
    ]
}

#[test]
fn zero_strength_is_identity() {
    use ImageTransform::*;
    for t in [
        Rotate(0.0),
        Invert(0.0),
        Blur(0.0),
        Noise(0.0),
        Shear(0.0),
        Scale(0.0),
        Contrast(0.0),
    ] {
        assert_eq!(t.apply(&bar(), SHAPE, 5), bar(), "{t:?}");
    }
}

#[test]
fn every_transform_changes_the_image_and_stays_in_range() {
    for t in all() {
        let out = t.apply(&bar(), SHAPE, 5);
        assert_eq!(out.len(), 81);
        assert_ne!(out, bar(), "{t:?}");
        assert!(
            out.iter().all(|p| (-1e-6..=1.0 + 1e-6).contains(p)),
            "{t:?}"
        );
    }
}

#[test]
fn deterministic_per_seed() {
    let a = apply_image_transforms(&all(), &bar(), SHAPE, 11);
    assert_eq!(a, apply_image_transforms(&all(), &bar(), SHAPE, 11));
    assert_ne!(a, apply_image_transforms(&all(), &bar(), SHAPE, 12));
}

#[test]
fn rotation_and_inversion_do_what_they_say() {
    let rotated = ImageTransform::Rotate(90.0).apply(&bar(), SHAPE, 0);
    // Counter-clockwise: the bar right of the centre ends up above it, as a horizontal bar.
    let row2: Vec<f32> = rotated[18..27].to_vec();
    assert!(row2[1..8].iter().all(|&p| p > 0.9), "{row2:?}");
    let inverted = ImageTransform::Invert(1.0).apply(&bar(), SHAPE, 0);
    assert!((inverted[6] - 0.0).abs() < 1e-6 && (inverted[0] - 0.9).abs() < 1e-6);
}

#[test]
fn text_transforms() {
    let text = "The quick brown fox jumps over the lazy dog";
    assert_eq!(TextTransform::Uppercase.apply(text, 0), text.to_uppercase());
    assert_eq!(TextTransform::Lowercase.apply(text, 0), text.to_lowercase());
    assert_eq!(TextTransform::Truncate(9).apply(text, 0), "The quick");
    assert_eq!(TextTransform::Typos(0.0).apply(text, 3), text);
    assert_eq!(TextTransform::RandomCase(0.0).apply(text, 3), text);
    let noisy = [TextTransform::Typos(0.2), TextTransform::RandomCase(0.3)];
    let a = apply_text_transforms(&noisy, text, 1);
    assert_ne!(a, text);
    assert_eq!(a, apply_text_transforms(&noisy, text, 1));
    assert_ne!(a, apply_text_transforms(&noisy, text, 2));
    assert_eq!(a.to_lowercase().chars().filter(|c| *c == ' ').count(), 8);
}
