use serde::{Deserialize, Serialize};

/// Size of the images of a dataset; every [`ImageItem`] of it has `channels * height * width`
/// pixels, channel-major (the layout of the `[n, c, h, w]` batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    /// Square images of `size` pixels with `channels` channels.
    pub fn square(channels: usize, size: usize) -> Self {
        Self {
            channels,
            height: size,
            width: size,
        }
    }

    /// Pixels per image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Pixels per channel.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One labelled image; `pixels` are in `[0, 1]`, laid out as `channels * height * width`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    pub pixels: Vec<f32>,
    pub label: usize,
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextItem {
    pub text: String,
    pub label: usize,
}

/// Items that carry a class id; what samplers and splits need to know about an item.
pub trait Labelled {
    fn label(&self) -> usize;
    fn set_label(&mut self, label: usize);
}

impl Labelled for ImageItem {
    fn label(&self) -> usize {
        self.label
    }

    fn set_label(&mut self, label: usize) {
        self.label = label;
    }
}

impl Labelled for TextItem {
    fn label(&self) -> usize {
        self.label
    }

    fn set_label(&mut self, label: usize) {
        self.label = label;
    }
}
