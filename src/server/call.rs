//! One HTTP/2 stream as one gRPC call, on the server.
//!
//! h2 hands the server a request head, a body ([`h2::RecvStream`]) and a handle to respond
//! with ([`h2::server::SendResponse`]). This module applies gRPC over HTTP/2 to them:
//!
//! 1. **Request-Headers** (checked by `accept`): `:method` must be POST (else HTTP 405) and
//!    `content-type` must be `application/grpc` or `application/grpc+proto` (else HTTP 415,
//!    "so that other HTTP/2 clients do not read a gRPC error as a success"). `grpc-timeout`
//!    becomes a deadline (malformed: INTERNAL); a `grpc-encoding` we cannot decode is refused
//!    with UNIMPLEMENTED and our `grpc-accept-encoding`; `-bin` metadata must be base64.
//!    `:path` picks the handler; an unknown one is UNIMPLEMENTED.
//! 2. **Length-Prefixed-Messages** from DATA frames go through the
//!    [`MessageDecoder`] (for unary and server-streaming
//!    methods, here; for streaming requests, in [`Streaming`]). Flow-control capacity is given
//!    back to the peer as data is consumed: h2 does not do it on its own.
//! 3. **Response**: HEADERS (`:status 200`, `content-type`, `grpc-encoding`, metadata), the
//!    message(s), then trailers with `grpc-status` (and `grpc-message`, trailing metadata). An
//!    error before any message is sent as **Trailers-Only**: one HEADERS frame with
//!    END_STREAM. If the client is still sending when we finish, the stream must then be reset
//!    with NO_ERROR ("Early Server Closure"); h2 does exactly that when the call's handles are
//!    dropped, *after* the queued frames are flushed.
//!
//! While the handler runs, the call's task also watches the stream: a client's RST_STREAM
//! (cancellation) drops the handler's future, and the deadline, when it passes, drops it too
//! and answers DEADLINE_EXCEEDED ("Client Cancellation" and "Timeout" in the spec).
//!
//! A unary or server-streaming method takes exactly one request message: none, or a second
//! one, is INTERNAL (as grpc-go and grpc-java answer); a message that does not decode is
//! INTERNAL; a message over the receive limit, compressed or not, is RESOURCE_EXHAUSTED.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::debug;

use crate::call::{Request, Response};
use crate::codec;
use crate::server::connection::Shared;
use crate::server::interceptor::{CallEnd, CallInfo};
use crate::server::router::{
    BidiStreamingMethod, CallBatch, ClientStreamingMethod, ServerStreamingMethod, UnaryMethod, View,
};
use crate::server::sink::{ResponseSink, SinkItem};
use crate::streaming::{Side, Streaming};
use crate::wire::compression::{Encoding, ACCEPT_ENCODING};
use crate::wire::frame::MessageDecoder;
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};
use crate::wire::timeout;

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
const ACCEPTED_ENCODINGS: HeaderValue = HeaderValue::from_static(ACCEPT_ENCODING);

/// A call whose headers passed the checks, ready for its handler.
pub struct ServerCall {
    head: CallHead,
    body: RecvStream,
    respond: SendResponse<Bytes>,
}

/// What the request headers said, in the form the call needs.
struct CallHead {
    metadata: Metadata,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    /// The request's `grpc-encoding` (`None`: absent).
    encoding: Option<Encoding>,
    /// Whether the client's `grpc-accept-encoding` lists gzip.
    accepts_gzip: bool,
    shared: Arc<Shared>,
    /// Set when the server has interceptors: what they are told at the end of the call.
    observer: Option<Observer>,
}

impl Drop for CallHead {
    fn drop(&mut self) {
        self.end_unreported();
    }
}

/// What interceptors learn about a call as it runs (only built when there are interceptors).
struct Observer {
    method: Box<str>,
    peer: SocketAddr,
    started: std::time::Instant,
    bytes_in: Arc<AtomicU64>,
}

impl CallHead {
    /// The call is over: tell the interceptors, once.
    fn done(&mut self, code: Code, bytes_out: u64) {
        if let Some(observer) = self.observer.take() {
            let end = CallEnd {
                method: &observer.method,
                peer: observer.peer,
                code,
                duration: observer.started.elapsed(),
                bytes_in: observer.bytes_in.load(Ordering::Relaxed),
                bytes_out,
            };
            if let Some(metrics) = &self.shared.metrics {
                metrics.call_finished(
                    end.method,
                    true,
                    code,
                    end.duration,
                    end.bytes_in,
                    bytes_out,
                );
            }
            for interceptor in &self.shared.interceptors {
                interceptor.on_end(&end);
            }
        }
    }

    /// Interceptors and metrics hear of every call's end, even one that never reached `done`:
    /// its handler panicked (UNKNOWN, what gRPC reports for an error without a status), or its
    /// future was dropped with the connection (CANCELLED).
    fn end_unreported(&mut self) {
        if self.observer.is_some() {
            let code = if std::thread::panicking() {
                Code::Unknown
            } else {
                Code::Cancelled
            };
            self.done(code, 0);
        }
    }

    fn count_in(&self, bytes: usize) {
        if let Some(observer) = &self.observer {
            observer.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }

    fn in_counter(&self) -> Option<Arc<AtomicU64>> {
        self.observer.as_ref().map(|o| Arc::clone(&o.bytes_in))
    }
}

/// Checks the head of a newly accepted stream, then starts its call (a unary call joins
/// `batch`, a streaming one gets a task), or answers at once (HTTP 405/415, Trailers-Only
/// UNIMPLEMENTED, …). Runs in the connection's task: nothing here waits, so a refused request
/// costs no task at all.
pub(crate) fn accept(
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    shared: &Arc<Shared>,
    peer: SocketAddr,
    batch: &mut CallBatch,
) {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let mut early = Early {
        respond,
        shared,
        path,
        peer,
        started: false,
    };
    let respond = &mut early;
    let headers = parts.headers;
    if parts.method != Method::POST {
        return http_error(
            respond,
            StatusCode::METHOD_NOT_ALLOWED,
            "method must be POST",
        );
    }
    if !is_grpc_content_type(headers.get(CONTENT_TYPE)) {
        let msg = "content-type must be application/grpc";
        return http_error(respond, StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
    }
    let timeout = match headers
        .get(&GRPC_TIMEOUT)
        .map(|v| timeout::parse(v.as_bytes()))
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return refuse(respond, &Status::internal(e.to_string())),
    };
    let encoding = match headers.get(&GRPC_ENCODING) {
        None => None,
        Some(v) => match Encoding::from_name(v.as_bytes()) {
            Some(e) => Some(e),
            None => {
                let msg = format!("message encoding {v:?} is not supported");
                return refuse(respond, &Status::unimplemented(msg));
            }
        },
    };
    let accepts_gzip = Encoding::Gzip.accepted_by(
        headers
            .get(&GRPC_ACCEPT_ENCODING)
            .map(HeaderValue::as_bytes),
    );
    let Some(handler) = shared.router.route(path) else {
        let msg = format!("method {path} is not implemented");
        return refuse(respond, &Status::unimplemented(msg));
    };
    let span = tracing::debug_span!("call", method = %path, status = tracing::field::Empty);
    let metadata = match Metadata::from_headers(headers) {
        Ok(m) => m,
        Err(status) => return refuse(respond, &status),
    };
    if let Some(metrics) = &shared.metrics {
        metrics.call_started(path);
    }
    respond.started = true;
    let observer = if shared.interceptors.is_empty() && shared.metrics.is_none() {
        None
    } else {
        let info = CallInfo {
            method: path,
            peer,
            metadata: &metadata,
        };
        if let Some(status) = shared
            .interceptors
            .iter()
            .find_map(|i| i.on_call(&info).err())
        {
            return refuse(respond, &status);
        }
        Some(Observer {
            method: path.into(),
            peer,
            started: std::time::Instant::now(),
            bytes_in: Arc::new(AtomicU64::new(0)),
        })
    };
    let head = CallHead {
        metadata,
        timeout,
        deadline: timeout.map(|t| Instant::now() + t),
        encoding,
        accepts_gzip,
        shared: Arc::clone(shared),
        observer,
    };
    handler.start(
        ServerCall {
            head,
            body,
            respond: early.respond,
        },
        span,
        batch,
    );
}

/// A stream being refused before any handler ran; interceptors and metrics still see its end.
struct Early<'a> {
    respond: SendResponse<Bytes>,
    shared: &'a Arc<Shared>,
    path: &'a str,
    peer: SocketAddr,
    /// The call was routed and counted as started.
    started: bool,
}

impl Early<'_> {
    fn observe(&self, code: Code) {
        if let Some(metrics) = &self.shared.metrics {
            let method = if self.started || self.shared.router.route(self.path).is_some() {
                self.path
            } else {
                crate::server::metrics::UNKNOWN_METHOD
            };
            metrics.call_finished(method, self.started, code, Duration::ZERO, 0, 0);
        }
        let end = CallEnd {
            method: self.path,
            peer: self.peer,
            code,
            duration: Duration::ZERO,
            bytes_in: 0,
            bytes_out: 0,
        };
        for interceptor in &self.shared.interceptors {
            interceptor.on_end(&end);
        }
    }
}

/// Records the call's final status in its tracing span (`call{method=… status=…}`); the
/// subscriber reports the span's duration when it closes. Free when debug logging is off.
fn record_status(code: Code) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::Span::current().record("status", code.name());
    }
}

fn is_grpc_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value else { return false };
    match v.as_bytes().strip_prefix(b"application/grpc") {
        Some(rest) => rest.is_empty() || rest == b"+proto" || rest.starts_with(b";"),
        None => false,
    }
}

/// A non-200 HTTP response for a request that is not gRPC. It still carries a gRPC status
/// (INTERNAL, as grpc-go sends) for clients that read it before looking at `:status`.
fn http_error(early: &mut Early<'_>, code: StatusCode, message: &'static str) {
    debug!(http_status = code.as_u16(), message, "refused");
    let mut response = http::Response::new(());
    *response.status_mut() = code;
    status_headers(response.headers_mut(), &Status::internal(message));
    let _ = early.respond.send_response(response, true);
    early.observe(Code::Internal);
}

/// A Trailers-Only refusal before any handler ran.
fn refuse(early: &mut Early<'_>, status: &Status) {
    debug!(status = %status.code(), message = status.message(), "refused");
    let _ = early.respond.send_response(trailers_only(status), true);
    early.observe(status.code());
}

fn status_headers(headers: &mut HeaderMap, status: &Status) {
    headers.insert(
        GRPC_STATUS,
        HeaderValue::from_static(status.code().header_value()),
    );
    if !status.message().is_empty() {
        // Percent-encoding leaves only %x20-7E, always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&status.encoded_message()) {
            headers.insert(GRPC_MESSAGE, v);
        }
    }
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

/// Response headers: `:status 200`, `content-type`, the encoding, then custom metadata.
/// `grpc-accept-encoding` is optional here; it goes out where it matters, with a refusal of
/// an unsupported request encoding.
fn response_head(metadata: HeaderMap, encoding: Encoding) -> http::Response<()> {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    *headers = metadata;
    headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
    if encoding != Encoding::Identity {
        headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
    }
    response
}

fn trailers(status: &Status, metadata: HeaderMap) -> HeaderMap {
    let mut trailers = metadata;
    status_headers(&mut trailers, status);
    trailers
}

/// A reply to a unary or client-streaming call, encoded and ready to send.
struct Reply {
    message: Bytes,
    /// The rest of a large pre-encoded message, sent without copying it behind the prefix.
    tail: Option<Bytes>,
    metadata: HeaderMap,
    trailers: HeaderMap,
    encoding: Encoding,
}

impl CallHead {
    fn encode_reply<M: quick_protobuf::MessageWrite>(
        &self,
        response: Response<M>,
    ) -> Result<Reply, Status> {
        let encoding = self.response_encoding(response.compression());
        let max = self.shared.config.max_send_message_len;
        let (message, tail) = match response.encoded_message() {
            Some(payload) => codec::frame_encoded(payload, max, encoding)?,
            None => (codec::encode_with(response.message(), max, encoding)?, None),
        };
        let (_, metadata, trailers) = response.into_parts();
        Ok(Reply {
            message,
            tail,
            metadata: metadata.into_headers(),
            trailers: trailers.into_headers(),
            encoding,
        })
    }

    /// The encoding for the response: the handler's choice, else the server's default, and
    /// identity unless the client accepts it.
    fn response_encoding(&self, asked: Option<Encoding>) -> Encoding {
        match asked.or(self.shared.config.response_compression) {
            Some(Encoding::Gzip) if self.accepts_gzip => Encoding::Gzip,
            _ => Encoding::Identity,
        }
    }

    fn request<T>(&mut self, message: T) -> Request<T> {
        Request::from_parts(message, std::mem::take(&mut self.metadata), self.timeout)
    }

    fn max_receive(&self) -> usize {
        self.shared.config.max_receive_message_len
    }
}

// Each `run_*` is a plain fn that takes `self` apart and returns an async block, not an
// `async fn`: an async fn moves its arguments into locals and keeps both copies in its future
// for its whole life, so the call's parts would be held twice. The handler is pinned where it
// is made and `supervise` gets a reference to it, not a copy. Together that takes a GetUser
// call's future from 1,728 to 1,008 bytes. CallBatch boxes it, and below about 1 KiB the box
// comes from malloc's per-thread cache: GetUser 40.5k (or 41.8k, depending on the heap's
// state) -> 39.9k instructions.
impl ServerCall {
    /// Runs unary method `M` of `service`: one request, the handler, one reply, the status.
    pub(crate) fn run_unary<M, S>(self, service: Arc<S>) -> impl Future<Output = ()>
    where
        M: UnaryMethod<S>,
        S: Send + Sync + 'static + ?Sized,
    {
        let ServerCall {
            mut head,
            mut body,
            mut respond,
        } = self;
        async move {
            let Some((payload, compressed)) =
                read_request(&mut body, &mut head, &mut respond).await
            else {
                return;
            };
            let deadline = head.deadline;
            let handler = async {
                let message = codec::decode::<View<'_, M::Request>>(&payload)?;
                let mut request = head.request(message);
                request.set_was_compressed(compressed);
                let response = M::call(&service, request).await?;
                head.encode_reply(response)
            };
            let (code, sent) = supervise(&mut respond, deadline, pin!(handler)).await;
            head.done(code, sent);
        }
    }

    /// Runs client-streaming method `M`: a stream of requests, one reply.
    pub(crate) fn run_client_streaming<M, S>(self, service: Arc<S>) -> impl Future<Output = ()>
    where
        M: ClientStreamingMethod<S>,
        S: Send + Sync + 'static + ?Sized,
    {
        let ServerCall {
            mut head,
            body,
            mut respond,
        } = self;
        async move {
            let deadline = head.deadline;
            let requests = head.request_stream(body);
            let handler = async {
                let response = M::call(&service, head.request(requests)).await?;
                head.encode_reply(response)
            };
            let (code, sent) = supervise(&mut respond, deadline, pin!(handler)).await;
            head.done(code, sent);
        }
    }

    /// Runs server-streaming method `M`: one request, a stream of replies.
    pub(crate) fn run_server_streaming<M, S>(self, service: Arc<S>) -> impl Future<Output = ()>
    where
        M: ServerStreamingMethod<S>,
        S: Send + Sync + 'static + ?Sized,
    {
        let ServerCall {
            mut head,
            mut body,
            mut respond,
        } = self;
        async move {
            let Some((payload, compressed)) =
                read_request(&mut body, &mut head, &mut respond).await
            else {
                return;
            };
            let (tx, rx) = mpsc::channel(1);
            let sink = head.sink::<M::Response>(tx);
            let deadline = head.deadline;
            let handler = async {
                let message = codec::decode::<View<'_, M::Request>>(&payload)?;
                let mut request = head.request(message);
                request.set_was_compressed(compressed);
                M::call(&service, request, sink).await
            };
            let (code, sent) = drive_streaming_reply(respond, handler, rx, deadline).await;
            head.done(code, sent);
        }
    }

    /// Runs bidirectional-streaming method `M`: a stream each way.
    pub(crate) fn run_bidi_streaming<M, S>(self, service: Arc<S>) -> impl Future<Output = ()>
    where
        M: BidiStreamingMethod<S>,
        S: Send + Sync + 'static + ?Sized,
    {
        let ServerCall {
            mut head,
            body,
            respond,
        } = self;
        async move {
            let (tx, rx) = mpsc::channel(1);
            let sink = head.sink::<M::Response>(tx);
            let deadline = head.deadline;
            let requests = head.request_stream(body);
            let request = head.request(requests);
            let handler = M::call(&service, request, sink);
            let (code, sent) = drive_streaming_reply(respond, handler, rx, deadline).await;
            head.done(code, sent);
        }
    }
}

impl CallHead {
    fn request_stream<M: crate::codec::Message>(&self, body: RecvStream) -> Streaming<M> {
        Streaming::new(body, Side::Server, self.encoding, self.max_receive(), None)
            .counting(self.in_counter())
    }

    fn sink<M: crate::codec::Message>(&self, tx: mpsc::Sender<SinkItem>) -> ResponseSink<M> {
        ResponseSink::new(
            tx,
            self.response_encoding(None),
            self.accepts_gzip,
            self.shared.config.max_send_message_len,
        )
    }
}

/// The single request message of a unary or server-streaming call, or `None` when the call
/// already ended: reset by the client, or answered with the error its request deserved
/// (DEADLINE_EXCEEDED included, if the body is still arriving when the deadline passes).
async fn read_request(
    body: &mut RecvStream,
    head: &mut CallHead,
    respond: &mut SendResponse<Bytes>,
) -> Option<(Bytes, bool)> {
    // The deadline runs from the request headers, so a body that stalls past it ends the call
    // too. The read is polled first, and the timer is made (boxed, to keep the task small) only
    // when the read has to wait: a small request is usually complete when the call starts,
    // and then no timer is made or registered at all.
    let read = match head.deadline {
        None => read_one_message(body, head).await,
        Some(deadline) => {
            let expired = async { Box::pin(tokio::time::sleep_until(deadline)).await };
            tokio::select! {
                biased;
                read = read_one_message(body, head) => read,
                () = expired => Err(Status::deadline_exceeded("deadline exceeded")),
            }
        }
    };
    match read {
        Ok(Some(message)) => Some(message),
        Ok(None) => {
            head.done(Code::Cancelled, 0); // reset: nobody to answer
            None
        }
        Err(status) => {
            let (code, sent) = finish_single(respond, Err(status));
            head.done(code, sent);
            None
        }
    }
}

/// Reads the request body to its end and returns its single message, decompressed, and
/// whether it was compressed. `Ok(None)`: the client reset the stream.
async fn read_one_message(
    body: &mut RecvStream,
    head: &CallHead,
) -> Result<Option<(Bytes, bool)>, Status> {
    let max = head.max_receive();
    let mut decoder = MessageDecoder::new(max);
    let mut message = None;
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "request stream failed");
                return Ok(None);
            }
        };
        // One message is all a unary request may hold, and a second one fails the call at
        // once, so the window can be given back as soon as the bytes are queued.
        let _ = body.flow_control().release_capacity(chunk.len());
        head.count_in(chunk.len());
        decoder.push(chunk);
        while let Some(m) = decoder.next_message()? {
            if message.is_some() {
                return Err(Status::internal(
                    "more than one request message for a unary request",
                ));
            }
            message = Some(m);
        }
    }
    decoder.finish()?;
    let wire = message.ok_or_else(|| Status::internal("no request message for a unary request"))?;
    let compressed = wire.compressed;
    let payload = codec::open(wire, head.encoding, max)?;
    Ok(Some((payload, compressed)))
}

/// Runs `handler` while watching the stream, then sends its single reply (`finish_single`)
/// and returns the status and the message bytes sent. If the client resets the stream, the
/// handler is dropped, unanswered (CANCELLED); if the deadline passes first, the reply is
/// DEADLINE_EXCEEDED. The handler is pinned by the caller, so that its future is stored
/// once, in the caller's (and, like the `run_*` functions, this is a plain fn around an async
/// block, so that `deadline` is too).
#[allow(clippy::manual_async_fn)] // deliberately not an async fn: see above
fn supervise<'a>(
    respond: &'a mut SendResponse<Bytes>,
    deadline: Option<Instant>,
    handler: Pin<&'a mut impl Future<Output = Result<Reply, Status>>>,
) -> impl Future<Output = (Code, u64)> + 'a {
    async move {
        let reset = poll_fn(|cx| respond.poll_reset(cx));
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            // The handler first: a unary handler usually completes on its first poll, and then
            // the stream need not be looked at.
            biased;
            outcome = handler => outcome,
            reason = reset => {
                debug!(reason = ?reason.ok(), "cancelled by the client");
                return (Code::Cancelled, 0);
            }
            () = expired => Err(Status::deadline_exceeded("deadline exceeded")),
        };
        finish_single(respond, outcome)
    }
}

/// Sends a single reply and its status: HEADERS, DATA, trailers; or Trailers-Only on error.
/// Returns the status sent and the message bytes sent.
fn finish_single(respond: &mut SendResponse<Bytes>, outcome: Result<Reply, Status>) -> (Code, u64) {
    match outcome {
        Ok(reply) => {
            let head = response_head(reply.metadata, reply.encoding);
            let Ok(mut send) = respond.send_response(head, false) else {
                return (Code::Cancelled, 0);
            };
            let len = reply.message.len() + reply.tail.as_ref().map_or(0, Bytes::len);
            // The reply is already in memory and bounded by the send limit; h2 queues what
            // the window does not take yet.
            let mut sent = send.send_data(reply.message, false).is_ok();
            if let Some(tail) = reply.tail {
                sent = sent && send.send_data(tail, false).is_ok();
            }
            if sent {
                let _ = send.send_trailers(trailers(&Status::ok(), reply.trailers));
            }
            record_status(Code::Ok);
            (Code::Ok, len as u64)
        }
        Err(status) => {
            debug!(message = status.message(), "call failed");
            record_status(status.code());
            let _ = respond.send_response(trailers_only(&status), true);
            (status.code(), 0)
        }
    }
}

/// The sending side of a streaming reply, as the call task sees it.
enum Sender {
    /// Nothing sent yet.
    Idle(SendResponse<Bytes>),
    /// Headers sent; messages flow.
    Open(SendStream<Bytes>),
}

/// What the call task waits for while a streaming handler runs.
enum Event {
    Handler(Result<(), Status>),
    Item(Option<SinkItem>),
    /// Flow-control capacity to write the pending message (`Err`: the stream failed).
    Capacity(Result<usize, Status>),
    Reset,
    Deadline,
}

/// Runs a streaming handler and writes what its sink sends, under flow control, until the
/// handler returns and its sink is drained; then sends the status. Owns the h2 stream alone.
async fn drive_streaming_reply(
    respond: SendResponse<Bytes>,
    handler: impl Future<Output = Result<(), Status>>,
    mut rx: mpsc::Receiver<SinkItem>,
    deadline: Option<Instant>,
) -> (Code, u64) {
    let mut sender = Sender::Idle(respond);
    let mut sent: u64 = 0;
    let mut pending: Option<Bytes> = None;
    // Part of the pending message is on the wire: a status now would cut it in two.
    let mut mid_message = false;
    let mut outcome: Option<Result<(), Status>> = None;
    let mut sink_open = true;
    let mut trailer_metadata = HeaderMap::new();
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(handler, expired);
    while outcome.is_none() || sink_open || pending.is_some() {
        let event = tokio::select! {
            biased;
            event = poll_fn(|cx| watch_stream(cx, &mut sender, pending.is_some())) => event,
            r = &mut handler, if outcome.is_none() => Event::Handler(r),
            item = rx.recv(), if sink_open && pending.is_none() => Event::Item(item),
            () = &mut expired, if outcome.is_none() => Event::Deadline,
        };
        match event {
            Event::Handler(r) => outcome = Some(r),
            Event::Item(None) => sink_open = false,
            Event::Item(Some(SinkItem::Trailers(md))) => trailer_metadata = md.into_headers(),
            Event::Item(Some(SinkItem::Headers(md, encoding))) => {
                if let Sender::Idle(respond) = &mut sender {
                    match respond.send_response(response_head(md.into_headers(), encoding), false) {
                        Ok(stream) => sender = Sender::Open(stream),
                        Err(_) => return (Code::Cancelled, sent),
                    }
                }
            }
            Event::Item(Some(SinkItem::Message(bytes))) => {
                if let Sender::Open(stream) = &mut sender {
                    stream.reserve_capacity(bytes.len());
                    pending = Some(bytes);
                }
            }
            Event::Capacity(Ok(n)) => {
                if let (Sender::Open(stream), Some(bytes)) = (&mut sender, pending.as_mut()) {
                    let chunk = bytes.split_to(n.min(bytes.len()));
                    sent += chunk.len() as u64;
                    if stream.send_data(chunk, false).is_err() {
                        return (Code::Cancelled, sent);
                    }
                    if bytes.is_empty() {
                        pending = None;
                        mid_message = false;
                    } else {
                        mid_message = true;
                        stream.reserve_capacity(bytes.len());
                    }
                }
            }
            Event::Capacity(Err(status)) => {
                debug!(%status, "response stream failed");
                return (Code::Cancelled, sent);
            }
            Event::Reset => {
                debug!("cancelled by the client");
                return (Code::Cancelled, sent);
            }
            Event::Deadline => {
                outcome = Some(Err(Status::deadline_exceeded("deadline exceeded")));
                break;
            }
        }
    }
    let status = match outcome {
        Some(Ok(())) | None => Status::ok(),
        Some(Err(status)) => status,
    };
    record_status(status.code());
    if status.code() != Code::Ok {
        debug!(message = status.message(), "call failed");
    }
    match sender {
        // Trailers after half a message would corrupt the stream: cancel it instead, as the
        // spec asks of a server whose deadline passed ("Client Cancellation").
        Sender::Open(mut stream) if mid_message => stream.send_reset(h2::Reason::CANCEL),
        Sender::Open(mut stream) => {
            let _ = stream.send_trailers(trailers(&status, trailer_metadata));
        }
        Sender::Idle(mut respond) => {
            let mut head = trailers_only(&status);
            head.headers_mut().extend(trailer_metadata);
            let _ = respond.send_response(head, true);
        }
    }
    (status.code(), sent)
}

/// Polls the h2 stream for what matters now: capacity for the pending message, or a reset.
fn watch_stream(
    cx: &mut std::task::Context<'_>,
    sender: &mut Sender,
    writing: bool,
) -> Poll<Event> {
    match sender {
        Sender::Open(stream) if writing => match stream.poll_capacity(cx) {
            Poll::Ready(Some(Ok(n))) => Poll::Ready(Event::Capacity(Ok(n))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Event::Capacity(Err(Status::from_h2(&e)))),
            Poll::Ready(None) => {
                Poll::Ready(Event::Capacity(Err(Status::cancelled("stream closed"))))
            }
            Poll::Pending => Poll::Pending,
        },
        Sender::Open(stream) => stream.poll_reset(cx).map(|_| Event::Reset),
        Sender::Idle(respond) => respond.poll_reset(cx).map(|_| Event::Reset),
    }
}
