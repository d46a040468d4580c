//! Speech as audio events: the sentences of a reply, each a piece of PCM,
//! framed as `audio-start`, `audio-chunk`…, `audio-stop`. Used wherever
//! Athena speaks Wyoming: the tts service's `synthesize` answers and the
//! orchestrator's replies to satellites.

use bytes::Bytes;

use crate::Event;
use crate::event::{AudioChunk, AudioFormat, AudioStart, AudioStop};

/// Samples per `audio-chunk` (as wyoming-piper sends them).
pub const SAMPLES_PER_CHUNK: usize = 1024;

/// How a reply's sentences are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One `audio-start` … `audio-stop` for the whole reply.
    Whole,
    /// One per sentence (streaming synthesis).
    PerSentence,
}

/// Turns the audio of numbered sentences into audio events.
#[derive(Debug)]
pub struct SpeechFramer {
    framing: Framing,
    /// The sentence whose audio is open (between start and stop).
    open: Option<u32>,
}

impl SpeechFramer {
    /// A framer with nothing open yet.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            open: None,
        }
    }

    /// The events for `audio` (PCM in `format`) of sentence `sentence`:
    /// an `audio-start` where one is due, then chunks of
    /// [`SAMPLES_PER_CHUNK`] samples.
    pub fn segment(&mut self, sentence: u32, format: AudioFormat, audio: &Bytes) -> Vec<Event> {
        let mut events = Vec::new();
        let new_sentence = self.open != Some(sentence);
        if new_sentence && (self.open.is_none() || self.framing == Framing::PerSentence) {
            events.extend(self.close());
            events.push(
                AudioStart {
                    format,
                    timestamp: None,
                    extra: Default::default(),
                }
                .into(),
            );
        }
        self.open = Some(sentence);
        let frame = usize::from(format.width) * usize::from(format.channels);
        let bytes_per_chunk = (SAMPLES_PER_CHUNK * frame).max(1);
        events.extend(audio.chunks(bytes_per_chunk).map(|chunk| {
            AudioChunk {
                format,
                timestamp: None,
                audio: audio.slice_ref(chunk),
                extra: Default::default(),
            }
            .into()
        }));
        events
    }

    /// The `audio-stop` that closes what is open, if anything is.
    pub fn close(&mut self) -> Option<Event> {
        self.open.take().map(|_| AudioStop::default().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<&str> {
        events.iter().map(Event::kind).collect()
    }

    #[test]
    fn whole_replies_open_once_and_sentences_open_each() {
        let format = AudioFormat::SPEECH;
        let audio = Bytes::from(vec![0u8; 2 * SAMPLES_PER_CHUNK * 2 + 10]);
        let mut whole = SpeechFramer::new(Framing::Whole);
        let mut events = whole.segment(0, format, &audio);
        events.extend(whole.segment(1, format, &audio));
        events.extend(whole.close());
        assert_eq!(
            kinds(&events),
            [
                "audio-start",
                "audio-chunk",
                "audio-chunk",
                "audio-chunk",
                "audio-chunk",
                "audio-chunk",
                "audio-chunk",
                "audio-stop"
            ]
        );
        let mut per = SpeechFramer::new(Framing::PerSentence);
        let mut events = per.segment(0, format, &audio.slice(..10));
        events.extend(per.segment(1, format, &audio.slice(..10)));
        events.extend(per.close());
        assert_eq!(
            kinds(&events),
            [
                "audio-start",
                "audio-chunk",
                "audio-stop",
                "audio-start",
                "audio-chunk",
                "audio-stop"
            ]
        );
        assert!(per.close().is_none());
    }
}
