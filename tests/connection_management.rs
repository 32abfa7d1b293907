//! Connection management over real sockets: the handshake timeout, max connection idle and
//! age (gRFC A9), server keepalive PINGs (gRFC A8), and a PING flood staying bounded.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, TEST_TIMEOUT};
use rawgrpc::proto::user::UserServiceServer;
use rawgrpc::server::ServerConfig;
use rawgrpc::services::user::UserServiceImpl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

async fn server(config: ServerConfig) -> TestServer {
    TestServer::start_with(config, UserServiceServer::new(UserServiceImpl::in_memory())).await
}

/// Reads until the server closes the socket; returns what it sent and how long that took.
async fn read_until_closed(socket: &mut TcpStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(TEST_TIMEOUT, async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "the server never closed the connection");
    (received, started.elapsed())
}

/// The HTTP/2 frame types in a byte stream from the server (after its SETTINGS).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

const GOAWAY: u8 = 7;
const PING: u8 = 6;

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_handshake_timeout() {
    let config = ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    let (_, took) = read_until_closed(&mut socket).await;
    assert!(took >= Duration::from_millis(150), "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_connection_gets_goaway() {
    let config = ServerConfig {
        max_connection_idle: Some(Duration::from_millis(200)),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    socket.write_all(PREFACE).await.expect("preface");
    socket.write_all(EMPTY_SETTINGS).await.expect("settings");
    let (received, took) = read_until_closed(&mut socket).await;
    assert!(
        frame_types(&received).contains(&GOAWAY),
        "{:?}",
        frame_types(&received)
    );
    assert!(took >= Duration::from_millis(200), "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_connection_in_use_is_not_idle() {
    let config = ServerConfig {
        max_connection_idle: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    let channel = rawgrpc::client::Channel::connect(&server.url())
        .await
        .expect("connect");
    let client = rawgrpc::proto::user::UserServiceClient::new(channel);
    // Calls every 100 ms for a second: the connection never idles for 300 ms.
    for _ in 0..10 {
        let _ = client
            .get_user(rawgrpc::proto::user::UserRequest::default())
            .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outcome = client
        .get_user(rawgrpc::proto::user::UserRequest::default())
        .await;
    assert_eq!(
        outcome.map(drop).map_err(|s| s.code()),
        Err(rawgrpc::Code::InvalidArgument),
        "the call reached the service over the same connection"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_old_connection_gets_goaway() {
    let config = ServerConfig {
        max_connection_age: Some(Duration::from_millis(200)),
        max_connection_age_grace: Some(Duration::from_millis(100)),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    socket.write_all(PREFACE).await.expect("preface");
    socket.write_all(EMPTY_SETTINGS).await.expect("settings");
    let (received, took) = read_until_closed(&mut socket).await;
    assert!(frame_types(&received).contains(&GOAWAY));
    assert!(took >= Duration::from_millis(170), "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_does_not_answer_keepalive_pings_is_dropped() {
    let config = ServerConfig {
        keepalive_time: Some(Duration::from_millis(100)),
        keepalive_timeout: Duration::from_millis(100),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    // A raw peer: completes the preface, then never answers anything.
    let mut socket = TcpStream::connect(server.addr).await.expect("connect");
    socket.write_all(PREFACE).await.expect("preface");
    socket.write_all(EMPTY_SETTINGS).await.expect("settings");
    let (received, took) = read_until_closed(&mut socket).await;
    let types = frame_types(&received);
    assert!(types.contains(&PING), "{types:?}");
    assert!(types.contains(&GOAWAY), "{types:?}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_answers_keepalive_pings_stays() {
    let config = ServerConfig {
        keepalive_time: Some(Duration::from_millis(50)),
        keepalive_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = server(config).await;
    // rawgrpc's client is driven by h2, which answers PINGs.
    let channel = rawgrpc::client::Channel::connect(&server.url())
        .await
        .expect("connect");
    let client = rawgrpc::proto::user::UserServiceClient::new(channel);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let outcome = client
        .get_user(rawgrpc::proto::user::UserRequest::default())
        .await;
    assert_eq!(
        outcome.map(drop).map_err(|s| s.code()),
        Err(rawgrpc::Code::InvalidArgument)
    );
    server.stop().await;
}

/// h2 answers PINGs itself, so "too_many_pings" enforcement (gRFC A8's GOAWAY
/// ENHANCE_YOUR_CALM) cannot be built on it: rawgrpc never sees a PING. What h2 does guarantee
/// is that a flood stays bounded: it holds at most one unsent PONG and stops reading while
/// that PONG cannot be written, so a peer that floods PINGs and never reads gets TCP
/// backpressure, not our memory.
#[tokio::test]
async fn a_ping_flood_stays_bounded_and_others_are_served() {
    let server = server(ServerConfig::default()).await;
    let mut flooder = TcpStream::connect(server.addr).await.expect("connect");
    flooder.write_all(PREFACE).await.expect("preface");
    flooder.write_all(EMPTY_SETTINGS).await.expect("settings");
    // 100 000 PINGs (1.7 MB) without reading a byte; writing stalls once the kernel buffers
    // fill, which is the point: bounded in time.
    let ping: Vec<u8> = [&[0u8, 0, 8, PING, 0, 0, 0, 0, 0][..], &[7u8; 8]].concat();
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 100_000)
        .collect();
    let _ = tokio::time::timeout(Duration::from_secs(2), flooder.write_all(&flood)).await;
    // Meanwhile, another client is served normally.
    let channel = rawgrpc::client::Channel::connect(&server.url())
        .await
        .expect("connect");
    let client = rawgrpc::proto::user::UserServiceClient::new(channel);
    let outcome = tokio::time::timeout(
        TEST_TIMEOUT,
        client.get_user(rawgrpc::proto::user::UserRequest::default()),
    )
    .await
    .expect("served in time");
    assert_eq!(
        outcome.map(drop).map_err(|s| s.code()),
        Err(rawgrpc::Code::InvalidArgument)
    );
    drop(flooder);
    server.stop().await;
}

/// Graceful shutdown gives in-flight calls `shutdown_grace`; after it, the server closes the
/// connections still open instead of leaving them running behind `serve`'s back.
#[tokio::test]
async fn calls_still_running_after_the_shutdown_grace_are_cut() {
    use rawgrpc::client::Channel;
    use rawgrpc::interop::server::TestServiceImpl;
    use rawgrpc::proto::grpc::testing::{
        ResponseParameters, StreamingOutputCallRequest, TestServiceClient, TestServiceServer,
    };

    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config, TestServiceServer::new(TestServiceImpl)).await;
    let client = TestServiceClient::new(Channel::connect(&server.url()).await.unwrap());
    // One reply now, the next in 10 s: the call is still running when the grace is over.
    let request = StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                size: 1,
                ..Default::default()
            },
            ResponseParameters {
                size: 1,
                interval_us: 10_000_000,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let mut replies = client
        .streaming_output_call(request)
        .await
        .unwrap()
        .into_message();
    assert!(replies.message().await.unwrap().is_some());

    let started = Instant::now();
    server.stop().await;
    let next = tokio::time::timeout(Duration::from_secs(5), replies.message())
        .await
        .expect("the call was cut when the grace ended, not left running");
    assert!(next.is_err(), "{next:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
}
