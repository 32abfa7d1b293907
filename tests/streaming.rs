//! Streaming, deadlines, cancellation, compression and limits, end to end over real sockets:
//! rawgrpc's interop client against rawgrpc's interop server, plus a TestService whose
//! handlers record what happened to them.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{framed, grpc_head, raw_call, TestServer, TEST_TIMEOUT};
use http::HeaderValue;
use rawgrpc::client::Channel;
use rawgrpc::interop::server::TestServiceImpl;
use rawgrpc::proto::grpc::testing::{
    Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
    StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
    TestService, TestServiceClient, TestServiceServer,
};
use rawgrpc::server::{CallEnd, Interceptor, ResponseSink, ServerConfig};
use rawgrpc::{Code, Request, Response, Status, Streaming};

#[tokio::test]
async fn every_interop_case_passes_against_ourselves() {
    let server = TestServer::start_with(
        ServerConfig::default(),
        TestServiceServer::new(TestServiceImpl),
    )
    .await;
    for case in rawgrpc::interop::client::CASES {
        let channel = Channel::connect(&server.url()).await.expect("connect");
        let outcome =
            tokio::time::timeout(TEST_TIMEOUT, rawgrpc::interop::client::run(&channel, case))
                .await
                .expect("case finishes in time");
        assert_eq!(outcome, Ok(()), "{case}");
    }
    server.stop().await;
}

/// Flags a test watches: set when a handler's future is dropped, counted as it sends.
#[derive(Default)]
struct Probe {
    sent: AtomicUsize,
    dropped: AtomicBool,
    requests_read: AtomicUsize,
}

struct DropFlag(Arc<Probe>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

/// A TestService whose handlers misbehave on purpose: UnaryCall sleeps forever,
/// CacheableUnaryCall panics, StreamingOutputCall streams 64 KiB messages without end,
/// StreamingInputCall never reads.
/// Everything else is the interop service.
struct Recording(Arc<Probe>);

impl TestService for Recording {
    async fn empty_call(&self, r: Request<Empty>) -> Result<Response<Empty>, Status> {
        TestServiceImpl.empty_call(r).await
    }

    async fn unary_call<'a>(
        &'a self,
        _r: Request<SimpleRequest<'a>>,
    ) -> Result<Response<SimpleResponse<'a>>, Status> {
        let _flag = DropFlag(Arc::clone(&self.0));
        std::future::pending().await
    }

    /// A handler bug: it panics.
    async fn cacheable_unary_call<'a>(
        &'a self,
        _r: Request<SimpleRequest<'a>>,
    ) -> Result<Response<SimpleResponse<'a>>, Status> {
        panic!("a handler bug (on purpose, tests/streaming.rs)")
    }

    async fn streaming_output_call<'a>(
        &'a self,
        _r: Request<StreamingOutputCallRequest<'a>>,
        mut responses: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        let _flag = DropFlag(Arc::clone(&self.0));
        let reply = StreamingOutputCallResponse {
            payload: Some(Payload {
                body: vec![7u8; 64 * 1024].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        loop {
            responses.send(&reply).await?;
            self.0.sent.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn streaming_input_call(
        &self,
        requests: Request<Streaming<StreamingInputCallRequest<'static>>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let _flag = DropFlag(Arc::clone(&self.0));
        let mut stream = requests.into_message();
        // Read one message, then stop reading.
        if stream.message().await?.is_some() {
            self.0.requests_read.fetch_add(1, Ordering::SeqCst);
        }
        std::future::pending().await
    }

    async fn full_duplex_call(
        &self,
        r: Request<Streaming<StreamingOutputCallRequest<'static>>>,
        s: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        TestServiceImpl.full_duplex_call(r, s).await
    }

    async fn half_duplex_call(
        &self,
        r: Request<Streaming<StreamingOutputCallRequest<'static>>>,
        s: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        TestServiceImpl.half_duplex_call(r, s).await
    }

    async fn unimplemented_call(&self, r: Request<Empty>) -> Result<Response<Empty>, Status> {
        TestServiceImpl.unimplemented_call(r).await
    }
}

async fn recording_server() -> (TestServer, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let server = TestServer::start_with(
        ServerConfig::default(),
        TestServiceServer::new(Recording(Arc::clone(&probe))),
    )
    .await;
    (server, probe)
}

async fn client(server: &TestServer) -> TestServiceClient {
    TestServiceClient::new(Channel::connect(&server.url()).await.expect("connect"))
}

/// Polls `cond` every 10 ms until it holds or the test timeout passes.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_stops_the_streaming_handler() {
    let (server, probe) = recording_server().await;
    let c = client(&server).await;
    let response = c
        .streaming_output_call(StreamingOutputCallRequest::default())
        .await
        .expect("call starts");
    let mut stream = response.into_message();
    stream.message().await.expect("first").expect("a message");
    // Stop reading. The handler can only fill the flow-control windows (1 MiB stream window,
    // h2's send buffer) and the sink's one slot, then its `send` must wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let plateau = probe.sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = probe.sent.load(Ordering::SeqCst);
    assert_eq!(
        plateau, later,
        "the handler kept sending to a client that does not read"
    );
    assert!(
        later < 40,
        "{later} messages of 64 KiB sent to a stalled client"
    );
    // Reading again lets it go on.
    for _ in 0..30 {
        stream.message().await.expect("more").expect("a message");
    }
    eventually("the handler resumes", || {
        probe.sent.load(Ordering::SeqCst) > later
    })
    .await;
    drop(stream);
    eventually("the handler is dropped after the client goes", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_server_that_stops_reading_makes_the_client_wait() {
    let (server, probe) = recording_server().await;
    let c = client(&server).await;
    let (mut requests, _response) = c.streaming_input_call(()).await.expect("call starts");
    let message = StreamingInputCallRequest {
        payload: Some(Payload {
            body: vec![0u8; 256 * 1024].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // 16 MiB against 1 MiB windows: sending must block once the windows are full.
    let sent = AtomicUsize::new(0);
    let sending = async {
        for _ in 0..64 {
            requests.send(&message).await.expect("send");
            sent.fetch_add(1, Ordering::SeqCst);
        }
    };
    let finished = tokio::time::timeout(Duration::from_millis(500), sending).await;
    assert!(
        finished.is_err(),
        "the client sent 16 MiB to a server that does not read"
    );
    let n = sent.load(Ordering::SeqCst);
    assert!(n < 16, "{n} messages of 256 KiB went out");
    assert_eq!(probe.requests_read.load(Ordering::SeqCst), 1);
    drop((requests, _response));
    eventually("the handler is dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    server.stop().await;
}

async fn assert_cancel_drops_handler(call: impl Future<Output = ()>, probe: &Probe) {
    // The call future is dropped after 100 ms: h2 resets the stream with CANCEL.
    let _ = tokio::time::timeout(Duration::from_millis(100), call).await;
    eventually("the handler is dropped after RST_STREAM(CANCEL)", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_unary_call_drops_its_handler() {
    let (server, probe) = recording_server().await;
    let c = client(&server).await;
    assert_cancel_drops_handler(
        async {
            let _ = c.unary_call(SimpleRequest::default()).await;
        },
        &probe,
    )
    .await;
    server.stop().await;
}

/// Records the end of every call, as interceptors see it.
#[derive(Clone, Default)]
struct Ends(Arc<std::sync::Mutex<Vec<(String, Code)>>>);

impl Interceptor for Ends {
    fn on_end(&self, end: &CallEnd<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((end.method.to_owned(), end.code));
    }
}

/// A unary handler runs in the connection task when it can (`CallBatch`): its panic must
/// still end only its own call, not the connection or the server; and interceptors (and
/// metrics) still hear of that call's end, as UNKNOWN.
#[tokio::test]
async fn a_panicking_unary_handler_fails_only_its_call() {
    let ends = Ends::default();
    let server = TestServer::serve(
        rawgrpc::server::Server::new()
            .add_interceptor(ends.clone())
            .add_service(TestServiceServer::new(Recording(Arc::default()))),
    )
    .await;
    let c = client(&server).await;
    let failed = c.cacheable_unary_call(SimpleRequest::default()).await;
    assert!(failed.is_err(), "{failed:?}");
    // The same connection still serves calls.
    c.empty_call(Empty::default()).await.unwrap();
    let seen = ends.0.lock().unwrap().clone();
    assert!(
        seen.contains(&(
            "/grpc.testing.TestService/CacheableUnaryCall".to_owned(),
            Code::Unknown
        )),
        "{seen:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn cancelling_a_client_stream_drops_its_handler() {
    let (server, probe) = recording_server().await;
    let c = client(&server).await;
    let (mut requests, _response) = c.streaming_input_call(()).await.expect("start");
    requests
        .send(&StreamingInputCallRequest::default())
        .await
        .expect("send");
    eventually("the handler read a message", || {
        probe.requests_read.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(!probe.dropped.load(Ordering::SeqCst));
    requests.cancel();
    eventually("the handler is dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_deadline_cuts_a_streaming_handler() {
    let (server, probe) = recording_server().await;
    // A raw client sends grpc-timeout but never gives up itself; it does not read either, so
    // the handler blocks in `send` until the deadline passes.
    let mut head = grpc_head(server.addr, "/grpc.testing.TestService/UnaryCall");
    head.headers_mut()
        .insert("grpc-timeout", HeaderValue::from_static("200m"));
    let reply = raw_call(server.addr, head, vec![framed(b"")]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("4"), "{reply:?}");
    eventually("the handler is dropped", || {
        probe.dropped.load(Ordering::SeqCst)
    })
    .await;
    server.stop().await;
}

/// A unary request whose body never completes: the deadline, counted from the headers, ends
/// the call while the server is still waiting for the message (no handler ever runs).
#[tokio::test]
async fn the_server_deadline_covers_a_stalled_request_body() {
    let server = TestServer::start_with(
        ServerConfig::default(),
        TestServiceServer::new(TestServiceImpl),
    )
    .await;
    tokio::time::timeout(TEST_TIMEOUT, async {
        let socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (send, conn) = h2::client::handshake(socket).await.unwrap();
        tokio::spawn(conn);
        let mut send = send.ready().await.unwrap();
        let mut head = grpc_head(server.addr, "/grpc.testing.TestService/UnaryCall");
        head.headers_mut()
            .insert("grpc-timeout", HeaderValue::from_static("200m"));
        let (response, mut stream) = send.send_request(head, false).unwrap();
        // Half of a message's prefix, and then nothing: no END_STREAM.
        stream
            .send_data(bytes::Bytes::from_static(&[0, 0]), false)
            .unwrap();
        let started = std::time::Instant::now();
        let response = response.await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "4", "{response:?}");
        assert!(started.elapsed() >= Duration::from_millis(150));
        drop(stream);
    })
    .await
    .expect("the deadline ended the call");
    server.stop().await;
}

#[tokio::test]
async fn a_client_deadline_on_a_stream() {
    let (server, _probe) = recording_server().await;
    let c = client(&server).await;
    let mut request = Request::new(StreamingOutputCallRequest::default());
    request.set_timeout(Duration::from_millis(200));
    let mut stream = c
        .streaming_output_call(request)
        .await
        .expect("starts")
        .into_message();
    let outcome = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(e) = stream.message().await {
                return e;
            }
        }
    };
    let e: Status = tokio::time::timeout(TEST_TIMEOUT, outcome)
        .await
        .expect("in time");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e}");
    server.stop().await;
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    rawgrpc::wire::compression::gzip_into(data, &mut out).expect("gzip");
    out
}

#[tokio::test]
async fn a_zip_bomb_is_resource_exhausted() {
    let server = TestServer::start_with(
        ServerConfig::default(),
        TestServiceServer::new(TestServiceImpl),
    )
    .await;
    // 64 MiB of zeros in ~64 KiB of gzip, against the 4 MiB receive limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let mut message = framed(&bomb);
    message[0] = 1;
    let mut head = grpc_head(server.addr, "/grpc.testing.TestService/UnaryCall");
    head.headers_mut()
        .insert("grpc-encoding", HeaderValue::from_static("gzip"));
    let reply = raw_call(server.addr, head, vec![message]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("8"), "{reply:?}");
    // A small compressed request is fine, and the server still serves.
    let mut message = framed(&gzip(&[]));
    message[0] = 1;
    let mut head = grpc_head(server.addr, "/grpc.testing.TestService/EmptyCall");
    head.headers_mut()
        .insert("grpc-encoding", HeaderValue::from_static("gzip"));
    let reply = raw_call(server.addr, head, vec![message]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("0"), "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn send_and_receive_limits_are_resource_exhausted() {
    let config = ServerConfig {
        max_send_message_len: 1000,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, TestServiceServer::new(TestServiceImpl)).await;
    let c = client(&server).await;
    let ask = |size| SimpleRequest {
        response_size: size,
        ..Default::default()
    };
    c.unary_call(ask(900)).await.expect("under the limit");
    let e = c
        .unary_call(ask(2000))
        .await
        .expect_err("over the send limit");
    assert_eq!(e.code(), Code::ResourceExhausted);
    // The client's own receive limit.
    let small = rawgrpc::client::channel::ChannelConfig {
        max_receive_message_len: 100,
        ..Default::default()
    };
    let channel = Channel::connect_with(&server.url(), small)
        .await
        .expect("connect");
    let e = TestServiceClient::new(channel)
        .unary_call(ask(500))
        .await
        .expect_err("over the client's receive limit");
    assert_eq!(e.code(), Code::ResourceExhausted);
    server.stop().await;
}

#[tokio::test]
async fn streamed_replies_with_parameters_arrive_in_order() {
    let server = TestServer::start_with(
        ServerConfig::default(),
        TestServiceServer::new(TestServiceImpl),
    )
    .await;
    let c = client(&server).await;
    let sizes = [0, 1, 70_000, 5, 1 << 20];
    let request = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                interval_us: 1000,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut stream = c
        .streaming_output_call(request)
        .await
        .expect("start")
        .into_message();
    for size in sizes {
        let m = stream.message().await.expect("ok").expect("message");
        assert_eq!(m.view().payload.map_or(0, |p| p.body.len()), size as usize);
    }
    assert!(stream.message().await.expect("ok").is_none());
    server.stop().await;
}
