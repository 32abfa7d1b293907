//! Helpers shared by the end-to-end tests: a server on an ephemeral port, and a raw h2 client
//! for sending requests no well-behaved gRPC client would send.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use rawgrpc::proto::user::UserServiceServer;
use rawgrpc::server::{Server, ServerConfig, Service};
use rawgrpc::services::user::UserServiceImpl;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test is bounded: nothing here may hang CI.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server; `stop` triggers graceful shutdown and waits for it.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start_with(config: ServerConfig, service: impl Service) -> TestServer {
        TestServer::serve(Server::with_config(config).add_service(service)).await
    }

    /// Serves `server` as built by the test (several services, interceptors, …).
    pub async fn serve(server: Server) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The article's UserService over an in-memory store, default limits.
    pub async fn user_service() -> TestServer {
        TestServer::start_with(
            ServerConfig::default(),
            UserServiceServer::new(UserServiceImpl::in_memory()),
        )
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn stop(mut self) {
        self.begin_shutdown();
        tokio::time::timeout(TEST_TIMEOUT, self.task)
            .await
            .expect("server stops in time")
            .expect("server task")
            .expect("server result");
    }
}

/// What came back for a raw request.
#[derive(Debug)]
pub struct RawReply {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub data: Vec<u8>,
    pub trailers: Option<HeaderMap>,
}

impl RawReply {
    /// The grpc-status, from the trailers or (Trailers-Only) the headers.
    pub fn grpc_status(&self) -> Option<String> {
        let from = |h: &HeaderMap| {
            h.get("grpc-status")
                .map(|v| v.to_str().unwrap_or("?").to_owned())
        };
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
    }

    pub fn grpc_message(&self) -> String {
        let from = |h: &HeaderMap| {
            h.get("grpc-message")
                .map(|v| rawgrpc::wire::status::percent_decode(v.as_bytes()))
        };
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
            .unwrap_or_default()
    }
}

/// A request head for `path` with the gRPC headers; tests then break what they want.
pub fn grpc_head(addr: SocketAddr, path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("valid head")
}

/// Frames `payload` with the 5-byte prefix.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Sends `head`, then each chunk as a DATA frame (the last with END_STREAM), and reads the
/// whole reply.
pub async fn raw_call(addr: SocketAddr, head: http::Request<()>, chunks: Vec<Vec<u8>>) -> RawReply {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (send, conn) = h2::client::handshake(socket).await.expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut send = send.ready().await.expect("ready");
        let end_with_headers = chunks.is_empty();
        let (response, mut stream) = send.send_request(head, end_with_headers).expect("send");
        let n = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            if stream.send_data(Bytes::from(chunk), i + 1 == n).is_err() {
                break; // the server may have answered and reset already
            }
        }
        let response = response.await.expect("response");
        let (parts, mut body) = response.into_parts();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            match chunk {
                Ok(c) => {
                    let _ = body.flow_control().release_capacity(c.len());
                    data.extend_from_slice(&c);
                }
                Err(_) => break,
            }
        }
        let trailers = body.trailers().await.ok().flatten();
        RawReply {
            status: parts.status,
            headers: parts.headers,
            data,
            trailers,
        }
    })
    .await
    .expect("raw call finishes in time")
}
