//! The sending half of a streaming response: what a server-streaming or bidirectional handler
//! writes its replies into.
//!
//! A [`ResponseSink`] does not touch h2 itself. It encodes (and compresses) each message in the
//! handler's task and passes the bytes over a channel of one slot to the call's own task, which
//! alone owns the h2 stream: it writes the bytes as the peer's flow-control window allows,
//! watches for the client's RST_STREAM, and enforces the deadline. So:
//!
//! * **backpressure**: `send` returns only once the previous message has been taken for
//!   writing, and the call task takes the next one only when the previous is fully written, so
//!   a client that stops reading stops the handler after at most two messages in memory;
//! * **cancellation**: when the client resets the stream, the call task drops the handler's
//!   future; a handler that kept the sink elsewhere sees `send` fail with CANCELLED.
//!
//! Response headers go out before the first message (or with the status, if there is none):
//! the header metadata and the compression must be chosen before the first `send`.

use std::marker::PhantomData;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::codec::{self, Message};
use crate::wire::compression::Encoding;
use crate::wire::metadata::Metadata;
use crate::wire::status::Status;

/// What a sink passes to the call task.
#[derive(Debug)]
pub(crate) enum SinkItem {
    /// Response headers: custom metadata and the `grpc-encoding` of the messages that follow.
    Headers(Metadata, Encoding),
    /// One encoded Length-Prefixed-Message.
    Message(Bytes),
    /// Trailing metadata, sent beside `grpc-status`.
    Trailers(Metadata),
}

/// Where a streaming handler sends its replies of type `M`.
pub struct ResponseSink<M> {
    tx: mpsc::Sender<SinkItem>,
    headers: Option<Metadata>,
    encoding: Encoding,
    client_accepts_gzip: bool,
    max_len: usize,
    _message: PhantomData<fn(M)>,
}

impl<M: Message> ResponseSink<M> {
    pub(crate) fn new(
        tx: mpsc::Sender<SinkItem>,
        encoding: Encoding,
        client_accepts_gzip: bool,
        max_len: usize,
    ) -> Self {
        let mut sink = ResponseSink {
            tx,
            headers: Some(Metadata::new()),
            encoding: Encoding::Identity,
            client_accepts_gzip,
            max_len,
            _message: PhantomData,
        };
        sink.set_compression(encoding);
        sink
    }

    /// Header metadata to send before the first message; `None` once headers have gone out.
    pub fn metadata_mut(&mut self) -> Option<&mut Metadata> {
        self.headers.as_mut()
    }

    /// Compress the replies with `encoding` if the client accepts it (its
    /// `grpc-accept-encoding`); effective only before the first message.
    pub fn set_compression(&mut self, encoding: Encoding) {
        if self.headers.is_some() {
            let accepted = encoding == Encoding::Identity || self.client_accepts_gzip;
            self.encoding = if accepted {
                encoding
            } else {
                Encoding::Identity
            };
        }
    }

    /// Sends one reply, compressed if compression is on; waits while the client is slow.
    pub async fn send(&mut self, message: &M::View<'_>) -> Result<(), Status> {
        self.send_with(message, true).await
    }

    /// Sends one reply, compressed only if `compress` and compression is on for the call
    /// (gRPC lets each message choose: the Compressed-Flag is per message).
    pub async fn send_with(&mut self, message: &M::View<'_>, compress: bool) -> Result<(), Status> {
        let encoding = if compress {
            self.encoding
        } else {
            Encoding::Identity
        };
        let bytes = codec::encode_with(message, self.max_len, encoding)?;
        self.flush_headers().await?;
        self.put(SinkItem::Message(bytes)).await
    }

    /// Sets the trailing metadata, sent beside `grpc-status` when the handler returns.
    pub async fn set_trailers(&mut self, trailers: Metadata) -> Result<(), Status> {
        self.put(SinkItem::Trailers(trailers)).await
    }

    /// Sends the response headers now, without a message.
    pub async fn flush_headers(&mut self) -> Result<(), Status> {
        match self.headers.take() {
            Some(metadata) => self.put(SinkItem::Headers(metadata, self.encoding)).await,
            None => Ok(()),
        }
    }

    async fn put(&self, item: SinkItem) -> Result<(), Status> {
        self.tx
            .send(item)
            .await
            .map_err(|_| Status::cancelled("the call was cancelled"))
    }
}
