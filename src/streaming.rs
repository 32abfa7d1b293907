//! A stream of received messages: the request stream a server handler reads, or the response
//! stream a client reads.
//!
//! [`Streaming`] turns an h2 [`RecvStream`] (DATA frames, then END_STREAM or trailers) into
//! messages: bytes go through the [`MessageDecoder`],
//! compressed messages are inflated under the receive limit, and each message is handed out as
//! a [`Decoded`] that owns its bytes and lends borrowed views.
//!
//! **Backpressure follows HTTP/2 flow control.** Received bytes are given back to the peer's
//! window (`release_capacity`) only when the reader asks for more and the queued bytes do not
//! complete a message. A reader that stops reading therefore stops releasing, the window runs
//! out, and the peer stops sending: at most one window plus one message is ever queued.
//!
//! On a client the stream ends with trailers: `grpc-status` there turns into `Ok(None)` (OK)
//! or `Err(status)`, and the trailing metadata is kept for [`Streaming::trailers`].

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use h2::RecvStream;
use tokio::time::Instant;

use crate::codec::{self, Decoded, Message};
use crate::wire::compression::Encoding;
use crate::wire::frame::MessageDecoder;
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};

/// Which end of a call a stream is read at; it decides how the stream ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// A server reading requests: END_STREAM ends the stream.
    Server,
    /// A client reading responses: the trailers carry the call's status.
    Client,
}

/// A stream of received messages of type `M`.
pub struct Streaming<M> {
    body: Option<RecvStream>,
    decoder: MessageDecoder,
    encoding: Option<Encoding>,
    max_len: usize,
    /// Bytes received and not yet given back to the peer's flow-control window.
    unreleased: usize,
    side: Side,
    /// Set once the stream has ended (with the status it ended with).
    ended: Option<Result<(), Status>>,
    trailers: Metadata,
    deadline: Option<Instant>,
    /// Counts received bytes for interceptors, when a server has any.
    counter: Option<Arc<AtomicU64>>,
    _message: PhantomData<fn() -> M>,
}

impl<M: Message> std::fmt::Debug for Streaming<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("message", &M::NAME)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<M: Message> Streaming<M> {
    pub(crate) fn new(
        body: RecvStream,
        side: Side,
        encoding: Option<Encoding>,
        max_len: usize,
        deadline: Option<Instant>,
    ) -> Self {
        Streaming {
            body: Some(body),
            decoder: MessageDecoder::new(max_len),
            encoding,
            max_len,
            unreleased: 0,
            side,
            ended: None,
            trailers: Metadata::new(),
            deadline,
            counter: None,
            _message: PhantomData,
        }
    }

    /// Counts the bytes received into `counter` (for interceptors).
    pub(crate) fn counting(mut self, counter: Option<Arc<AtomicU64>>) -> Self {
        self.counter = counter;
        self
    }

    /// A client stream that already ended with `status` (a Trailers-Only response).
    pub(crate) fn ended(status: Result<(), Status>, trailers: Metadata) -> Self {
        Streaming {
            body: None,
            decoder: MessageDecoder::new(0),
            encoding: None,
            max_len: 0,
            unreleased: 0,
            side: Side::Client,
            ended: Some(status),
            trailers,
            deadline: None,
            counter: None,
            _message: PhantomData,
        }
    }

    /// The next message; `Ok(None)` when the stream ended cleanly (on a client: with status
    /// OK); `Err` for a broken stream, a reset, a deadline, or a non-OK status.
    pub async fn message(&mut self) -> Result<Option<Decoded<M>>, Status> {
        match self.deadline {
            None => self.next_message().await,
            Some(deadline) => match tokio::time::timeout_at(deadline, self.next_message()).await {
                // A server whose deadline passed may cancel the stream before ours fires: the
                // spec asks clients to report that as DEADLINE_EXCEEDED, not CANCELLED.
                Ok(Err(s)) if s.code() == Code::Cancelled && Instant::now() >= deadline => {
                    let status = Status::deadline_exceeded("deadline exceeded");
                    self.ended = Some(Err(status.clone()));
                    Err(status)
                }
                Ok(r) => r,
                Err(_) => {
                    // Dropping our handle lets h2 reset the stream once the sender is gone too.
                    self.body = None;
                    let status = Status::deadline_exceeded("deadline exceeded");
                    self.ended = Some(Err(status.clone()));
                    Err(status)
                }
            },
        }
    }

    /// Trailing metadata (client side), available once the stream has ended.
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    async fn next_message(&mut self) -> Result<Option<Decoded<M>>, Status> {
        loop {
            if let Some(ended) = &self.ended {
                return ended.clone().map(|()| None);
            }
            match self.decoder.next_message() {
                Ok(Some(wire)) => {
                    let compressed = wire.compressed;
                    let payload = codec::open(wire, self.encoding, self.max_len)
                        .and_then(|p| Decoded::received(p, compressed));
                    return match payload {
                        Ok(m) => Ok(Some(m)),
                        Err(status) => Err(self.fail(status)),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(e.into())),
            }
            let Some(body) = self.body.as_mut() else {
                return Err(self.fail(Status::cancelled("stream closed")));
            };
            // The queued bytes do not make a message: give their window back, then wait.
            if self.unreleased > 0 {
                let _ = body.flow_control().release_capacity(self.unreleased);
                self.unreleased = 0;
            }
            match body.data().await {
                Some(Ok(chunk)) => {
                    self.unreleased += chunk.len();
                    if let Some(counter) = &self.counter {
                        counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                    self.decoder.push(chunk);
                }
                Some(Err(e)) => return Err(self.fail(Status::from_h2(&e))),
                None => {
                    let end = self.end_of_stream().await;
                    self.ended = Some(end);
                }
            }
        }
    }

    async fn end_of_stream(&mut self) -> Result<(), Status> {
        self.decoder.finish()?;
        if self.side == Side::Server {
            return Ok(());
        }
        let Some(body) = self.body.as_mut() else {
            return Err(Status::cancelled("stream closed"));
        };
        let trailers = body
            .trailers()
            .await
            .map_err(|e| Status::from_h2(&e))?
            .ok_or_else(|| Status::internal("response ended without trailers"))?;
        let status = status_from_trailers(&trailers);
        if let Ok(metadata) = Metadata::from_headers(trailers) {
            self.trailers = metadata;
        }
        match status.code() {
            Code::Ok => Ok(()),
            _ => Err(status),
        }
    }

    fn fail(&mut self, status: Status) -> Status {
        self.ended = Some(Err(status.clone()));
        status
    }
}

/// The status carried by a trailer block (or Trailers-Only headers). A block without
/// `grpc-status` is a broken response: UNKNOWN, the status the spec asks clients to synthesize.
pub(crate) fn status_from_trailers(headers: &http::HeaderMap) -> Status {
    match headers.get("grpc-status") {
        Some(code) => Status::from_headers(
            code.as_bytes(),
            headers.get("grpc-message").map(http::HeaderValue::as_bytes),
        ),
        None => Status::unknown("response has no grpc-status"),
    }
}
