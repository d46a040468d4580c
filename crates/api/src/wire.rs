//! Conversions shared by the gRPC sides of several interfaces.

use std::sync::{Arc, Mutex};

use athena_audio::AudioFormat;
use athena_proto::audio::v1 as pb;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::Error;

/// An empty string on the wire means "not given".
pub(crate) fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A validated format from the wire; missing or nonsense formats are refused.
pub(crate) fn format_from_wire(format: Option<pb::AudioFormat>) -> Result<AudioFormat, Error> {
    let f = format.ok_or_else(|| Error::invalid("the audio format is missing"))?;
    Ok(AudioFormat::new(f.rate, f.width, f.channels)?)
}

pub(crate) fn format_to_wire(f: AudioFormat) -> pb::AudioFormat {
    pb::AudioFormat {
        rate: f.rate(),
        width: f.width(),
        channels: f.channels(),
    }
}

/// The error that ended a request stream early, to report on the response side.
///
/// A gRPC request stream cannot carry an error: when the caller's audio or
/// text fails, the request stream ends and the error is kept here, so that the
/// caller receives it in place of the response that follows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failure(Arc<Mutex<Option<Error>>>);

impl Failure {
    /// A gRPC request stream: `first`, then `items` wrapped by `wrap`, up to
    /// the first error, which is kept. A task pumps the items through a
    /// channel (tonic needs a `Sync` stream); it stops when the call goes away.
    pub(crate) fn request_stream<I, M>(
        &self,
        first: M,
        mut items: BoxStream<'static, Result<I, Error>>,
        wrap: fn(I) -> M,
    ) -> ReceiverStream<M>
    where
        I: Send + 'static,
        M: Send + 'static,
    {
        let (tx, rx) = mpsc::channel(16);
        let slot = self.clone();
        tokio::spawn(async move {
            if tx.send(first).await.is_err() {
                return;
            }
            loop {
                let item = tokio::select! {
                    () = tx.closed() => return,
                    item = items.next() => item,
                };
                match item {
                    Some(Ok(item)) => {
                        if tx.send(wrap(item)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        *slot.lock() = Some(e);
                        return;
                    }
                    None => return,
                }
            }
        });
        ReceiverStream::new(rx)
    }

    /// The kept error, if any, in place of `result`.
    pub(crate) fn check<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        match self.lock().take() {
            Some(e) => Err(e),
            None => result,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Error>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
