//! Fuzzes the Wyoming decoder with arbitrary bytes from a peer.
//!
//! Properties checked for every input:
//! - decoding never panics, whatever the bytes;
//! - the frames (and the error, if any) do not depend on how the bytes are split
//!   into reads: all at once, one byte at a time, or chunks of an input-derived size;
//! - every decoded frame survives encoding and decoding again unchanged;
//! - every frame that parses as a typed [`Event`] gives the same event back after
//!   a trip through [`Frame`] and the codec.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use wyoming::{Event, Frame, Limits, WyomingCodec};

/// Small limits, so that inputs reach them (`scripts/fuzz.sh` lets inputs grow to
/// 8 KiB), yet large enough for the seeds (an `info` data block is 3.4 KiB).
const LIMITS: Limits = Limits {
    max_header: 1 << 10,
    max_data: 4 << 10,
    max_payload: 2 << 10,
};

/// Limits for decoding re-encoded frames: re-encoding may legitimately grow a frame
/// (inline data moves to the data block, `version` is added), so only the content
/// is compared, not the size.
const ROOMY: Limits = Limits {
    max_header: 16 << 20,
    max_data: 16 << 20,
    max_payload: 16 << 20,
};

/// What a peer's bytes decode to: the frames, then the error code that ended the
/// stream, if any.
type Outcome = (Vec<Frame>, Option<&'static str>);

/// Feeds `input` to a fresh codec in reads of `chunk` bytes, then ends the stream.
fn decode_in_chunks(input: &[u8], chunk: usize) -> Outcome {
    let mut codec = WyomingCodec::new(LIMITS);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.code())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e.code())),
        }
    }
}

/// Encodes `frame` and decodes it again: it must come back unchanged, alone.
fn assert_round_trip(frame: &Frame) {
    let mut codec = WyomingCodec::new(ROOMY);
    let mut wire = BytesMut::new();
    codec
        .encode(frame, &mut wire)
        .expect("a decoded frame encodes");
    let back = codec
        .decode_eof(&mut wire)
        .expect("an encoded frame decodes");
    assert_eq!(back.as_ref(), Some(frame), "frame changed on a round trip");
    assert!(
        wire.is_empty(),
        "encoding left {} bytes undecoded",
        wire.len()
    );
    assert!(matches!(codec.decode_eof(&mut wire), Ok(None)));
}

/// A typed event must survive the trip to a frame and back.
fn assert_event_round_trip(frame: &Frame) {
    let Ok(event) = Event::try_from(frame.clone()) else {
        return;
    };
    let typed = Frame::from(event.clone());
    assert_round_trip(&typed);
    let back = Event::try_from(typed).expect("a frame made from an event parses");
    assert_eq!(back, event, "event changed on a round trip");
}

/// FNV-1a, to pick a read size from the input itself.
fn fnv(input: &[u8]) -> usize {
    input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as usize
}

fuzz_target!(|input: &[u8]| {
    let whole = decode_in_chunks(input, input.len().max(1));
    for chunk in [1, 1 + fnv(input) % 97] {
        assert_eq!(
            decode_in_chunks(input, chunk),
            whole,
            "reads of {chunk} bytes"
        );
    }
    for frame in &whole.0 {
        assert_round_trip(frame);
        assert_event_round_trip(frame);
    }
});
