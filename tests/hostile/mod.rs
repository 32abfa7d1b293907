//! Helpers for `tests/hostile_peers.rs`: a raw HTTP/2 peer ([`frames`], [`hpack`]), servers in
//! their own process for memory measurements ([`process`]), and the "does it still serve?"
//! checks every test ends with.
#![allow(dead_code)]

pub mod frames;
pub mod hpack;
pub mod process;

use std::net::SocketAddr;
use std::time::Duration;

use rawgrpc::client::Channel;
use rawgrpc::proto::grpc::testing::{Empty, TestServiceClient};
use rawgrpc::proto::user::{CreateUserRequest, User, UserRequest, UserServiceClient};

use process::{mib, Memory};

/// The bound on any single wait in these tests.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Headroom over idle memory a server may use under attack before a test fails: generous, so
/// that allocator noise never fails a test, and far below what an unbounded buffer reaches.
pub const HEADROOM_KIB: u64 = 64 * 1024;

/// Creates user `ok` (or finds it already there) and reads it back with a stock client: a proper
/// gRPC answer proves the server still serves.
pub async fn still_serves(addr: SocketAddr) {
    tokio::time::timeout(LIMIT, async {
        let channel = Channel::connect(&format!("http://{addr}"))
            .await
            .expect("a new client can connect");
        let client = UserServiceClient::new(channel);
        let ok = || User {
            id: "ok".into(),
            name: "Ok".into(),
            ..User::default()
        };
        let _ = client
            .create_user(CreateUserRequest { user: Some(ok()) })
            .await; // OK or ALREADY_EXISTS
        let reply = client
            .get_user(UserRequest { user: Some(ok()) })
            .await
            .expect("the server still serves GetUser");
        assert_eq!(reply.message().view().user.expect("a user").id, "ok");
        // And an unknown id is a proper NOT_FOUND.
        let missing = client
            .get_user(UserRequest {
                user: Some(User {
                    id: "nobody".into(),
                    ..User::default()
                }),
            })
            .await
            .map(drop)
            .map_err(|s| s.code());
        assert_eq!(missing, Err(rawgrpc::Code::NotFound));
    })
    .await
    .expect("GetUser answered in time");
}

/// The interop TestService answers EmptyCall.
pub async fn interop_still_serves(addr: SocketAddr) {
    tokio::time::timeout(LIMIT, async {
        let channel = Channel::connect(&format!("http://{addr}"))
            .await
            .expect("a new client can connect");
        TestServiceClient::new(channel)
            .empty_call(Empty {})
            .await
            .expect("the server still serves EmptyCall");
    })
    .await
    .expect("EmptyCall answered in time");
}

/// Prints one line of memory figures and asserts the peak stayed within [`HEADROOM_KIB`] of
/// idle.
pub fn report_memory(test: &str, idle: Memory, after: Memory) {
    println!(
        "RSS {test}: idle {:.1} MiB, peak {:.1} MiB (VmHWM), now {:.1} MiB",
        mib(idle.rss_kib),
        mib(after.hwm_kib),
        mib(after.rss_kib),
    );
    assert!(
        after.hwm_kib < idle.rss_kib.max(idle.hwm_kib) + HEADROOM_KIB,
        "{test}: peak RSS {:.1} MiB is over idle {:.1} MiB + {} MiB",
        mib(after.hwm_kib),
        mib(idle.rss_kib),
        HEADROOM_KIB / 1024,
    );
}

/// What came back for a request sent with [`H2Client`].
#[derive(Debug)]
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub data: Vec<u8>,
    pub trailers: Option<http::HeaderMap>,
}

impl Reply {
    /// `grpc-status`, from the trailers or (Trailers-Only) the headers.
    pub fn grpc_status(&self) -> Option<String> {
        let from = |h: &http::HeaderMap| {
            h.get("grpc-status")
                .map(|v| v.to_str().unwrap_or("?").to_owned())
        };
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
    }

    pub fn grpc_message(&self) -> String {
        let from = |h: &http::HeaderMap| {
            h.get("grpc-message")
                .map(|v| rawgrpc::wire::status::percent_decode(v.as_bytes()))
        };
        self.trailers
            .as_ref()
            .and_then(from)
            .or_else(|| from(&self.headers))
            .unwrap_or_default()
    }

    /// Asserts HTTP 200 and `grpc-status: code`.
    #[track_caller]
    pub fn assert_grpc(&self, code: &str, what: &str) {
        assert_eq!(self.status, 200, "{what}: {self:?}");
        assert_eq!(
            self.grpc_status().as_deref(),
            Some(code),
            "{what}: {self:?}"
        );
    }
}

/// An h2 client connection for sending requests no gRPC client would send, many over one
/// connection.
pub struct H2Client {
    send: h2::client::SendRequest<bytes::Bytes>,
    driver: tokio::task::JoinHandle<()>,
    pub addr: SocketAddr,
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A request head for `path` with the headers of a gRPC call; tests then break what they want.
pub fn grpc_head(addr: SocketAddr, path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("valid head")
}

impl H2Client {
    pub async fn connect(addr: SocketAddr) -> H2Client {
        let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (send, conn) = h2::client::handshake(socket).await.expect("handshake");
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        H2Client { send, driver, addr }
    }

    /// Sends `head` and `chunks` as DATA frames, the last with END_STREAM if `end`, and reads
    /// the whole reply. With `end == false` the request stays open while we wait: the answer
    /// must come without the rest of the body.
    pub async fn call(&self, head: http::Request<()>, chunks: Vec<Vec<u8>>, end: bool) -> Reply {
        tokio::time::timeout(LIMIT, async {
            let mut send = self.send.clone().ready().await.expect("connection ready");
            let (response, mut stream) = send
                .send_request(head, end && chunks.is_empty())
                .expect("send request");
            let n = chunks.len();
            for (i, chunk) in chunks.into_iter().enumerate() {
                if stream
                    .send_data(bytes::Bytes::from(chunk), end && i + 1 == n)
                    .is_err()
                {
                    break; // the server answered and reset already
                }
            }
            let response = response.await.expect("a response");
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
            drop(stream);
            Reply {
                status: parts.status,
                headers: parts.headers,
                data,
                trailers,
            }
        })
        .await
        .expect("the server answered in time")
    }

    /// A GetUser call carrying `body` (already framed), with END_STREAM.
    pub async fn get_user_raw(&self, body: Vec<u8>) -> Reply {
        let head = grpc_head(self.addr, "/UserService/GetUser");
        self.call(head, vec![body], true).await
    }
}

/// Protobuf varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
pub fn len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `UserRequest { user: User { id } }`, encoded.
pub fn user_request(id: &str) -> Vec<u8> {
    let mut user = Vec::new();
    len_field(&mut user, 4, id.as_bytes());
    let mut out = Vec::new();
    len_field(&mut out, 1, &user);
    out
}

/// A gRPC message with flag `flag` and a declared length of `declared`, followed by `payload`.
pub fn prefixed(flag: u8, declared: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![flag];
    v.extend_from_slice(&declared.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// `payload` framed as one uncompressed message.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    prefixed(0, payload.len() as u32, payload)
}
