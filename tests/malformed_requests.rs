//! Requests no well-behaved client sends, over real sockets: each gets the answer the spec
//! gives, and the server then still serves a normal GetUser.

mod common;

use common::{framed, grpc_head, raw_call, RawReply, TestServer};
use http::HeaderValue;
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{CreateUserRequest, User, UserRequest, UserServiceClient};

/// Creates user `ok` once, then checks after every bad request that GetUser still works.
async fn still_serves(server: &TestServer) {
    let c = UserServiceClient::new(Channel::connect(&server.url()).await.expect("connect"));
    let _ = c
        .create_user(CreateUserRequest {
            user: Some(User {
                id: "ok".into(),
                ..User::default()
            }),
        })
        .await;
    let r = c
        .get_user(UserRequest {
            user: Some(User {
                id: "ok".into(),
                ..User::default()
            }),
        })
        .await
        .expect("server still serves GetUser");
    assert_eq!(r.message().view().user.expect("user").id, "ok");
}

async fn get_user_with(server: &TestServer, chunks: Vec<Vec<u8>>) -> RawReply {
    raw_call(
        server.addr,
        grpc_head(server.addr, "/UserService/GetUser"),
        chunks,
    )
    .await
}

fn assert_status(reply: &RawReply, code: &str) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.grpc_status().as_deref(), Some(code), "{reply:?}");
}

#[tokio::test]
async fn garbage_protobuf_is_internal() {
    let server = TestServer::user_service().await;
    let reply = get_user_with(&server, vec![framed(&[0xff, 0xff, 0xff, 0xff, 0x0f])]).await;
    assert_status(&reply, "13");
    assert!(reply.grpc_message().contains("decode"), "{reply:?}");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn truncated_message_is_internal() {
    let server = TestServer::user_service().await;
    let mut bytes = framed(b"\x0a\x04\x22\x02ab");
    bytes.truncate(bytes.len() - 3);
    let reply = get_user_with(&server, vec![bytes]).await;
    assert_status(&reply, "13");
    // A prefix cut short, too.
    let reply = get_user_with(&server, vec![vec![0, 0, 0]]).await;
    assert_status(&reply, "13");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn huge_declared_length_is_resource_exhausted_without_allocating() {
    let server = TestServer::user_service().await;
    let reply = get_user_with(&server, vec![vec![0, 0xff, 0xff, 0xff, 0xff]]).await;
    assert_status(&reply, "8");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn zero_or_two_messages_on_a_unary_method_are_internal() {
    let server = TestServer::user_service().await;
    // END_STREAM on the HEADERS frame, no DATA at all.
    let reply = get_user_with(&server, vec![]).await;
    assert_status(&reply, "13");
    // An empty DATA frame with END_STREAM.
    let reply = get_user_with(&server, vec![vec![]]).await;
    assert_status(&reply, "13");
    let mut two = framed(b"");
    two.extend(framed(b""));
    let reply = get_user_with(&server, vec![two]).await;
    assert_status(&reply, "13");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn compressed_flag_without_encoding_is_internal() {
    let server = TestServer::user_service().await;
    let mut bytes = framed(b"");
    bytes[0] = 1;
    let reply = get_user_with(&server, vec![bytes]).await;
    assert_status(&reply, "13");
    for flag in [2u8, 0x80, 0xff] {
        let mut bytes = framed(b"");
        bytes[0] = flag;
        let reply = get_user_with(&server, vec![bytes]).await;
        assert_status(&reply, "13");
    }
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_skipped() {
    let server = TestServer::user_service().await;
    // UserRequest { user: User { id: "ok", field 99: varint 1 } , field 7: "zz" }
    let user = [0x22, 0x02, b'o', b'k', 0x98, 0x06, 0x01];
    let mut msg = vec![0x0a, user.len() as u8];
    msg.extend_from_slice(&user);
    msg.extend_from_slice(&[0x3a, 0x02, b'z', b'z']);
    still_serves(&server).await; // creates "ok"
    let reply = get_user_with(&server, vec![framed(&msg)]).await;
    assert_status(&reply, "0");
    server.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_http_415() {
    let server = TestServer::user_service().await;
    for ct in [
        Some("application/json"),
        Some("text/plain"),
        Some("application/grpc+json"),
        None,
    ] {
        let mut head = grpc_head(server.addr, "/UserService/GetUser");
        match ct {
            Some(ct) => {
                head.headers_mut()
                    .insert("content-type", HeaderValue::from_static(ct));
            }
            None => {
                head.headers_mut().remove("content-type");
            }
        }
        let reply = raw_call(server.addr, head, vec![framed(b"")]).await;
        assert_eq!(reply.status, 415, "{ct:?}: {reply:?}");
    }
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn get_instead_of_post_is_http_405() {
    let server = TestServer::user_service().await;
    let mut head = grpc_head(server.addr, "/UserService/GetUser");
    *head.method_mut() = http::Method::GET;
    let reply = raw_call(server.addr, head, vec![]).await;
    assert_eq!(reply.status, 405, "{reply:?}");
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_grpc_timeout_is_internal() {
    let server = TestServer::user_service().await;
    for bad in ["", "1", "123456789S", "1x", "-5m"] {
        let mut head = grpc_head(server.addr, "/UserService/GetUser");
        head.headers_mut()
            .insert("grpc-timeout", HeaderValue::from_static(bad));
        let reply = raw_call(server.addr, head, vec![framed(b"")]).await;
        assert_status(&reply, "13");
    }
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unsupported_grpc_encoding_is_unimplemented_with_accept_encoding() {
    let server = TestServer::user_service().await;
    let mut head = grpc_head(server.addr, "/UserService/GetUser");
    head.headers_mut()
        .insert("grpc-encoding", HeaderValue::from_static("snappy"));
    let reply = raw_call(server.addr, head, vec![framed(b"")]).await;
    assert_status(&reply, "12");
    assert!(
        reply.headers.contains_key("grpc-accept-encoding"),
        "{reply:?}"
    );
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_path_is_unimplemented_trailers_only() {
    let server = TestServer::user_service().await;
    let reply = raw_call(
        server.addr,
        grpc_head(server.addr, "/UserService/Nope"),
        vec![framed(b"")],
    )
    .await;
    assert_status(&reply, "12");
    assert!(reply.trailers.is_none(), "Trailers-Only: one HEADERS frame");
    assert!(reply.data.is_empty());
    still_serves(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_successful_call_has_headers_data_and_trailers() {
    let server = TestServer::user_service().await;
    still_serves(&server).await;
    let msg = [0x0a, 0x04, 0x22, 0x02, b'o', b'k'];
    let reply = get_user_with(&server, vec![framed(&msg)]).await;
    assert_eq!(
        reply.headers.get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/grpc"[..])
    );
    assert!(reply.headers.get("grpc-status").is_none());
    let trailers = reply.trailers.as_ref().expect("trailers");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    // One framed UserResponse carrying the user.
    assert_eq!(reply.data[0], 0);
    let len = u32::from_be_bytes([reply.data[1], reply.data[2], reply.data[3], reply.data[4]]);
    assert_eq!(len as usize, reply.data.len() - 5);
    server.stop().await;
}
