//! A tokio codec for Wyoming framing, with limits on every part of a frame.
//!
//! A frame is a JSON header line ending in `\n`, then `data_length` bytes of JSON
//! data, then `payload_length` bytes of payload. The decoder checks each length
//! against [`Limits`] as soon as it is known, so an oversized frame is refused
//! before its bytes are waited for or buffered.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Deserialize;
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{Data, Frame};

/// The protocol version written into every header (the reference package's
/// version that this implementation is tested against).
pub const PROTOCOL_VERSION: &str = "1.10.2";

/// Upper bounds on the parts of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest header line, newline excluded.
    pub max_header: usize,
    /// Largest data block.
    pub max_data: usize,
    /// Largest payload.
    pub max_payload: usize,
}

impl Default for Limits {
    /// Sized for real traffic: the largest `info` is a few KiB; one second of
    /// 48 kHz stereo 32-bit audio is 384 KiB.
    fn default() -> Self {
        Self {
            max_header: 1 << 20,
            max_data: 1 << 20,
            max_payload: 4 << 20,
        }
    }
}

/// Why a byte stream is not valid Wyoming. After any of these the stream cannot
/// be resynchronised: the connection should say why and close.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The header line is longer than allowed (or no newline came in time).
    #[error("header line longer than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// The header announced a data block larger than allowed.
    #[error("data block of {length} bytes exceeds the limit of {limit} bytes")]
    DataTooLarge { length: u64, limit: usize },
    /// The header announced a payload larger than allowed.
    #[error("payload of {length} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge { length: u64, limit: usize },
    /// The header line is not a JSON object with a string `type`.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// The data block is not a JSON object.
    #[error("invalid data block: {0}")]
    InvalidData(String),
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl ProtocolError {
    /// A stable, machine-readable code for the `error` event sent to the peer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::HeaderTooLarge { .. } => "header-too-large",
            Self::DataTooLarge { .. } => "data-too-large",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::InvalidHeader(_) => "invalid-header",
            Self::InvalidData(_) => "invalid-data",
            Self::Truncated => "truncated-frame",
            Self::Io(_) => "io-error",
        }
    }
}

/// The header line as the decoder reads it. Unknown keys (`version`, and
/// whatever later protocol versions add) are ignored.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    data_length: Option<u64>,
    #[serde(default)]
    payload_length: Option<u64>,
}

/// The header line as the encoder writes it.
#[derive(serde::Serialize)]
struct HeaderOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_length: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_length: Option<usize>,
}

#[derive(Debug)]
enum State {
    /// Looking for the end of a header line; `scanned` bytes hold no newline.
    Header { scanned: usize },
    /// Header parsed; waiting for the data block and payload.
    Body {
        kind: String,
        data: Data,
        data_length: usize,
        payload_length: usize,
    },
}

/// Decodes and encodes [`Frame`]s.
#[derive(Debug)]
pub struct WyomingCodec {
    limits: Limits,
    state: State,
}

impl Default for WyomingCodec {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl WyomingCodec {
    /// A codec that enforces `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::Header { scanned: 0 },
        }
    }

    /// The limits this codec enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn parse_header(&self, line: &[u8]) -> Result<State, ProtocolError> {
        let header: Header = serde_json::from_slice(line)
            .map_err(|e| ProtocolError::InvalidHeader(e.to_string()))?;
        let data_length = header.data_length.unwrap_or(0);
        if data_length > self.limits.max_data as u64 {
            return Err(ProtocolError::DataTooLarge {
                length: data_length,
                limit: self.limits.max_data,
            });
        }
        let payload_length = header.payload_length.unwrap_or(0);
        if payload_length > self.limits.max_payload as u64 {
            return Err(ProtocolError::PayloadTooLarge {
                length: payload_length,
                limit: self.limits.max_payload,
            });
        }
        Ok(State::Body {
            kind: header.kind,
            data: header.data.unwrap_or_default(),
            // Both fit in usize: they are at most the limits checked above.
            data_length: data_length as usize,
            payload_length: payload_length as usize,
        })
    }
}

impl Decoder for WyomingCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        loop {
            match &mut self.state {
                State::Header { scanned } => {
                    let Some(offset) = src[*scanned..].iter().position(|&b| b == b'\n') else {
                        *scanned = src.len();
                        if src.len() > self.limits.max_header {
                            return Err(ProtocolError::HeaderTooLarge {
                                limit: self.limits.max_header,
                            });
                        }
                        src.reserve(1024);
                        return Ok(None);
                    };
                    let end = *scanned + offset;
                    if end > self.limits.max_header {
                        return Err(ProtocolError::HeaderTooLarge {
                            limit: self.limits.max_header,
                        });
                    }
                    let line = src.split_to(end + 1);
                    self.state = State::Header { scanned: 0 };
                    let line = line[..end].trim_ascii();
                    // Blank lines between frames are tolerated (hand-typed sessions).
                    if !line.is_empty() {
                        self.state = self.parse_header(line)?;
                    }
                }
                State::Body {
                    data_length,
                    payload_length,
                    ..
                } => {
                    let needed = *data_length + *payload_length;
                    if src.len() < needed {
                        src.reserve(needed - src.len());
                        return Ok(None);
                    }
                    let State::Body {
                        kind,
                        mut data,
                        data_length,
                        payload_length,
                    } = std::mem::replace(&mut self.state, State::Header { scanned: 0 })
                    else {
                        unreachable!("matched State::Body above")
                    };
                    if data_length > 0 {
                        let block: Data = serde_json::from_slice(&src[..data_length])
                            .map_err(|e| ProtocolError::InvalidData(e.to_string()))?;
                        src.advance(data_length);
                        // The data block wins over inline data, as in the reference.
                        data.extend(block);
                    }
                    let payload = src.split_to(payload_length).freeze();
                    return Ok(Some(Frame {
                        kind,
                        data,
                        payload,
                    }));
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.iter().all(u8::is_ascii_whitespace)
                && matches!(self.state, State::Header { .. }) =>
            {
                Ok(None)
            }
            None => Err(ProtocolError::Truncated),
        }
    }
}

impl Encoder<&Frame> for WyomingCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let data: Option<Bytes> = if frame.data.is_empty() {
            None
        } else {
            let mut w = BytesMut::new().writer();
            serde_json::to_writer(&mut w, &frame.data)
                .map_err(|e| ProtocolError::InvalidData(e.to_string()))?;
            Some(w.into_inner().freeze())
        };
        let header = HeaderOut {
            kind: &frame.kind,
            version: PROTOCOL_VERSION,
            data_length: data.as_ref().map(Bytes::len),
            payload_length: (!frame.payload.is_empty()).then_some(frame.payload.len()),
        };
        let mut w = dst.writer();
        serde_json::to_writer(&mut w, &header)
            .map_err(|e| ProtocolError::InvalidHeader(e.to_string()))?;
        let dst = w.into_inner();
        dst.reserve(1 + data.as_ref().map_or(0, Bytes::len) + frame.payload.len());
        dst.put_u8(b'\n');
        if let Some(data) = data {
            dst.put_slice(&data);
        }
        dst.put_slice(&frame.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn decode_all(codec: &mut WyomingCodec, bytes: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = codec.decode_eof(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    fn data(v: serde_json::Value) -> Data {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn round_trips_data_and_payload() {
        let frame = Frame {
            kind: "audio-chunk".into(),
            data: data(json!({"rate": 16000, "width": 2, "channels": 1})),
            payload: Bytes::from_static(&[1, 2, 3, 4]),
        };
        let mut codec = WyomingCodec::default();
        let mut buf = BytesMut::new();
        codec.encode(&frame, &mut buf).unwrap();
        let line_end = buf.iter().position(|&b| b == b'\n').unwrap();
        let header: serde_json::Value = serde_json::from_slice(&buf[..line_end]).unwrap();
        assert_eq!(header["type"], "audio-chunk");
        assert_eq!(header["payload_length"], 4);
        assert!(
            header.get("data").is_none(),
            "data travels in its own block"
        );
        assert_eq!(decode_all(&mut codec, &buf).unwrap(), vec![frame]);
    }

    #[test]
    fn merges_inline_data_with_data_block() {
        let bytes = b"{\"type\":\"x\",\"data\":{\"a\":1,\"b\":1},\"data_length\":7}\n{\"b\":2}";
        let frames = decode_all(&mut WyomingCodec::default(), bytes).unwrap();
        assert_eq!(frames[0].data, data(json!({"a": 1, "b": 2})));
    }

    #[test]
    fn ignores_unknown_header_keys_and_null_lengths() {
        let bytes = b"{\"type\":\"ping\",\"version\":\"9.9\",\"data_length\":null,\"x\":[1]}\n";
        let frames = decode_all(&mut WyomingCodec::default(), bytes).unwrap();
        assert_eq!(frames, vec![Frame::new("ping")]);
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let mut codec = WyomingCodec::default();
        let mut wire = BytesMut::new();
        for i in 0..3u8 {
            let frame = Frame {
                kind: format!("k{i}"),
                data: data(json!({"i": i, "text": "é ☃"})),
                payload: Bytes::from(vec![i; 10]),
            };
            codec.encode(&frame, &mut wire).unwrap();
        }
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].payload, Bytes::from(vec![2; 10]));
        assert_eq!(frames[1].data["text"], "é ☃");
    }

    #[test]
    fn refuses_oversized_parts_before_reading_them() {
        let limits = Limits {
            max_header: 64,
            max_data: 16,
            max_payload: 32,
        };
        let long = format!("{{\"type\":\"{}\"}}\n", "x".repeat(100));
        let cases: [(&[u8], &str); 4] = [
            (long.as_bytes(), "header-too-large"),
            (&[b'a'; 100], "header-too-large"),
            (b"{\"type\":\"x\",\"data_length\":17}\n", "data-too-large"),
            (
                b"{\"type\":\"x\",\"payload_length\":99999999999}\n",
                "payload-too-large",
            ),
        ];
        for (bytes, code) in cases {
            let err = decode_all(&mut WyomingCodec::new(limits), bytes).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
        }
    }

    #[test]
    fn refuses_malformed_frames() {
        let cases: [(&[u8], &str); 7] = [
            (b"not json\n", "invalid-header"),
            (b"[1,2]\n", "invalid-header"),
            (b"{\"data\":{}}\n", "invalid-header"),
            (b"{\"type\":7}\n", "invalid-header"),
            (b"{\"type\":\"x\",\"data_length\":-1}\n", "invalid-header"),
            (b"{\"type\":\"x\",\"data_length\":3}\n[1]", "invalid-data"),
            (
                b"{\"type\":\"x\",\"payload_length\":3}\nab",
                "truncated-frame",
            ),
        ];
        for (bytes, code) in cases {
            let err = decode_all(&mut WyomingCodec::default(), bytes).unwrap_err();
            assert_eq!(
                err.code(),
                code,
                "{}: {err}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn numbers_are_parsed_exactly_and_survive_a_round_trip() {
        // Found by fuzzing: serde_json's default float parsing may be off by one
        // ulp, so a number relayed through Athena reached the next peer changed.
        let big = "1844674473700000016890516183849648128";
        let tiny = "2.2250738585072011e-308";
        let bytes = format!("{{\"type\":\"x\",\"data\":{{\"big\":{big},\"tiny\":{tiny}}}}}\n");
        let mut codec = WyomingCodec::default();
        let frame = decode_all(&mut codec, bytes.as_bytes()).unwrap().remove(0);
        let exact = |digits: &str| Some(digits.parse::<f64>().unwrap());
        assert_eq!(frame.data["big"].as_f64(), exact(big));
        assert_eq!(frame.data["tiny"].as_f64(), exact(tiny));
        let mut wire = BytesMut::new();
        codec.encode(&frame, &mut wire).unwrap();
        assert_eq!(decode_all(&mut codec, &wire).unwrap(), vec![frame]);
    }

    #[test]
    fn tolerates_blank_lines_and_crlf() {
        let bytes = b"\n\r\n{\"type\":\"ping\"}\r\n\n";
        let frames = decode_all(&mut WyomingCodec::default(), bytes).unwrap();
        assert_eq!(frames, vec![Frame::new("ping")]);
    }
}
