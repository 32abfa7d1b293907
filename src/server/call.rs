//! One HTTP/2 stream as one gRPC call, on the server.
//!
//! h2 hands the server a request head, a body ([`h2::RecvStream`]) and a handle to respond
//! with ([`h2::server::SendResponse`]). This module applies gRPC over HTTP/2 to them:
//!
//! 1. **Request-Headers** (checked by [`accept`]): `:method` must be POST (else HTTP 405) and
//!    `content-type` must be `application/grpc` or `application/grpc+proto` (else HTTP 415,
//!    "so that other HTTP/2 clients do not read a gRPC error as a success"). `grpc-timeout`
//!    becomes a deadline; a `grpc-encoding` other than `identity` is refused with
//!    UNIMPLEMENTED. `:path` picks the handler; an unknown one is UNIMPLEMENTED.
//! 2. **Length-Prefixed-Messages** from DATA frames go through the
//!    [`MessageDecoder`](crate::wire::frame::MessageDecoder). Flow-control capacity is given
//!    back to the peer as each DATA frame is taken in: h2 does not do it on its own, and a
//!    client would stall after one window.
//! 3. **Response**: on success, HEADERS (`:status 200`, `content-type`), one DATA frame with
//!    the encoded reply, then trailers with `grpc-status: 0`. An error before any message is
//!    sent as **Trailers-Only**: one HEADERS frame with END_STREAM carrying `grpc-status` and
//!    `grpc-message`. If the client has not finished sending when we finish, the stream must
//!    then be reset with NO_ERROR ("Early Server Closure"). h2 does exactly that when the
//!    call's handles are dropped, *after* the queued frames are flushed; an explicit
//!    `send_reset` here would instead discard the not-yet-written Trailers-Only frame.
//!
//! A unary method takes exactly one request message: none, or a second one, is INTERNAL (as
//! grpc-go and grpc-java answer); a message that does not decode is INTERNAL; a message over
//! the receive limit is RESOURCE_EXHAUSTED.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use tracing::{debug, Instrument};

use crate::call::Request;
use crate::codec;
use crate::server::connection::Shared;
use crate::server::router::{UnaryMethod, View};
use crate::wire::frame::{MessageDecoder, WireMessage};
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};
use crate::wire::timeout;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_TIMEOUT: &str = "grpc-timeout";
const GRPC_ENCODING: &str = "grpc-encoding";
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
/// The encodings this server accepts for request messages.
const ACCEPTED_ENCODINGS: HeaderValue = HeaderValue::from_static("identity");

/// A call whose headers passed the checks, ready for its handler.
pub struct ServerCall {
    path: String,
    body: RecvStream,
    respond: SendResponse<Bytes>,
    metadata: Metadata,
    timeout: Option<Duration>,
    shared: Arc<Shared>,
}

/// Handles one accepted stream: checks the head, routes, and runs the call to its status.
pub(crate) async fn accept(
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let span = tracing::debug_span!("call", method = %path);
    async move {
        let started = Instant::now();
        let mut early = EarlyReply { respond };
        if parts.method != Method::POST {
            return early.http_error(StatusCode::METHOD_NOT_ALLOWED, "method must be POST");
        }
        if !is_grpc_content_type(parts.headers.get(CONTENT_TYPE)) {
            return early.http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content-type must be application/grpc",
            );
        }
        let timeout = match parts.headers.get(GRPC_TIMEOUT) {
            None => None,
            Some(v) => match timeout::parse(v.as_bytes()) {
                Ok(t) => Some(t),
                Err(e) => return early.status(&Status::internal(e.to_string())),
            },
        };
        if let Some(enc) = parts.headers.get(GRPC_ENCODING) {
            if enc.as_bytes() != b"identity" {
                let msg = format!("message encoding {enc:?} is not supported");
                return early.status(&Status::unimplemented(msg));
            }
        }
        let Some(handler) = shared.router.route(&path).map(Arc::clone) else {
            let msg = format!("method {path} is not implemented");
            return early.status(&Status::unimplemented(msg));
        };
        let call = ServerCall {
            path,
            body,
            respond: early.respond,
            metadata: Metadata::from_headers(parts.headers),
            timeout,
            shared,
        };
        handler.handle(call).await;
        debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "call done"
        );
    }
    .instrument(span)
    .await
}

fn is_grpc_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value else { return false };
    let v = v.as_bytes();
    match v.strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest == b"+proto" || rest.starts_with(b";"),
        None => false,
    }
}

/// The reply to a request refused before it reached a handler. The request body is simply
/// dropped with it; h2 then resets the stream with NO_ERROR if the client is still sending.
struct EarlyReply {
    respond: SendResponse<Bytes>,
}

impl EarlyReply {
    /// A non-200 HTTP response. It still carries a gRPC status (INTERNAL, as grpc-go sends),
    /// for clients that read it before looking at `:status`.
    fn http_error(&mut self, code: StatusCode, message: &str) {
        debug!(http_status = code.as_u16(), message, "refused");
        let mut response = http::Response::new(());
        *response.status_mut() = code;
        let headers = response.headers_mut();
        headers.insert(
            GRPC_STATUS,
            HeaderValue::from_static(Code::Internal.header_value()),
        );
        put_message(headers, message);
        let _ = self.respond.send_response(response, true);
    }

    fn status(&mut self, status: &Status) {
        debug!(status = %status.code(), message = status.message(), "refused");
        let _ = self.respond.send_response(trailers_only(status), true);
    }
}

fn put_message(headers: &mut HeaderMap, message: &str) {
    if message.is_empty() {
        return;
    }
    let encoded = crate::wire::status::percent_encode(message);
    // Percent-encoding leaves only %x20-7E, which is always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        headers.insert(GRPC_MESSAGE, v);
    }
}

fn status_headers(headers: &mut HeaderMap, status: &Status) {
    headers.insert(
        GRPC_STATUS,
        HeaderValue::from_static(status.code().header_value()),
    );
    put_message(headers, status.message());
}

/// A Trailers-Only response: `:status 200`, `content-type`, `grpc-status`, `grpc-message`.
fn trailers_only(status: &Status) -> http::Response<()> {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
    headers.insert(GRPC_ACCEPT_ENCODING, ACCEPTED_ENCODINGS);
    status_headers(headers, status);
    response
}

impl ServerCall {
    /// The `:path` of the call.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs unary method `M` of `service`: read one request, call, reply, status.
    pub(crate) async fn run_unary<M, S>(mut self, service: Arc<S>)
    where
        M: UnaryMethod<S>,
        S: Send + Sync + 'static + ?Sized,
    {
        let payload = match self.read_one_message().await {
            Ok(Some(p)) => p,
            Ok(None) => return, // the client went away: no one to answer
            Err(status) => return self.finish(Err(status)),
        };
        let metadata = std::mem::take(&mut self.metadata);
        let timeout = self.timeout;
        let outcome = async {
            let message = codec::decode::<View<'_, M::Request>>(&payload)?;
            let request = Request::from_parts(message, metadata, timeout);
            let response = M::call(&service, request).await?;
            let max = self.shared.config.max_send_message_len;
            let encoded = codec::encode(response.message(), max)?;
            Ok((encoded, response))
        };
        let outcome = match timeout {
            None => outcome.await,
            Some(t) => match tokio::time::timeout(t, outcome).await {
                Ok(r) => r,
                Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
            },
        };
        match outcome {
            Ok((encoded, response)) => {
                let metadata = response.metadata().headers().clone();
                self.finish(Ok((encoded, metadata)))
            }
            Err(status) => self.finish(Err(status)),
        }
    }

    /// Reads the request body to its end and returns its single message. `Ok(None)` means the
    /// stream was reset by the client (cancelled), so there is nothing left to do.
    async fn read_one_message(&mut self) -> Result<Option<Bytes>, Status> {
        let max = self.shared.config.max_receive_message_len;
        let mut decoder = MessageDecoder::new(max);
        let mut message: Option<WireMessage> = None;
        while let Some(chunk) = self.body.data().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    debug!(error = %e, "request stream failed");
                    return Ok(None);
                }
            };
            let _ = self.body.flow_control().release_capacity(chunk.len());
            decoder.push(chunk);
            while let Some(m) = decoder.next_message()? {
                if message.is_some() {
                    return Err(Status::internal(
                        "more than one request message for a unary method",
                    ));
                }
                message = Some(m);
            }
        }
        decoder.finish()?;
        let message =
            message.ok_or_else(|| Status::internal("no request message for a unary method"))?;
        if message.compressed {
            return Err(Status::internal(
                "compressed-flag set but no grpc-encoding was negotiated",
            ));
        }
        Ok(Some(message.payload))
    }

    /// Sends the reply and status: HEADERS, DATA, trailers on success; Trailers-Only on error.
    fn finish(mut self, outcome: Result<(Bytes, HeaderMap), Status>) {
        let status = match outcome {
            Ok((encoded, metadata)) => {
                let mut response = http::Response::new(());
                let headers = response.headers_mut();
                *headers = metadata;
                headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
                headers.insert(GRPC_ACCEPT_ENCODING, ACCEPTED_ENCODINGS);
                let Ok(mut send) = self.respond.send_response(response, false) else {
                    return;
                };
                // Small replies fit the window; h2 queues what does not and sends it as the
                // peer opens its window. The reply is bounded by the send limit.
                if send.send_data(encoded, false).is_err() {
                    return;
                }
                let mut trailers = HeaderMap::with_capacity(1);
                status_headers(&mut trailers, &Status::ok());
                let _ = send.send_trailers(trailers);
                Code::Ok
            }
            Err(status) => {
                debug!(status = %status.code(), message = status.message(), "call failed");
                let _ = self.respond.send_response(trailers_only(&status), true);
                status.code()
            }
        };
        debug!(status = %status, "replied");
    }
}
