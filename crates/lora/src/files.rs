//! Files as loramix reads and writes them. Reads take regular files only: a FIFO would block
//! forever and a device such as `/dev/zero` never ends. safetensors bytes depend only on what
//! they hold: the `safetensors` crate writes its header's metadata from a `HashMap`, so a file
//! with two metadata keys could differ between two runs; every loramix file with metadata goes
//! through [`serialize`].

use std::collections::HashMap;
use std::io;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError};

/// The bytes of the regular file at `path`.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a folder, FIFO or device)",
        ));
    }
    std::fs::read(path)
}

/// The text of the regular file at `path`.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// `views` and `metadata` as safetensors bytes, the header's keys sorted.
pub fn serialize<'a>(
    views: impl IntoIterator<Item = (String, TensorView<'a>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, SafeTensorError> {
    let bytes = safetensors::serialize(views, Some(metadata))?;
    let length = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    // serde_json's maps are ordered by key (no `preserve_order` feature).
    let header: serde_json::Value =
        serde_json::from_slice(&bytes[8..8 + length]).expect("safetensors wrote JSON");
    let mut sorted = serde_json::to_vec(&header).expect("JSON value");
    // The format pads the header with spaces to an 8-byte boundary.
    sorted.resize(sorted.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + sorted.len() + bytes.len() - 8 - length);
    out.extend((sorted.len() as u64).to_le_bytes());
    out.extend(sorted);
    out.extend(&bytes[8 + length..]);
    Ok(out)
}

/// F32 tensors (name, shape, row-major values) and metadata as safetensors bytes, through
/// [`serialize`]. Panics if a shape does not match its values: callers build both.
pub fn serialize_f32(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, SafeTensorError> {
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| f32_bytes(v)).collect();
    let views = tensors.iter().zip(&bytes).map(|((name, shape, _), data)| {
        let view =
            TensorView::new(Dtype::F32, shape.clone(), data).expect("the shape matches the values");
        (name.clone(), view)
    });
    serialize(views, metadata)
}

/// Values as little-endian F32 bytes, safetensors' layout.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Little-endian F32 bytes back into values.
pub fn f32_values(bytes: &[u8]) -> Vec<f32> {
    (bytes.chunks_exact(4))
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    #[test]
    fn the_bytes_depend_on_the_contents_only_and_read_back() {
        let data: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let write = |keys: &[&str]| {
            let metadata = keys
                .iter()
                .map(|k| (k.to_string(), format!("value of {k}")))
                .collect();
            let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
            serialize([("w".to_string(), view)], metadata).unwrap()
        };
        let keys: Vec<String> = (0..12).map(|i| format!("key{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let first = write(&keys);
        let reversed: Vec<&str> = keys.iter().rev().copied().collect();
        for _ in 0..4 {
            assert_eq!(write(&reversed), first);
        }
        let read = SafeTensors::deserialize(&first).unwrap();
        assert_eq!(read.tensor("w").unwrap().data(), data.as_slice());
        let (_, header) = SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(header.metadata().as_ref().unwrap()["key7"], "value of key7");
    }
}
