//! `docs/walkthrough.md` shows real traces: this test captures them with the wire tracer
//! (`rawgrpc::tracer`) on an in-process server, and fails when the doc no longer matches what
//! the code puts on the wire.
//!
//! After a deliberate change to what goes on the wire, regenerate the traces with
//!
//! ```text
//! RAWGRPC_BLESS=1 cargo test --test walkthrough
//! ```
//!
//! and then re-read the prose around each trace: it cites frames by their numbers.
//!
//! What is compared: each direction's frames, in order, exactly (the two directions travel
//! independently, so how they interleave depends on timing and is not compared), and the
//! connection lines with the client's port masked. Every request carries the `:authority`
//! `localhost:50051` (`ChannelConfig::authority`), so the bytes do not depend on the port the
//! test server happens to get.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rawgrpc::client::channel::ChannelConfig;
use rawgrpc::client::Channel;
use rawgrpc::interop::server::TestServiceImpl;
use rawgrpc::proto::grpc::testing::{
    ResponseParameters, StreamingOutputCallRequest, TestServiceClient, TestServiceServer,
};
use rawgrpc::proto::user::{User, UserRequest, UserServiceClient, UserServiceServer};
use rawgrpc::server::{Server, ServerConfig};
use rawgrpc::services::user::{InMemoryUserStore, UserServiceImpl, UserStore};
use rawgrpc::tracer::WireTrace;
use rawgrpc::Code;
use tokio::net::TcpListener;

const AUTHORITY: &str = "localhost:50051";
const BLESS: &str = "RAWGRPC_BLESS";

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/walkthrough.md")
}

/// The server's trace so far, shared with the scenario.
type Trace = Arc<Mutex<String>>;

/// Runs `scenario` against a fresh traced server (so its connection is `[c1]`, with a fresh
/// HPACK state) and returns the server's trace once the connection has closed.
async fn capture<F, Fut>(scenario: F) -> String
where
    F: FnOnce(SocketAddr, Trace) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    let config = ServerConfig {
        wire_trace: Some(WireTrace::to_fn(move |t| {
            sink.lock().unwrap().push_str(t);
        })),
        ..ServerConfig::default()
    };
    let store = InMemoryUserStore::new();
    store
        .create(&User {
            id: "user-1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            age: 36,
        })
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Server::with_config(config)
        .add_service(UserServiceServer::new(UserServiceImpl::new(store)))
        .add_service(TestServiceServer::new(TestServiceImpl));
    let task = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));

    tokio::time::timeout(Duration::from_secs(10), scenario(addr, Arc::clone(&text)))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "scenario timed out; trace so far:\n{}",
                text.lock().unwrap()
            )
        });
    // The client has gone; the server's side of the connection closes after it.
    for _ in 0..500 {
        if text.lock().unwrap().contains("connection closed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    let _ = task.await;
    let trace = text.lock().unwrap().clone();
    assert!(
        trace.contains("connection closed"),
        "connection never closed:\n{trace}"
    );
    trace
}

/// Waits until the client has acknowledged the server's SETTINGS. The two ends send their
/// SETTINGS at once, so when the client's acknowledgement goes out (before or after its first
/// request) is a race; settling it first makes every run put the same frames in the same
/// order.
async fn settled(trace: &Trace) {
    for _ in 0..500 {
        let acked = trace
            .lock()
            .unwrap()
            .lines()
            .any(|l| l.contains(" C→S ") && l.contains("SETTINGS") && l.contains("flags=ACK"));
        if acked {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the client never acknowledged the server's SETTINGS");
}

/// A connection, settled (see [`settled`]).
async fn channel(addr: SocketAddr, trace: &Trace) -> Channel {
    let config = ChannelConfig {
        authority: Some(AUTHORITY.to_owned()),
        ..ChannelConfig::default()
    };
    let channel = Channel::connect_with(&addr.to_string(), config)
        .await
        .unwrap();
    settled(trace).await;
    channel
}

fn user_request(id: &str) -> UserRequest<'_> {
    UserRequest {
        user: Some(User {
            id: id.into(),
            ..User::default()
        }),
    }
}

async fn get_user(addr: SocketAddr, trace: Trace) {
    let client = UserServiceClient::new(channel(addr, &trace).await);
    let reply = client.get_user(user_request("user-1")).await.unwrap();
    let user = reply.message().view().user.clone().unwrap();
    assert_eq!(user.name, "Ada");
}

async fn not_found(addr: SocketAddr, trace: Trace) {
    let client = UserServiceClient::new(channel(addr, &trace).await);
    let status = client.get_user(user_request("nobody")).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

fn params(sizes_and_intervals: &[(i32, i32)]) -> StreamingOutputCallRequest<'static> {
    StreamingOutputCallRequest {
        response_parameters: sizes_and_intervals
            .iter()
            .map(|&(size, interval_us)| ResponseParameters {
                size,
                interval_us,
                ..ResponseParameters::default()
            })
            .collect(),
        ..StreamingOutputCallRequest::default()
    }
}

async fn server_streaming(addr: SocketAddr, trace: Trace) {
    let client = TestServiceClient::new(channel(addr, &trace).await);
    let reply = client
        .streaming_output_call(params(&[(3, 0), (5, 0)]))
        .await
        .unwrap();
    let mut messages = reply.into_message();
    let mut sizes = Vec::new();
    while let Some(m) = messages.message().await.unwrap() {
        sizes.push(m.view().payload.as_ref().map_or(0, |p| p.body.len()));
    }
    assert_eq!(sizes, [3, 5]);
}

/// A client that sends `grpc-timeout: 100m` and leaves the deadline to the server (rawgrpc's
/// own client would race the server to it, with its own timer): a plain h2 client.
async fn deadline(addr: SocketAddr, trace: Trace) {
    let socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, connection) = h2::client::handshake(socket).await.unwrap();
    let driver = tokio::spawn(connection);
    settled(&trace).await;
    let head = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{AUTHORITY}/grpc.testing.TestService/StreamingOutputCall"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "100m")
        .body(())
        .unwrap();
    let body = rawgrpc::codec::encode(&params(&[(1, 0), (1, 500_000)]), 1 << 20).unwrap();
    let (response, mut stream) = send.send_request(head, false).unwrap();
    stream.send_data(body, true).unwrap();
    let mut response = response.await.unwrap();
    let mut received = Vec::new();
    while let Some(chunk) = response.body_mut().data().await {
        let chunk: Bytes = chunk.unwrap();
        let _ = response
            .body_mut()
            .flow_control()
            .release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let trailers = response.body_mut().trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "4");
    assert_eq!(received.len(), 5 + 5, "one message of a 1-byte payload");
    // The connection closes once every handle on it is gone.
    drop((send, stream, response));
    let _ = driver.await;
}

/// The trace with the client's port masked, as (direction or "conn") → its entries in order;
/// an entry is a line starting with `[c` and the indented lines under it.
fn entries(trace: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut current: Option<(&'static str, String)> = None;
    for line in trace.lines() {
        if line.starts_with("[c") {
            if let Some((key, entry)) = current.take() {
                out.entry(key).or_default().push(entry);
            }
            let key = if line.contains(" C→S ") {
                "C→S"
            } else if line.contains(" S→C ") {
                "S→C"
            } else {
                "conn"
            };
            current = Some((key, mask_port(line)));
        } else if let Some((_, entry)) = &mut current {
            entry.push('\n');
            entry.push_str(line);
        }
    }
    if let Some((key, entry)) = current {
        out.entry(key).or_default().push(entry);
    }
    out
}

fn mask_port(line: &str) -> String {
    match line.find("127.0.0.1:") {
        Some(at) => {
            let start = at + "127.0.0.1:".len();
            let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
            format!("{}PORT{}", &line[..start], &line[start + digits..])
        }
        None => line.to_owned(),
    }
}

const START: &str = "<!-- trace: ";
const END: &str = "<!-- end trace -->";

/// The trace block named `name` in `doc`: the byte range of its contents (inside the fence).
fn block(doc: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let marker = format!("{START}{name} -->\n```text\n");
    let start = doc.find(&marker)? + marker.len();
    let end = start + doc[start..].find(&format!("```\n{END}"))?;
    Some(start..end)
}

#[tokio::test]
async fn walkthrough_traces_match_the_code() {
    let traces = [
        ("get_user", capture(get_user).await),
        ("server_streaming", capture(server_streaming).await),
        ("not_found", capture(not_found).await),
        ("deadline", capture(deadline).await),
    ];
    let path = doc_path();
    let mut doc = std::fs::read_to_string(&path).expect("docs/walkthrough.md");
    let bless = std::env::var_os(BLESS).is_some();
    let mut stale = Vec::new();
    for (name, trace) in &traces {
        let Some(range) = block(&doc, name) else {
            panic!("docs/walkthrough.md has no `{START}{name} -->` block followed by a ```text fence and `{END}`");
        };
        if entries(&doc[range.clone()]) == entries(trace) {
            continue;
        }
        if bless {
            doc.replace_range(range, trace);
        } else {
            stale.push(format!(
                "=== {name}: the code now puts this on the wire:\n{trace}"
            ));
        }
    }
    if bless {
        std::fs::write(&path, &doc).unwrap();
    }
    assert!(
        stale.is_empty(),
        "docs/walkthrough.md is out of date; rerun with {BLESS}=1 and re-read the prose.\n{}",
        stale.join("\n")
    );
}
