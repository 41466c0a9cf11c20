//! The few ONNX protobuf messages loramix reads (field numbers from `onnx.proto3`), decoded
//! from the wire format directly.

use crate::OnnxError;

/// A decoded `TensorProto`: its name, shape, element type and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub name: String,
    pub dims: Vec<usize>,
    /// `TensorProto.DataType` (1 = FLOAT).
    pub data_type: i32,
    /// The values of a FLOAT tensor (the only type a backbone's weights come in here), or
    /// `None` for other types.
    pub floats: Option<Vec<f32>>,
}

/// A decoded `NodeProto`: what finds a weight by the node that uses it (outputs and
/// attributes are not needed and not kept).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
}

/// The graph of a `ModelProto`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub initializers: Vec<Initializer>,
}

/// One field of a protobuf message.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(&'a [u8]),
}

/// Iterates over the `(field number, value)` pairs of a message.
struct Fields<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, OnnxError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .data
                .get(self.at)
                .ok_or_else(|| malformed(self.at, "a varint runs past the end"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed(self.at, "a varint is longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], OnnxError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| malformed(self.at, "a field runs past the end"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn next_field(&mut self) -> Option<Result<(u64, Value<'a>), OnnxError>> {
        if self.at >= self.data.len() {
            return None;
        }
        Some((|| {
            let key = self.varint()?;
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    self.take(8)?;
                    Value::Fixed64
                }
                2 => {
                    let len = usize::try_from(self.varint()?)
                        .map_err(|_| malformed(self.at, "a length does not fit in memory"))?;
                    Value::Bytes(self.take(len)?)
                }
                5 => Value::Fixed32(self.take(4)?),
                wire => return Err(malformed(self.at, &format!("unknown wire type {wire}"))),
            };
            Ok((key >> 3, value))
        })())
    }
}

fn malformed(offset: usize, what: &str) -> OnnxError {
    OnnxError::Malformed {
        offset,
        detail: what.to_string(),
    }
}

fn string(bytes: &[u8]) -> Result<String, OnnxError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| malformed(0, "a name is not UTF-8"))
}

/// Packed or single varints of a repeated integer field.
fn push_varints(value: Value<'_>, out: &mut Vec<i64>) -> Result<(), OnnxError> {
    match value {
        Value::Varint(v) => out.push(v as i64),
        Value::Bytes(packed) => {
            let mut fields = Fields::new(packed);
            while fields.at < packed.len() {
                out.push(fields.varint()? as i64);
            }
        }
        _ => return Err(malformed(0, "an integer field has a non-integer wire type")),
    }
    Ok(())
}

/// Reads the graph of an ONNX `ModelProto` (field 7).
pub fn parse_model(data: &[u8]) -> Result<Graph, OnnxError> {
    let mut fields = Fields::new(data);
    while let Some(field) = fields.next_field() {
        if let (7, Value::Bytes(graph)) = field? {
            return parse_graph(graph);
        }
    }
    Err(malformed(data.len(), "no graph in the model"))
}

fn parse_graph(data: &[u8]) -> Result<Graph, OnnxError> {
    let mut graph = Graph::default();
    let mut fields = Fields::new(data);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Bytes(node)) => graph.nodes.push(parse_node(node)?),
            (5, Value::Bytes(tensor)) => graph.initializers.push(parse_tensor(tensor)?),
            _ => {}
        }
    }
    Ok(graph)
}

fn parse_node(data: &[u8]) -> Result<Node, OnnxError> {
    let mut node = Node::default();
    let mut fields = Fields::new(data);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Bytes(s)) => node.inputs.push(string(s)?),
            (3, Value::Bytes(s)) => node.name = string(s)?,
            (4, Value::Bytes(s)) => node.op_type = string(s)?,
            _ => {}
        }
    }
    Ok(node)
}

fn parse_tensor(data: &[u8]) -> Result<Initializer, OnnxError> {
    let mut dims = Vec::new();
    let mut data_type = 0;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut float_data = Vec::new();
    let mut external = false;
    let mut fields = Fields::new(data);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, v) => push_varints(v, &mut dims)?,
            (2, Value::Varint(t)) => data_type = t as i32,
            (4, Value::Bytes(packed)) => float_data.extend(
                packed
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            (4, Value::Fixed32(b)) => float_data.push(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            (8, Value::Bytes(s)) => name = string(s)?,
            (9, Value::Bytes(bytes)) => raw = Some(bytes),
            (14, Value::Varint(1)) => external = true,
            _ => {}
        }
    }
    if external {
        return Err(OnnxError::Unsupported(format!(
            "tensor `{name}` keeps its data in an external file"
        )));
    }
    let dims: Vec<usize> = dims.into_iter().map(|d| d.max(0) as usize).collect();
    let count: usize = dims.iter().product();
    let floats = match (data_type, raw) {
        (1, Some(b)) => Some(
            b.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect::<Vec<_>>(),
        ),
        (1, None) => Some(float_data),
        _ => None,
    };
    if let Some(len) = floats.as_ref().map(Vec::len)
        && len != count
    {
        return Err(OnnxError::Malformed {
            offset: 0,
            detail: format!("tensor `{name}` has {len} values for shape {dims:?}"),
        });
    }
    Ok(Initializer {
        name,
        dims,
        data_type,
        floats,
    })
}
