//! The client against servers that do not answer like gRPC: the HTTP status and malformed
//! responses become the codes the spec names (`doc/http-grpc-status-mapping.md`).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{UserRequest, UserServiceClient};
use rawgrpc::Code;
use tokio::net::TcpListener;

/// A bare h2 server that answers every request with `status`, `content_type`, and optionally
/// a body and trailers.
async fn fake_server(
    status: u16,
    content_type: &'static str,
    body: Option<&'static [u8]>,
    trailers: Option<(&'static str, &'static str)>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    let response = http::Response::builder()
                        .status(status)
                        .header("content-type", content_type)
                        .body(())
                        .expect("response");
                    let end = body.is_none() && trailers.is_none();
                    let Ok(mut send) = respond.send_response(response, end) else {
                        continue;
                    };
                    if let Some(b) = body {
                        let _ = send.send_data(Bytes::from_static(b), trailers.is_none());
                    }
                    if let Some((k, v)) = trailers {
                        let mut t = http::HeaderMap::new();
                        t.insert(k, http::HeaderValue::from_static(v));
                        let _ = send.send_trailers(t);
                    }
                }
            });
        }
    });
    addr
}

async fn code_from(addr: SocketAddr) -> Code {
    let channel = Channel::connect(&addr.to_string()).await.expect("connect");
    let c = UserServiceClient::new(channel);
    tokio::time::timeout(Duration::from_secs(10), c.get_user(UserRequest::default()))
        .await
        .expect("in time")
        .expect_err("not a successful call")
        .code()
}

#[tokio::test]
async fn http_statuses_map_to_grpc_codes() {
    for (status, code) in [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (503, Code::Unavailable),
        (504, Code::Unavailable),
        (500, Code::Unknown),
    ] {
        let addr = fake_server(status, "text/html", Some(b"<html>"), None).await;
        assert_eq!(code_from(addr).await, code, "HTTP {status}");
    }
}

#[tokio::test]
async fn non_grpc_content_type_is_unknown() {
    let addr = fake_server(200, "text/html", Some(b"<html>"), None).await;
    assert_eq!(code_from(addr).await, Code::Unknown);
}

#[tokio::test]
async fn trailers_without_grpc_status_are_unknown() {
    let addr = fake_server(
        200,
        "application/grpc",
        Some(&[0, 0, 0, 0, 0]),
        Some(("x", "y")),
    )
    .await;
    assert_eq!(code_from(addr).await, Code::Unknown);
}

#[tokio::test]
async fn trailers_only_status_and_percent_decoded_message() {
    let addr = fake_server(200, "application/grpc", None, None).await;
    // Trailers-Only without grpc-status.
    assert_eq!(code_from(addr).await, Code::Unknown);
    let addr = fake_server(
        200,
        "application/grpc",
        Some(&[0, 0, 0, 0]),
        Some(("grpc-status", "0")),
    )
    .await;
    // A truncated message with an OK status is still a broken response.
    assert_eq!(code_from(addr).await, Code::Internal);
    let addr = fake_server(
        200,
        "application/grpc",
        Some(&[]),
        Some(("grpc-status", "5")),
    )
    .await;
    assert_eq!(code_from(addr).await, Code::NotFound);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let e = Channel::connect(&addr.to_string())
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::Unavailable);
}
