//! What an operator switches on: bearer-token auth, the access log, Prometheus metrics, TLS.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rawgrpc::client::channel::ChannelConfig;
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{
    CreateUserRequest, User, UserRequest, UserServiceClient, UserServiceServer,
};
use rawgrpc::server::interceptor::{AccessLog, BearerAuth, CallEnd, Interceptor};
use rawgrpc::server::metrics::{serve_metrics, Metrics};
use rawgrpc::server::{Server, ServerConfig};
use rawgrpc::services::user::UserServiceImpl;
use rawgrpc::tls::ClientTls;
use rawgrpc::{Code, Request, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn start(server: Server) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn user_service() -> UserServiceServer<UserServiceImpl> {
    UserServiceServer::new(UserServiceImpl::in_memory())
}

async fn get_user(addr: SocketAddr, token: Option<&str>) -> Result<(), Status> {
    let client = UserServiceClient::new(Channel::connect(&addr.to_string()).await?);
    let mut request = Request::new(UserRequest {
        user: Some(User {
            id: "nobody".into(),
            ..User::default()
        }),
    });
    if let Some(t) = token {
        request
            .metadata_mut()
            .insert("authorization", &format!("Bearer {t}"))?;
    }
    client.get_user(request).await.map(drop)
}

#[tokio::test]
async fn bearer_auth_refuses_missing_and_wrong_tokens() {
    let server = Server::new()
        .add_interceptor(BearerAuth::new("s3cret"))
        .add_service(user_service());
    let (addr, _stop) = start(server).await;
    let code = |r: Result<(), Status>| r.map_err(|s| s.code());
    assert_eq!(code(get_user(addr, None).await), Err(Code::Unauthenticated));
    assert_eq!(
        code(get_user(addr, Some("guess")).await),
        Err(Code::Unauthenticated)
    );
    // The right token reaches the service, which answers NOT_FOUND for an unknown id.
    assert_eq!(
        code(get_user(addr, Some("s3cret")).await),
        Err(Code::NotFound)
    );
    // Health checking stays open: the call gets past auth (UNIMPLEMENTED: no health service
    // in this server, but not UNAUTHENTICATED).
    let channel = Channel::connect(&addr.to_string()).await.expect("connect");
    let e = channel
        .unary::<_, rawgrpc::proto::grpc::testing::Empty>(
            "/grpc.health.v1.Health/Check",
            Request::new(rawgrpc::proto::grpc::testing::Empty {}),
        )
        .await
        .expect_err("no health service here");
    assert_eq!(e.code(), Code::Unimplemented);
}

/// One call end: method, code, bytes in, bytes out.
type Seen = (String, Code, u64, u64);

/// Records every call end it sees.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

impl Interceptor for Recorder {
    fn on_end(&self, call: &CallEnd<'_>) {
        let mut calls = self.0.lock().expect("lock");
        calls.push((
            call.method.to_owned(),
            call.code,
            call.bytes_in,
            call.bytes_out,
        ));
    }
}

#[tokio::test]
async fn interceptors_see_every_call_end_with_status_and_bytes() {
    let recorder = Recorder::default();
    let server = Server::new()
        .add_interceptor(recorder.clone())
        .add_service(user_service());
    let (addr, _stop) = start(server).await;
    let client = UserServiceClient::new(Channel::connect(&addr.to_string()).await.expect("c"));
    let created = client
        .create_user(CreateUserRequest {
            user: Some(User {
                id: "u1".into(),
                name: "Ada".into(),
                ..User::default()
            }),
        })
        .await;
    assert!(created.is_ok());
    let _ = get_user(addr, None).await;
    let channel = Channel::connect(&addr.to_string()).await.expect("connect");
    let _ = channel
        .unary::<_, rawgrpc::proto::user::UserResponse<'static>>(
            "/UserService/Nope",
            Request::new(UserRequest::default()),
        )
        .await;
    let calls = recorder.0.lock().expect("lock").clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(calls[0].0, "/UserService/CreateUser");
    assert_eq!(calls[0].1, Code::Ok);
    assert!(calls[0].2 > 5 && calls[0].3 > 5, "bytes counted: {calls:?}");
    assert_eq!(calls[1].1, Code::NotFound);
    assert_eq!(
        (calls[2].0.as_str(), calls[2].1),
        ("/UserService/Nope", Code::Unimplemented)
    );
}

/// A tracing writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_access_log_has_one_line_per_call() {
    // #[tokio::test] runs everything on this thread, so a thread-local subscriber sees the
    // server's tasks too.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = Server::new()
        .add_interceptor(AccessLog)
        .add_service(user_service());
    let (addr, _stop) = start(server).await;
    let _ = get_user(addr, None).await;
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let line = text
        .lines()
        .find(|l| l.contains("rawgrpc::access"))
        .unwrap_or_else(|| panic!("no access log line in:\n{text}"));
    for part in [
        "method=\"/UserService/GetUser\"",
        "peer=127.0.0.1:",
        "status=\"NOT_FOUND\"",
        "duration_us=",
        "bytes_in=",
        "bytes_out=0",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
}

async fn scrape(addr: SocketAddr) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    socket.read_to_string(&mut body).await.expect("read");
    body
}

#[tokio::test]
async fn metrics_count_calls_by_method_and_code() {
    let metrics = Arc::new(Metrics::new());
    let metrics_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let metrics_addr = metrics_listener.local_addr().expect("addr");
    tokio::spawn(serve_metrics(metrics_listener, Arc::clone(&metrics)));
    let server = Server::new()
        .with_metrics(Arc::clone(&metrics))
        .add_service(user_service());
    let (addr, _stop) = start(server).await;
    for _ in 0..3 {
        let _ = get_user(addr, None).await;
    }
    let channel = Channel::connect(&addr.to_string()).await.expect("connect");
    let _ = channel
        .unary::<_, rawgrpc::proto::user::UserResponse<'static>>(
            "/Invented/Path",
            Request::new(UserRequest::default()),
        )
        .await;
    let text = scrape(metrics_addr).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for line in [
        "grpc_server_started_total{grpc_method=\"/UserService/GetUser\"} 3",
        "grpc_server_handled_total{grpc_method=\"/UserService/GetUser\",grpc_code=\"NOT_FOUND\"} 3",
        "grpc_server_handling_seconds_count{grpc_method=\"/UserService/GetUser\"} 3",
        "grpc_server_handled_total{grpc_method=\"unknown\",grpc_code=\"UNIMPLEMENTED\"} 1",
        "grpc_server_open_streams 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("grpc_server_open_connections "), "{text}");
    assert!(
        !text.contains("/Invented/Path"),
        "unknown paths get no label of their own"
    );
    let bytes_in = text
        .lines()
        .find(|l| {
            l.starts_with("grpc_server_received_bytes_total{grpc_method=\"/UserService/GetUser\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("received bytes");
    assert!(bytes_in > 0);
}

fn self_signed(name: &str) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("rcgen");
    (cert.cert.pem(), cert.signing_key.serialize_pem())
}

/// A server acceptor for a fresh self-signed `localhost` certificate, read from files as
/// `rawgrpc serve --tls-cert --tls-key` reads them, and that certificate's PEM for a client
/// to trust.
fn localhost_tls(tag: &str) -> (String, tokio_rustls::TlsAcceptor) {
    let dir = std::env::temp_dir().join(format!("rawgrpc-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = self_signed("localhost");
    std::fs::write(dir.join("cert.pem"), &cert).expect("write");
    std::fs::write(dir.join("key.pem"), &key).expect("write");
    let acceptor =
        rawgrpc::tls::server_acceptor(&dir.join("cert.pem"), &dir.join("key.pem")).expect("tls");
    let _ = std::fs::remove_dir_all(&dir);
    (cert, acceptor)
}

#[tokio::test]
async fn tls_with_alpn_h2_and_a_wrong_ca_fails_cleanly() {
    let (cert, acceptor) = localhost_tls("plain");
    let server = Server::with_config(ServerConfig::default())
        .with_tls(acceptor)
        .add_service(user_service());
    let (addr, _stop) = start(server).await;

    let config = ChannelConfig {
        tls: Some(ClientTls::from_ca_pem(cert.as_bytes(), "localhost").expect("ca")),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(&addr.to_string(), config)
        .await
        .expect("TLS connect");
    let e = UserServiceClient::new(channel)
        .get_user(UserRequest::default())
        .await
        .expect_err("empty id");
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "the call went through over TLS"
    );

    let (other_ca, _) = self_signed("localhost");
    let config = ChannelConfig {
        tls: Some(ClientTls::from_ca_pem(other_ca.as_bytes(), "localhost").expect("ca")),
        ..ChannelConfig::default()
    };
    let e = Channel::connect_with(&addr.to_string(), config)
        .await
        .expect_err("untrusted certificate");
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("TLS"), "{e}");

    // A plaintext client gets nothing it could mistake for an answer, and the server goes on.
    let e = get_user(addr, None)
        .await
        .expect_err("plaintext to a TLS port");
    assert_eq!(e.code(), Code::Unavailable, "{e}");
}

/// `handshake_timeout` is one budget for TLS and the HTTP/2 preface together, counted from
/// accept: a peer that is slow through TLS and then sends nothing is closed when the budget
/// runs out, not a whole `handshake_timeout` after TLS completed.
#[tokio::test]
async fn the_handshake_timeout_covers_tls_and_the_http2_preface_together() {
    use std::time::{Duration, Instant};

    let (cert, acceptor) = localhost_tls("budget");
    let budget = Duration::from_millis(1000);
    let server = Server::with_config(ServerConfig {
        handshake_timeout: budget,
        ..ServerConfig::default()
    })
    .with_tls(acceptor)
    .add_service(user_service());
    let (addr, _stop) = start(server).await;
    let client_tls = ClientTls::from_ca_pem(cert.as_bytes(), "localhost").expect("client TLS");

    let accepted = Instant::now();
    let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // Most of the budget goes by before the ClientHello; TLS then completes in time.
    tokio::time::sleep(budget * 7 / 10).await;
    let mut tls = client_tls
        .connect(socket)
        .await
        .expect("TLS completes within the budget");
    // No HTTP/2 preface follows: the server closes the connection when the budget is spent.
    let mut buf = [0u8; 256];
    while matches!(tls.read(&mut buf).await, Ok(1..)) {}
    let took = accepted.elapsed();
    assert!(
        took >= budget * 9 / 10,
        "closed after {took:?}, before the budget of {budget:?} was spent"
    );
    assert!(
        took < budget * 3 / 2,
        "closed after {took:?}: the HTTP/2 handshake got a budget of its own after TLS"
    );
}

/// The wire tracer sits above TLS: over an encrypted connection both ends still trace the
/// HTTP/2 frames in the clear, and the call works as without it.
#[tokio::test]
async fn the_wire_tracer_sees_plaintext_frames_over_tls() {
    use rawgrpc::tracer::WireTrace;
    use std::sync::{Arc, Mutex};

    let capture = || {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&text);
        let trace = WireTrace::to_fn(move |t| sink.lock().unwrap().push_str(t));
        (text, trace)
    };
    let (cert, acceptor) = localhost_tls("trace");
    let (server_text, server_trace) = capture();
    let server = Server::with_config(ServerConfig {
        wire_trace: Some(server_trace),
        ..ServerConfig::default()
    })
    .with_tls(acceptor)
    .add_service(user_service());
    let (addr, _stop) = start(server).await;

    let (client_text, client_trace) = capture();
    let config = ChannelConfig {
        tls: Some(ClientTls::from_ca_pem(cert.as_bytes(), "localhost").expect("ca")),
        wire_trace: Some(client_trace),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(&addr.to_string(), config)
        .await
        .expect("TLS connect");
    let e = UserServiceClient::new(channel)
        .get_user(UserRequest::default())
        .await
        .expect_err("empty id");
    assert_eq!(e.code(), Code::InvalidArgument);

    for (side, text) in [("server", &server_text), ("client", &client_text)] {
        let text = text.lock().unwrap().clone();
        for expected in [
            "C→S connection preface",
            ":path: /UserService/GetUser",
            "grpc-status: 3",
        ] {
            assert!(
                text.contains(expected),
                "{side} trace lacks {expected:?}:\n{text}"
            );
        }
    }
}
