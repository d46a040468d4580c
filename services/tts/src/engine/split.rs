//! Cutting a Piper (VITS) model in two at the vocoder's input, so that a
//! sentence's audio can be decoded and sent piece by piece.
//!
//! A Piper model is one ONNX graph: text encoder, duration predictor and
//! flow (cheap per frame) turn phonemes into a latent sequence `z` of shape
//! `[1, channels, frames]`; the HiFi-GAN vocoder (most of the work) turns
//! `z` into 256 samples per frame. The vocoder is convolutional, so a
//! window of frames with some context on each side decodes to exactly the
//! samples the whole sequence would give there. Cut in two, the first
//! audio of a sentence waits for the encoder and one short window instead
//! of the whole sentence.
//!
//! The cut is found by structure, not by node names: the input of the
//! convolution in front of the vocoder's first `ConvTranspose` (the
//! upsampling), provided that everything after it depends on the phonemes
//! only through it. The ONNX protobuf is edited at the wire level: fields
//! that are not touched are copied byte for byte.

use std::collections::{BTreeSet, HashMap, HashSet};

/// Why a model could not be cut (the caller then runs it whole).
#[derive(Debug, thiserror::Error)]
#[error("cannot split the voice model: {0}")]
pub struct SplitError(String);

fn fail<T>(why: impl Into<String>) -> Result<T, SplitError> {
    Err(SplitError(why.into()))
}

/// The two halves of a model.
#[derive(Debug, Clone)]
pub struct SplitModel {
    /// Phonemes (and scales, speaker) → the latent sequence.
    pub encoder: Vec<u8>,
    /// The latent sequence (and the speaker) → audio.
    pub decoder: Vec<u8>,
    /// The name of the latent tensor: the encoder's output, a decoder input.
    pub latent: String,
    /// The decoder's other inputs (inputs of the whole model, e.g. `sid`).
    pub decoder_inputs: Vec<String>,
}

// ---- protobuf wire format --------------------------------------------------

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One field of a message, as it is on the wire.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    number: u64,
    /// The whole field: tag, length and body.
    raw: &'a [u8],
    /// The body of a length-delimited field (empty for the others).
    body: &'a [u8],
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, SplitError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*pos) else {
            return fail("truncated varint");
        };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    fail("varint longer than 10 bytes")
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, SplitError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let tag = varint(buf, &mut pos)?;
        let (number, wire) = (tag >> 3, (tag & 7) as u8);
        let mut body: &[u8] = &[];
        match wire {
            VARINT => {
                varint(buf, &mut pos)?;
            }
            FIXED64 => pos += 8,
            FIXED32 => pos += 4,
            LEN => {
                let len = usize::try_from(varint(buf, &mut pos)?)
                    .map_err(|_| SplitError("field too long".into()))?;
                let end = pos
                    .checked_add(len)
                    .filter(|&e| e <= buf.len())
                    .ok_or_else(|| SplitError("truncated field".into()))?;
                body = &buf[pos..end];
                pos = end;
            }
            other => return fail(format!("unsupported wire type {other}")),
        }
        if pos > buf.len() {
            return fail("truncated field");
        }
        out.push(Field {
            number,
            raw: &buf[start..pos],
            body,
        });
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, number: u64, body: &[u8]) {
    put_varint(out, (number << 3) | u64::from(LEN));
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// The string fields numbered `number` of a message.
fn strings(buf: &[u8], number: u64) -> Result<Vec<String>, SplitError> {
    fields(buf)?
        .into_iter()
        .filter(|f| f.number == number)
        .map(|f| {
            String::from_utf8(f.body.to_vec()).map_err(|_| SplitError("a name is not UTF-8".into()))
        })
        .collect()
}

fn name_of(buf: &[u8], number: u64) -> Result<String, SplitError> {
    Ok(strings(buf, number)?.into_iter().next().unwrap_or_default())
}

// ---- ONNX ------------------------------------------------------------------

// Field numbers of onnx.proto.
const MODEL_GRAPH: u64 = 7;
const GRAPH_NODE: u64 = 1;
const GRAPH_INITIALIZER: u64 = 5;
const GRAPH_INPUT: u64 = 11;
const GRAPH_OUTPUT: u64 = 12;
const GRAPH_VALUE_INFO: u64 = 13;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_OP_TYPE: u64 = 4;
const NODE_ATTRIBUTE: u64 = 5;
const ATTRIBUTE_GRAPH: u64 = 6;
const ATTRIBUTE_GRAPHS: u64 = 11;
const TENSOR_NAME: u64 = 8;
const VALUE_INFO_NAME: u64 = 1;

#[derive(Debug)]
struct Node {
    field: usize,
    op: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    has_subgraph: bool,
}

#[derive(Debug)]
struct Graph<'a> {
    fields: Vec<Field<'a>>,
    nodes: Vec<Node>,
    initializers: HashSet<String>,
    inputs: Vec<String>,
    outputs: Vec<String>,
    producer: HashMap<String, usize>,
}

impl<'a> Graph<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, SplitError> {
        let all = fields(buf)?;
        let mut graph = Graph {
            fields: Vec::new(),
            nodes: Vec::new(),
            initializers: HashSet::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            producer: HashMap::new(),
        };
        for (i, f) in all.iter().enumerate() {
            match f.number {
                GRAPH_NODE => {
                    let has_subgraph = fields_numbered(f.body, NODE_ATTRIBUTE)?.iter().try_fold(
                        false,
                        |any, a| {
                            Ok::<_, SplitError>(
                                any || fields(a)?.iter().any(|g| {
                                    g.number == ATTRIBUTE_GRAPH || g.number == ATTRIBUTE_GRAPHS
                                }),
                            )
                        },
                    )?;
                    let node = Node {
                        field: i,
                        op: name_of(f.body, NODE_OP_TYPE)?,
                        inputs: strings(f.body, NODE_INPUT)?,
                        outputs: strings(f.body, NODE_OUTPUT)?,
                        has_subgraph,
                    };
                    for out in &node.outputs {
                        graph.producer.insert(out.clone(), graph.nodes.len());
                    }
                    graph.nodes.push(node);
                }
                GRAPH_INITIALIZER => {
                    graph.initializers.insert(name_of(f.body, TENSOR_NAME)?);
                }
                GRAPH_INPUT => graph.inputs.push(name_of(f.body, VALUE_INFO_NAME)?),
                GRAPH_OUTPUT => graph.outputs.push(name_of(f.body, VALUE_INFO_NAME)?),
                _ => {}
            }
        }
        graph.fields = all;
        Ok(graph)
    }

    /// The nodes (in graph order) that `targets` need, not looking past `stop`.
    fn closure(&self, targets: &[String], stop: &str) -> BTreeSet<usize> {
        let mut nodes = BTreeSet::new();
        let mut todo: Vec<&str> = targets.iter().map(String::as_str).collect();
        while let Some(name) = todo.pop() {
            if name == stop {
                continue;
            }
            if let Some(&n) = self.producer.get(name)
                && nodes.insert(n)
            {
                todo.extend(self.nodes[n].inputs.iter().map(String::as_str));
            }
        }
        nodes
    }

    /// The tensors `nodes` read that none of them produces (initializers aside).
    fn needs(&self, nodes: &BTreeSet<usize>) -> BTreeSet<String> {
        let produced: HashSet<&str> = nodes
            .iter()
            .flat_map(|&n| self.nodes[n].outputs.iter().map(String::as_str))
            .collect();
        nodes
            .iter()
            .flat_map(|&n| self.nodes[n].inputs.iter())
            .filter(|i| {
                !i.is_empty() && !produced.contains(i.as_str()) && !self.initializers.contains(*i)
            })
            .cloned()
            .collect()
    }

    /// Candidates for the vocoder's input: the data inputs of the
    /// convolutions that feed the first upsampling, through activations and
    /// sums.
    fn vocoder_inputs(&self) -> Vec<String> {
        let Some(up) = self.nodes.iter().find(|n| n.op == "ConvTranspose") else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let mut todo: Vec<(&str, usize)> = up
            .inputs
            .first()
            .map(|i| (i.as_str(), 0))
            .into_iter()
            .collect();
        while let Some((name, depth)) = todo.pop() {
            let Some(&n) = self.producer.get(name) else {
                continue;
            };
            let node = &self.nodes[n];
            match node.op.as_str() {
                "Conv" => found.extend(node.inputs.first().cloned()),
                "LeakyRelu" | "Relu" | "Add" | "Mul" | "Identity" if depth < 8 => {
                    todo.extend(node.inputs.iter().map(|i| (i.as_str(), depth + 1)));
                }
                _ => {}
            }
        }
        found
    }

    /// The graph with only `nodes`, the given inputs and outputs, and the
    /// initializers and value infos that those nodes use.
    fn subgraph(
        &self,
        nodes: &BTreeSet<usize>,
        inputs: &[Vec<u8>],
        outputs: &[Vec<u8>],
        drop_info: &str,
    ) -> Result<Vec<u8>, SplitError> {
        let used: HashSet<&str> = nodes
            .iter()
            .flat_map(|&n| {
                let node = &self.nodes[n];
                node.inputs.iter().chain(&node.outputs).map(String::as_str)
            })
            .collect();
        let keep_fields: HashSet<usize> = nodes.iter().map(|&n| self.nodes[n].field).collect();
        let mut out = Vec::new();
        let (mut wrote_inputs, mut wrote_outputs) = (false, false);
        for (i, f) in self.fields.iter().enumerate() {
            match f.number {
                GRAPH_NODE if keep_fields.contains(&i) => out.extend_from_slice(f.raw),
                GRAPH_NODE => {}
                GRAPH_INITIALIZER => {
                    if used.contains(name_of(f.body, TENSOR_NAME)?.as_str()) {
                        out.extend_from_slice(f.raw);
                    }
                }
                GRAPH_INPUT if !wrote_inputs => {
                    wrote_inputs = true;
                    for input in inputs {
                        put_len(&mut out, GRAPH_INPUT, input);
                    }
                }
                GRAPH_OUTPUT if !wrote_outputs => {
                    wrote_outputs = true;
                    for output in outputs {
                        put_len(&mut out, GRAPH_OUTPUT, output);
                    }
                }
                GRAPH_INPUT | GRAPH_OUTPUT => {}
                GRAPH_VALUE_INFO => {
                    let name = name_of(f.body, VALUE_INFO_NAME)?;
                    if name != drop_info && used.contains(name.as_str()) {
                        out.extend_from_slice(f.raw);
                    }
                }
                _ => out.extend_from_slice(f.raw),
            }
        }
        Ok(out)
    }

    /// The value info (name and type) of `name`: the graph's own, or a
    /// float tensor of unknown shape.
    fn value_info(&self, name: &str) -> Result<Vec<u8>, SplitError> {
        for f in &self.fields {
            if matches!(f.number, GRAPH_INPUT | GRAPH_OUTPUT | GRAPH_VALUE_INFO)
                && name_of(f.body, VALUE_INFO_NAME)? == name
            {
                return Ok(f.body.to_vec());
            }
        }
        // ValueInfoProto { name, type: TypeProto { tensor_type { elem_type: FLOAT } } }
        let tensor_type = [0x08, 0x01];
        let mut type_proto = Vec::new();
        put_len(&mut type_proto, 1, &tensor_type);
        let mut info = Vec::new();
        put_len(&mut info, VALUE_INFO_NAME, name.as_bytes());
        put_len(&mut info, 2, &type_proto);
        Ok(info)
    }
}

fn fields_numbered(buf: &[u8], number: u64) -> Result<Vec<&[u8]>, SplitError> {
    Ok(fields(buf)?
        .into_iter()
        .filter(|f| f.number == number)
        .map(|f| f.body)
        .collect())
}

/// The model with its graph replaced.
fn with_graph(model: &[Field<'_>], graph: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(graph.len() + 1024);
    for f in model {
        if f.number == MODEL_GRAPH {
            put_len(&mut out, MODEL_GRAPH, graph);
        } else {
            out.extend_from_slice(f.raw);
        }
    }
    out
}

/// Cuts a Piper model (the bytes of its `.onnx`) in front of its vocoder.
pub fn split(model: &[u8]) -> Result<SplitModel, SplitError> {
    let model_fields = fields(model)?;
    let Some(graph_field) = model_fields.iter().find(|f| f.number == MODEL_GRAPH) else {
        return fail("not an ONNX model (no graph)");
    };
    let graph = Graph::parse(graph_field.body)?;
    let Some(phonemes) = graph.inputs.first() else {
        return fail("the graph has no inputs");
    };
    let candidates = graph.vocoder_inputs();
    let latent = candidates
        .into_iter()
        .find(|cut| {
            let after = graph.closure(&graph.outputs, cut);
            let needs = graph.needs(&after);
            after.iter().all(|&n| !graph.nodes[n].has_subgraph)
                && needs.contains(cut)
                && !needs.contains(phonemes)
                && needs.iter().all(|n| n == cut || graph.inputs.contains(n))
        })
        .ok_or_else(|| {
            SplitError("no vocoder input found (no upsampling after a convolution)".into())
        })?;
    let after = graph.closure(&graph.outputs, &latent);
    let before = graph.closure(std::slice::from_ref(&latent), "");
    let before_needs = graph.needs(&before);
    if let Some(other) = before_needs.iter().find(|n| !graph.inputs.contains(n)) {
        return fail(format!(
            "the encoder needs {other}, which is not a model input"
        ));
    }
    let inputs_of = |needs: &BTreeSet<String>| -> Result<Vec<Vec<u8>>, SplitError> {
        graph
            .inputs
            .iter()
            .filter(|i| needs.contains(*i))
            .map(|i| graph.value_info(i))
            .collect()
    };
    let latent_info = graph.value_info(&latent)?;
    let encoder_graph = graph.subgraph(
        &before,
        &inputs_of(&before_needs)?,
        std::slice::from_ref(&latent_info),
        &latent,
    )?;
    let after_needs = graph.needs(&after);
    let decoder_inputs: Vec<String> = graph
        .inputs
        .iter()
        .filter(|i| after_needs.contains(*i))
        .cloned()
        .collect();
    let mut inputs = vec![latent_info];
    inputs.extend(inputs_of(&after_needs)?);
    let outputs: Vec<Vec<u8>> = graph
        .outputs
        .iter()
        .map(|o| graph.value_info(o))
        .collect::<Result<_, _>>()?;
    let decoder_graph = graph.subgraph(&after, &inputs, &outputs, &latent)?;
    Ok(SplitModel {
        encoder: with_graph(&model_fields, &encoder_graph),
        decoder: with_graph(&model_fields, &decoder_graph),
        latent,
        decoder_inputs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut pos = 0;
            assert_eq!(varint(&buf, &mut pos).unwrap(), v);
            assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn broken_bytes_are_errors_not_panics() {
        for bad in [&[0x0a, 0x05, 1][..], &[0xff; 12], &[0x0b], &[0x3a, 0x80]] {
            assert!(split(bad).is_err(), "{bad:?}");
        }
        assert!(split(&[]).unwrap_err().to_string().contains("no graph"));
    }
}
