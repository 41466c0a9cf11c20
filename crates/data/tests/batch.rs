use burn::data::dataloader::batcher::Batcher;
use loramix_backend::{Inference, device};
use loramix_data::{
    ImageBatch, ImageBatcher, ImageItem, ImageShape, TextBatch, TextBatcher, TextItem,
};
use loramix_models::{ByteTokenizer, PAD_TOKEN};

#[test]
fn image_batch_shapes() {
    let shape = ImageShape::square(3, 4);
    let items: Vec<ImageItem> = (0..5)
        .map(|i| ImageItem {
            pixels: vec![i as f32 / 10.0; shape.len()],
            label: i % 2,
        })
        .collect();
    let batch: ImageBatch<Inference> = ImageBatcher { shape }.batch(items, &device());
    assert_eq!(batch.images.dims(), [5, 3, 4, 4]);
    assert_eq!(batch.targets.dims(), [5]);
    let targets: Vec<i64> = batch.targets.into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(targets, [0, 1, 0, 1, 0]);
}

#[test]
fn text_batch_shapes() {
    let items = vec![
        TextItem {
            text: "hi".into(),
            label: 2,
        },
        TextItem {
            text: "a much longer text than fits".into(),
            label: 0,
        },
    ];
    let batcher = TextBatcher {
        tokenizer: ByteTokenizer { max_len: 8 },
    };
    let batch: TextBatch<Inference> = batcher.batch(items, &device());
    assert_eq!(batch.tokens.dims(), [2, 8]);
    let tokens: Vec<i64> = batch.tokens.into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(tokens[2], PAD_TOKEN);
    assert_eq!(tokens[0], i64::from(b'h') + 1);
    assert_eq!(
        batch
            .targets
            .into_data()
            .convert::<i64>()
            .to_vec::<i64>()
            .unwrap(),
        [2, 0]
    );
}
