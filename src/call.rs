//! What a call carries besides its message: [`Request`] and [`Response`].
//!
//! A gRPC request is a message plus request metadata and an optional timeout; a response is a
//! message plus response metadata. Both sides of the stack use these wrappers: a handler
//! receives a `Request<M>` and returns a `Response<M>`; a client sends a `Request<M>` and gets
//! back a `Response<Decoded<M>>`.

use std::time::Duration;

use bytes::Bytes;

use crate::codec::{Encoded, Message};
use crate::wire::compression::Encoding;
use crate::wire::metadata::Metadata;

/// A request message with its metadata and timeout.
#[derive(Clone, Debug, Default)]
pub struct Request<T> {
    message: T,
    metadata: Metadata,
    timeout: Option<Duration>,
    compression: Option<Encoding>,
    compressed: bool,
}

impl<T> Request<T> {
    /// A request carrying `message`, no metadata, no timeout.
    pub fn new(message: T) -> Self {
        Request::from_parts(message, Metadata::new(), None)
    }

    /// Assembles a request from its parts.
    pub fn from_parts(message: T, metadata: Metadata, timeout: Option<Duration>) -> Self {
        Request {
            message,
            metadata,
            timeout,
            compression: None,
            compressed: false,
        }
    }

    /// The message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Takes the message out.
    pub fn into_message(self) -> T {
        self.message
    }

    /// The custom metadata (request headers the application sent).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The custom metadata, to add entries before sending.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The time the caller allows for the call (`grpc-timeout`), if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Sets the time allowed for the call; the client sends it as `grpc-timeout` and gives up
    /// with DEADLINE_EXCEEDED when it passes.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Splits the request into message, metadata and timeout.
    pub fn into_parts(self) -> (T, Metadata, Option<Duration>) {
        (self.message, self.metadata, self.timeout)
    }

    /// Client side: compress the request message(s) with `encoding` (sent as `grpc-encoding`).
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// The encoding the client asked for with [`set_compression`](Self::set_compression).
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Server side: whether the request message arrived compressed (its Compressed-Flag).
    pub fn was_compressed(&self) -> bool {
        self.compressed
    }

    pub(crate) fn set_was_compressed(&mut self, compressed: bool) {
        self.compressed = compressed;
    }

    /// Replaces the message, keeping metadata, timeout and compression settings.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            message: f(self.message),
            metadata: self.metadata,
            timeout: self.timeout,
            compression: self.compression,
            compressed: self.compressed,
        }
    }
}

/// Anything a client method accepts as a request: a bare message or a [`Request`].
pub trait IntoRequest<T> {
    /// Wraps the value as a request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// A response message with its metadata.
#[derive(Clone, Debug, Default)]
pub struct Response<T> {
    message: T,
    /// The message already encoded (see [`Response::encoded`]); `message` is then a default.
    encoded: Option<Bytes>,
    metadata: Metadata,
    trailers: Metadata,
    compression: Option<Encoding>,
}

impl<T> Response<T> {
    /// A response carrying `message` and no metadata.
    pub fn new(message: T) -> Self {
        Response::from_parts(message, Metadata::new())
    }

    /// Assembles a response from its parts.
    pub fn from_parts(message: T, metadata: Metadata) -> Self {
        Response {
            message,
            encoded: None,
            metadata,
            trailers: Metadata::new(),
            compression: None,
        }
    }

    /// A response whose message was encoded beforehand: the server sends the kept bytes as
    /// they are, without encoding or copying them. [`message`](Self::message) then returns a
    /// default value; the bytes are in [`encoded_message`](Self::encoded_message).
    pub fn encoded<'a, M>(message: Encoded<M>) -> Self
    where
        M: Message<View<'a> = T>,
        T: Default,
    {
        let mut response = Response::new(T::default());
        response.encoded = Some(message.payload().clone());
        response
    }

    /// The pre-encoded message of a response made by [`encoded`](Self::encoded).
    pub fn encoded_message(&self) -> Option<&Bytes> {
        self.encoded.as_ref()
    }

    /// The message.
    pub fn message(&self) -> &T {
        &self.message
    }

    /// Takes the message out.
    pub fn into_message(self) -> T {
        self.message
    }

    /// The response metadata (sent as response headers).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The response metadata, to add entries before the response is sent.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Trailing metadata: sent after the message, beside `grpc-status` (server side), or
    /// received there (client side).
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    /// Trailing metadata, to add entries before the response is sent.
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailers
    }

    pub(crate) fn set_trailers(&mut self, trailers: Metadata) {
        self.trailers = trailers;
    }

    /// Server side: compress the reply with `encoding`, if the client accepts it (its
    /// `grpc-accept-encoding`); otherwise it is sent uncompressed.
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// The compression asked for with [`set_compression`](Self::set_compression).
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Splits the response into message, header metadata and trailing metadata.
    pub fn into_parts(self) -> (T, Metadata, Metadata) {
        (self.message, self.metadata, self.trailers)
    }
}
