//! Client calls on the wire, of all four kinds, and reading their outcome back to a [`Status`].
//!
//! The request is one HEADERS frame (`:method POST`, `:scheme`, `:path`, `:authority`,
//! `grpc-timeout` when there is a deadline, `content-type: application/grpc`, `te: trailers`,
//! `grpc-encoding` / `grpc-accept-encoding`, then the custom metadata), then the messages in
//! DATA frames, the last with END_STREAM.
//!
//! The response can take three shapes (gRPC over HTTP/2, "Responses"):
//! * HEADERS, DATA…, trailers: the message(s), then `grpc-status` in the trailers;
//! * Trailers-Only: one HEADERS frame with END_STREAM holding `grpc-status`;
//! * not gRPC at all (a proxy's 404, a 503 page): the HTTP status is mapped to a code
//!   (`doc/http-grpc-status-mapping.md`), as [`Status::from_http_status`] does.
//!
//! A deadline bounds the whole call: when it passes, the call fails with DEADLINE_EXCEEDED and
//! the stream is reset with CANCEL, which is how a client cancels ("Client Cancellation").
//! Dropping a call's handles before it completes cancels it the same way (h2 resets a stream
//! whose handles are all gone).
//!
//! | kind | generated client method returns |
//! |---|---|
//! | unary | `Response<Decoded<Resp>>` |
//! | server streaming | `Response<Streaming<Resp>>` |
//! | client streaming | `(RequestSink<Req>, PendingResponse<Resp>)`; finish with `single()` |
//! | bidirectional | `(RequestSink<Req>, PendingResponse<Resp>)`; read with `streaming()` |

use std::marker::PhantomData;

use bytes::Bytes;
use h2::client::ResponseFuture;
use h2::SendStream;
use http::header::{HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::{Method, Uri};
use quick_protobuf::MessageWrite;
use tokio::time::Instant;

use crate::call::{Request, Response};
use crate::client::channel::Channel;
use crate::codec::{self, Decoded, Message};
use crate::streaming::{status_from_trailers, Side, Streaming};
use crate::wire::compression::{Encoding, ACCEPT_ENCODING};
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};
use crate::wire::timeout;

const USER_AGENT_VALUE: &str = concat!("grpc-rust-rawgrpc/", env!("CARGO_PKG_VERSION"));

impl Channel {
    /// Makes a unary call to `path` (`/package.Service/Method`).
    ///
    /// Generated clients call this; it is public so a method can be called by path alone.
    pub async fn unary<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Response<Decoded<Resp>>, Status>
    where
        Req: MessageWrite,
        Resp: Message,
    {
        let deadline = deadline_of(&request);
        with_deadline(deadline, async {
            let pending = self.send_one(path, request, deadline).await?;
            pending.single().await
        })
        .await
    }

    /// Makes a server-streaming call: one request, a stream of responses.
    pub async fn server_streaming<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Response<Streaming<Resp>>, Status>
    where
        Req: MessageWrite,
        Resp: Message,
    {
        let deadline = deadline_of(&request);
        with_deadline(deadline, async {
            let pending = self.send_one(path, request, deadline).await?;
            pending.streaming().await
        })
        .await
    }

    /// Starts a client-streaming or bidirectional call: send requests into the
    /// [`RequestSink`], read the reply from the [`PendingResponse`]. `request` carries the
    /// metadata, timeout and compression of the call.
    pub async fn streaming<Req, Resp>(
        &self,
        path: &str,
        request: Request<()>,
    ) -> Result<(RequestSink<Req>, PendingResponse<Resp>), Status>
    where
        Req: Message,
        Resp: Message,
    {
        let deadline = deadline_of(&request);
        let encoding = request.compression().unwrap_or(Encoding::Identity);
        let (_, metadata, timeout) = request.into_parts();
        let (stream, response) =
            with_deadline(deadline, self.open(path, &metadata, timeout, encoding)).await?;
        let sink = RequestSink {
            stream,
            encoding,
            max_len: self.config.max_send_message_len,
            deadline,
            _message: PhantomData,
        };
        Ok((sink, self.pending(response, deadline)))
    }

    /// Opens the stream and sends the single request message with END_STREAM.
    async fn send_one<Req: MessageWrite, Resp: Message>(
        &self,
        path: &str,
        request: Request<Req>,
        deadline: Option<Instant>,
    ) -> Result<PendingResponse<Resp>, Status> {
        let encoding = request.compression().unwrap_or(Encoding::Identity);
        let (message, metadata, timeout) = request.into_parts();
        let encoded = codec::encode_with(&message, self.config.max_send_message_len, encoding)?;
        let (mut stream, response) = self.open(path, &metadata, timeout, encoding).await?;
        // One message: h2 queues what the window does not take yet, bounded by the send limit.
        // A server may answer (and close the stream) before it has read the request, e.g.
        // UNIMPLEMENTED for an unknown method; then sending fails, and the answer, read next,
        // is what the call reports.
        if let Err(e) = stream.send_data(encoded, true) {
            tracing::debug!(error = %e, "request not sent; reading the server's answer");
        }
        Ok(self.pending(response, deadline))
    }

    fn pending<Resp: Message>(
        &self,
        response: ResponseFuture,
        deadline: Option<Instant>,
    ) -> PendingResponse<Resp> {
        PendingResponse {
            response,
            deadline,
            max_len: self.config.max_receive_message_len,
            _message: PhantomData,
        }
    }

    /// Sends the request headers and opens the stream.
    async fn open(
        &self,
        path: &str,
        metadata: &Metadata,
        timeout: Option<std::time::Duration>,
        encoding: Encoding,
    ) -> Result<(SendStream<Bytes>, ResponseFuture), Status> {
        let head = self.request_head(path, metadata, timeout, encoding)?;
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| Status::from_h2(&e))?;
        let (response, stream) = send
            .send_request(head, false)
            .map_err(|e| Status::from_h2(&e))?;
        Ok((stream, response))
    }

    fn request_head(
        &self,
        path: &str,
        metadata: &Metadata,
        timeout: Option<std::time::Duration>,
        encoding: Encoding,
    ) -> Result<http::Request<()>, Status> {
        let uri = Uri::builder()
            .scheme(self.scheme)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|_| Status::internal(format!("invalid method path {path:?}")))?;
        let mut head = http::Request::new(());
        *head.method_mut() = Method::POST;
        *head.uri_mut() = uri;
        let headers = head.headers_mut();
        // The spec asks for grpc-timeout right after the pseudo-headers.
        if let Some(t) = timeout {
            if let Ok(v) = HeaderValue::from_str(&timeout::format(t)) {
                headers.insert("grpc-timeout", v);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        if encoding != Encoding::Identity {
            headers.insert("grpc-encoding", HeaderValue::from_static(encoding.name()));
        }
        headers.insert(
            "grpc-accept-encoding",
            HeaderValue::from_static(ACCEPT_ENCODING),
        );
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in metadata.iter() {
            headers.append(name, value.clone());
        }
        Ok(head)
    }
}

fn deadline_of<T>(request: &Request<T>) -> Option<Instant> {
    request.timeout().map(|t| Instant::now() + t)
}

/// Runs `call` until `deadline`; past it, the call is dropped (resetting its stream) and
/// fails with DEADLINE_EXCEEDED.
async fn with_deadline<T>(
    deadline: Option<Instant>,
    call: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        None => call.await,
        Some(d) => tokio::time::timeout_at(d, call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded"))),
    }
}

/// The sending half of a client-streaming or bidirectional call.
pub struct RequestSink<M> {
    stream: SendStream<Bytes>,
    encoding: Encoding,
    max_len: usize,
    deadline: Option<Instant>,
    _message: PhantomData<fn(M)>,
}

impl<M: Message> std::fmt::Debug for RequestSink<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSink")
            .field("message", &M::NAME)
            .finish()
    }
}

impl<M: Message> RequestSink<M> {
    /// Sends one request, compressed if the call asked for compression. Waits while the
    /// server's flow-control window is closed.
    pub async fn send(&mut self, message: &M::View<'_>) -> Result<(), Status> {
        self.send_with(message, true).await
    }

    /// Sends one request, compressed only if `compress` and the call has an encoding (each
    /// message sets its own Compressed-Flag).
    pub async fn send_with(&mut self, message: &M::View<'_>, compress: bool) -> Result<(), Status> {
        let encoding = if compress {
            self.encoding
        } else {
            Encoding::Identity
        };
        let bytes = codec::encode_with(message, self.max_len, encoding)?;
        let result =
            with_deadline(self.deadline, send_flow_controlled(&mut self.stream, bytes)).await;
        if matches!(&result, Err(s) if s.code() == Code::DeadlineExceeded) {
            self.stream.send_reset(h2::Reason::CANCEL);
        }
        result
    }

    /// Half-closes the call: no more requests (an empty DATA frame with END_STREAM). If the
    /// server has already ended the stream there is nothing to close; the call's outcome is
    /// in its response either way.
    pub fn finish(mut self) -> Result<(), Status> {
        if let Err(e) = self.stream.send_data(Bytes::new(), true) {
            tracing::debug!(error = %e, "half-close after the server ended the stream");
        }
        Ok(())
    }

    /// Cancels the call: RST_STREAM with CANCEL.
    pub fn cancel(mut self) {
        self.stream.send_reset(h2::Reason::CANCEL);
    }
}

/// Writes `data` as the peer's window allows: never more than h2 has granted, so a server
/// that does not read makes the sender wait instead of buffering without bound.
async fn send_flow_controlled(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
) -> Result<(), Status> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(0)) => tokio::task::yield_now().await,
            Some(Ok(n)) => {
                let chunk = data.split_to(n.min(data.len()));
                stream
                    .send_data(chunk, false)
                    .map_err(|e| Status::from_h2(&e))?;
            }
            Some(Err(e)) => return Err(Status::from_h2(&e)),
            None => return Err(Status::unavailable("the server closed the stream")),
        }
    }
    Ok(())
}

/// The response of a call whose request was sent, not yet received.
pub struct PendingResponse<M> {
    response: ResponseFuture,
    deadline: Option<Instant>,
    max_len: usize,
    _message: PhantomData<fn() -> M>,
}

impl<M: Message> std::fmt::Debug for PendingResponse<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingResponse")
            .field("message", &M::NAME)
            .finish()
    }
}

impl<M: Message> PendingResponse<M> {
    /// Waits for the response headers and returns the stream of response messages.
    pub async fn streaming(self) -> Result<Response<Streaming<M>>, Status> {
        let response = with_deadline(self.deadline, async {
            self.response.await.map_err(|e| Status::from_h2(&e))
        })
        .await?;
        let (parts, body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(Status::from_http_status(parts.status.as_u16()));
        }
        let is_grpc = parts
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if !is_grpc {
            return Err(Status::unknown(
                "response content-type is not application/grpc",
            ));
        }
        if body.is_end_stream() {
            // Trailers-Only: the status is in the headers, and there is no message.
            let status = status_from_trailers(&parts.headers);
            if status.code() != Code::Ok {
                return Err(status);
            }
            let trailers = Metadata::from_headers(parts.headers)?;
            return Ok(Response::new(Streaming::ended(Ok(()), trailers)));
        }
        let encoding = match parts.headers.get("grpc-encoding") {
            None => None,
            Some(v) => Some(Encoding::from_name(v.as_bytes()).ok_or_else(|| {
                Status::internal(format!("response uses unsupported grpc-encoding {v:?}"))
            })?),
        };
        let metadata = Metadata::from_headers(parts.headers)?;
        let stream = Streaming::new(body, Side::Client, encoding, self.max_len, self.deadline);
        Ok(Response::from_parts(stream, metadata))
    }

    /// Waits for a single response message and the status (unary and client streaming).
    pub async fn single(self) -> Result<Response<Decoded<M>>, Status> {
        let (mut stream, metadata, _) = self.streaming().await?.into_parts();
        let message = stream
            .message()
            .await?
            .ok_or_else(|| Status::internal("server sent OK without a response message"))?;
        if stream.message().await?.is_some() {
            return Err(Status::internal(
                "more than one response message for a unary response",
            ));
        }
        let mut response = Response::from_parts(message, metadata);
        response.set_trailers(stream.trailers().clone());
        Ok(response)
    }
}
