//! Hostile peers, over real sockets on 127.0.0.1 ("Fuzz the framing layer and survive hostile
//! peers", part 3).
//!
//! Every test sends something no well-behaved client sends, checks the answer the gRPC and
//! HTTP/2 specs give, and then checks that the server still serves a normal GetUser (or, for
//! the interop server, EmptyCall). The memory tests run the server in a process of its own
//! (`rawgrpc serve`, `interop-server`) and read its VmRSS / VmHWM from `/proc/PID/status`;
//! each prints one line, visible with `--nocapture`:
//!
//! ```text
//! RSS rapid_reset: idle 6.1 MiB, peak 7.3 MiB (VmHWM), now 7.0 MiB
//! ```
//!
//! and asserts a generous bound (peak < idle + 64 MiB), so allocator noise never fails a test
//! while an unbounded buffer would. Raw HTTP/2 is written by hand with `hostile::frames`.
//!
//! The out-of-process servers are the binaries cargo builds for this test; set
//! `HOSTILE_RAWGRPC_BIN` / `HOSTILE_INTEROP_SERVER_BIN` to measure others (a release build).
//! Tests marked `#[ignore = "needs …"]` describe behavior the library does not have yet; run
//! them with `--ignored` to see it.

mod common;
mod hostile;

use std::future::Future;
use std::time::Duration;

use common::TestServer;
use hostile::frames::{self, RawConn};
use hostile::process::{Binary, ServerProcess};
use hostile::{
    framed, grpc_head, interop_still_serves, prefixed, report_memory, still_serves, user_request,
    H2Client, LIMIT,
};
use http::HeaderValue;
use rawgrpc::proto::user::UserServiceServer;
use rawgrpc::server::ServerConfig;
use rawgrpc::services::user::UserServiceImpl;
use tokio::io::AsyncWriteExt;

/// No test may run longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(45);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("the test finished in time")
}

async fn user_server() -> TestServer {
    user_server_with(ServerConfig::default()).await
}

async fn user_server_with(config: ServerConfig) -> TestServer {
    TestServer::start_with(config, UserServiceServer::new(UserServiceImpl::in_memory())).await
}

// ---------------------------------------------------------------------------------------------
// Length-Prefixed-Message framing and the protobuf inside it.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_message_then_end_stream_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let whole = framed(&user_request("ok"));
        // The payload cut short.
        let reply = c.get_user_raw(whole[..whole.len() - 3].to_vec()).await;
        reply.assert_grpc("13", "payload cut short");
        // The prefix cut short.
        let reply = c.get_user_raw(vec![0, 0, 0]).await;
        reply.assert_grpc("13", "prefix cut short");
        // A declared length of 10, four bytes, then END_STREAM on an empty DATA frame.
        let head = grpc_head(server.addr, "/UserService/GetUser");
        let reply = c
            .call(
                head,
                vec![prefixed(0, 10, b"\x0a\x02\x22\x00"), vec![]],
                true,
            )
            .await;
        reply.assert_grpc("13", "END_STREAM inside a message");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// A declared length of 0xFFFFFFFF is refused from the 5-byte prefix alone: the answer comes
/// while the request is still open and none of the 4 GiB was sent, and the server's memory
/// does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_length_of_4_gib_is_resource_exhausted_without_allocating() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let c = H2Client::connect(server.addr).await;
        for _ in 0..20 {
            let head = grpc_head(server.addr, "/UserService/GetUser");
            let reply = c.call(head, vec![prefixed(0, u32::MAX, b"")], false).await;
            reply.assert_grpc("8", "declared length 0xFFFFFFFF");
            assert!(reply.grpc_message().contains("4294967295"), "{reply:?}");
        }
        // With END_STREAM too, and a compressed flag: the same.
        let reply = c.get_user_raw(prefixed(1, u32::MAX, b"")).await;
        reply.assert_grpc("8", "compressed, declared length 0xFFFFFFFF");
        report_memory("declared_length_4_gib", idle, server.memory());
        drop(c);
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_over_the_limit_is_resource_exhausted() {
    bounded(async {
        // A 1 KiB limit: 1024 bytes pass the framing layer, 1025 do not.
        let server = user_server_with(ServerConfig {
            max_receive_message_len: 1024,
            ..ServerConfig::default()
        })
        .await;
        let c = H2Client::connect(server.addr).await;
        let fits = user_request(&"x".repeat(1018));
        assert_eq!(fits.len(), 1024);
        let reply = c.get_user_raw(framed(&fits)).await;
        reply.assert_grpc("5", "1024 bytes: decoded, an unknown id"); // NOT_FOUND
        let over = user_request(&"x".repeat(1019));
        assert_eq!(over.len(), 1025);
        let reply = c.get_user_raw(framed(&over)).await;
        reply.assert_grpc("8", "1025 bytes");
        // Gzip of a message over the limit is refused as well, even though it is small on the
        // wire: the limit applies after decompression.
        let mut zipped = Vec::new();
        rawgrpc::wire::compression::gzip_into(&vec![0u8; 64 * 1024], &mut zipped).expect("gzip");
        assert!(zipped.len() < 1024);
        let mut head = grpc_head(server.addr, "/UserService/GetUser");
        head.headers_mut()
            .insert("grpc-encoding", HeaderValue::from_static("gzip"));
        let reply = c
            .call(head, vec![prefixed(1, zipped.len() as u32, &zipped)], true)
            .await;
        reply.assert_grpc("8", "64 KiB gzipped into < 1 KiB");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;

        // The default limit, 4 MiB: a body of 4 MiB + 1 actually sent, answered at its prefix.
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let big = prefixed(0, 4 * 1024 * 1024 + 1, &vec![0u8; 4 * 1024 * 1024 + 1]);
        let reply = c.get_user_raw(big).await;
        reply.assert_grpc("8", "4 MiB + 1");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_flag_without_grpc_encoding_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        for payload in [&b""[..], &user_request("ok")] {
            let reply = c
                .get_user_raw(prefixed(1, payload.len() as u32, payload))
                .await;
            reply.assert_grpc("13", "compressed flag, no grpc-encoding");
        }
        // `grpc-encoding: identity` does not compress either.
        let mut head = grpc_head(server.addr, "/UserService/GetUser");
        head.headers_mut()
            .insert("grpc-encoding", HeaderValue::from_static("identity"));
        let reply = c.call(head, vec![prefixed(1, 0, b"")], true).await;
        reply.assert_grpc("13", "compressed flag, grpc-encoding: identity");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_grpc_encoding_is_unimplemented_with_grpc_accept_encoding() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        for encoding in ["snappy", "br", "GZIP", "gzip, identity", "x"] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            head.headers_mut()
                .insert("grpc-encoding", HeaderValue::from_static(encoding));
            let reply = c.call(head, vec![prefixed(1, 0, b"")], true).await;
            reply.assert_grpc("12", encoding);
            let accepted = reply
                .headers
                .get("grpc-accept-encoding")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            assert!(accepted.contains("gzip"), "{encoding}: {reply:?}");
            assert!(
                reply.data.is_empty() && reply.trailers.is_none(),
                "Trailers-Only"
            );
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// The Compressed-Flag is 0 or 1; every other value, 2 to 255, is INTERNAL, with or without a
/// `grpc-encoding`. All 508 calls share one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_flag_values_2_to_255_are_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let message = user_request("ok");
        for encoding in [None, Some("gzip")] {
            for flag in 2..=255u8 {
                let mut head = grpc_head(server.addr, "/UserService/GetUser");
                if let Some(e) = encoding {
                    head.headers_mut()
                        .insert("grpc-encoding", HeaderValue::from_static(e));
                }
                let body = prefixed(flag, message.len() as u32, &message);
                let reply = c.call(head, vec![body], true).await;
                reply.assert_grpc("13", &format!("flag {flag}, encoding {encoding:?}"));
            }
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_protobuf_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let cases: &[(&str, &[u8])] = &[
            ("a tag of wire type 7", &[0xff, 0xff, 0xff, 0xff, 0x0f]),
            ("wire type 6", &[0x0e, 0x00]),
            ("a tag and no value", &[0x0a]),
            ("a length past the end", &[0x0a, 0x05, 0x22]),
            ("a nested length past the end", &[0x0a, 0x02, 0x22, 0x05]),
            ("a length of 2 GiB", &[0x0a, 0x80, 0x80, 0x80, 0x80, 0x08]),
            (
                "a varint of 11 bytes",
                &[
                    0x38, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
            ),
            ("a varint cut short", &[0x38, 0xff]),
            ("a fixed64 cut short", &[0x39, 0x01, 0x02]),
            ("a fixed32 cut short", &[0x3d, 0x01]),
        ];
        for (what, payload) in cases {
            let reply = c.get_user_raw(framed(payload)).await;
            reply.assert_grpc("13", what);
            assert!(reply.grpc_message().contains("decode"), "{what}: {reply:?}");
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// A length varint over 32 bits is invalid protobuf (lengths stop at 2 GiB) and must fail to
/// decode. quick-protobuf's `read_varint32` keeps the low 32 bits instead: the length
/// 0x1_0000_0004 reads as 4, and this message — which protobuf-go, C++ and Java all reject —
/// is served as `GetUser { user: { id: "ok" } }`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the protobuf decoder to reject length varints of more than 32 bits: \
            quick-protobuf 0.8 BytesReader::read_varint32 truncates them (0x1_0000_0004 reads as \
            4), so this request is answered OK with user \"ok\" instead of INTERNAL"]
async fn protobuf_length_over_32_bits_is_internal() {
    bounded(async {
        let server = user_server().await;
        still_serves(server.addr).await; // creates "ok"
        let c = H2Client::connect(server.addr).await;
        // UserRequest.user, length 0x1_0000_0004, then User { id: "ok" }.
        let payload = [0x0a, 0x84, 0x80, 0x80, 0x80, 0x10, 0x22, 0x02, b'o', b'k'];
        let reply = c.get_user_raw(framed(&payload)).await;
        reply.assert_grpc("13", "a length of 4 GiB + 4");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Field number 0 is reserved and invalid on the wire; protobuf-go and C++ fail to parse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the protobuf decoder to reject field number 0: quick-protobuf 0.8 skips it \
            as an unknown field, so the request decodes as an empty UserRequest \
            (INVALID_ARGUMENT \"user is required\") instead of INTERNAL"]
async fn protobuf_field_number_zero_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let reply = c.get_user_raw(framed(&[0x02, 0x00])).await;
        reply.assert_grpc("13", "field number 0");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Unknown fields of the deprecated group wire types (3 and 4) must be skipped like any other
/// unknown field (a proto2 peer may send them); protobuf-go, C++ and Java skip them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs unknown group fields to be skipped: quick-protobuf 0.8 \
            BytesReader::read_unknown fails on wire types 3/4 (Error::Deprecated(\"group\")), \
            so the call is INTERNAL instead of OK"]
async fn unknown_group_fields_are_skipped() {
    bounded(async {
        let server = user_server().await;
        still_serves(server.addr).await; // creates "ok"
        let c = H2Client::connect(server.addr).await;
        let mut request = user_request("ok");
        // Field 50: START_GROUP, a varint field 1 inside, END_GROUP.
        request.extend_from_slice(&[0x93, 0x03, 0x08, 0x01, 0x94, 0x03]);
        let reply = c.get_user_raw(framed(&request)).await;
        reply.assert_grpc("0", "an unknown group");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Fields the schema does not know, of every wire type, at both levels, are skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_protobuf_fields_are_skipped() {
    bounded(async {
        let server = user_server().await;
        still_serves(server.addr).await; // creates "ok"
        let unknown = {
            let mut u = Vec::new();
            u.extend_from_slice(&[0x98, 0x06, 0x01]); // field 99, varint
            u.extend_from_slice(&[0xa1, 0x06, 1, 2, 3, 4, 5, 6, 7, 8]); // field 100, fixed64
            hostile::len_field(&mut u, 101, b"unknown bytes"); // field 101, length-delimited
            u.extend_from_slice(&[0xb5, 0x06, 1, 2, 3, 4]); // field 102, fixed32
            u
        };
        let mut user = unknown.clone();
        hostile::len_field(&mut user, 4, b"ok");
        user.extend_from_slice(&unknown);
        let mut request = unknown.clone();
        hostile::len_field(&mut request, 1, &user);
        request.extend_from_slice(&unknown);
        let c = H2Client::connect(server.addr).await;
        let reply = c.get_user_raw(framed(&request)).await;
        reply.assert_grpc("0", "unknown fields");
        assert!(
            reply.data.windows(2).any(|w| w == b"ok"),
            "the user came back: {reply:?}"
        );
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_or_two_messages_on_a_unary_method_are_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let head = || grpc_head(server.addr, "/UserService/GetUser");
        // END_STREAM on HEADERS: no DATA at all.
        c.call(head(), vec![], true)
            .await
            .assert_grpc("13", "no DATA frame");
        // One empty DATA frame with END_STREAM.
        c.call(head(), vec![vec![]], true)
            .await
            .assert_grpc("13", "an empty DATA frame");
        // Two messages in one DATA frame, and in two.
        let one = framed(&user_request("ok"));
        c.call(head(), vec![[one.clone(), one.clone()].concat()], true)
            .await
            .assert_grpc("13", "two messages, one frame");
        c.call(head(), vec![one.clone(), one.clone()], true)
            .await
            .assert_grpc("13", "two messages, two frames");
        // A second complete message is refused at once, before END_STREAM.
        c.call(head(), vec![one.clone(), one.clone()], false)
            .await
            .assert_grpc("13", "a second message, stream still open");
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Request headers.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_content_type_is_http_415() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        let body = framed(&user_request("ok"));
        for ct in [
            None,
            Some(""),
            Some("application/json"),
            Some("text/plain"),
            Some("application/grpc+json"),
            Some("application/grpcx"),
            Some("application/grp"),
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
            let reply = c.call(head, vec![body.clone()], true).await;
            assert_eq!(reply.status, 415, "{ct:?}: {reply:?}");
        }
        // The accepted forms are served.
        for ct in ["application/grpc+proto", "application/grpc;charset=utf-8"] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            head.headers_mut()
                .insert("content-type", HeaderValue::from_static(ct));
            let reply = c.call(head, vec![body.clone()], true).await;
            reply.assert_grpc("5", ct); // NOT_FOUND: user "ok" does not exist yet
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_instead_of_post_is_http_405() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        for method in [http::Method::GET, http::Method::PUT, http::Method::DELETE] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            *head.method_mut() = method.clone();
            let end_with_headers = method == http::Method::GET;
            let chunks = if end_with_headers {
                vec![]
            } else {
                vec![framed(&user_request("ok"))]
            };
            let reply = c.call(head, chunks, true).await;
            assert_eq!(reply.status, 405, "{method}: {reply:?}");
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_grpc_timeout_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        for bad in [
            "",
            "1",
            "m",
            "123456789S",
            "1x",
            "-5m",
            "1.5S",
            " 1S",
            "1S ",
            "0x10m",
        ] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            head.headers_mut()
                .insert("grpc-timeout", HeaderValue::from_static(bad));
            let reply = c.call(head, vec![framed(&user_request("ok"))], true).await;
            reply.assert_grpc("13", &format!("grpc-timeout {bad:?}"));
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_base64_in_bin_metadata_is_internal() {
    bounded(async {
        let server = user_server().await;
        let c = H2Client::connect(server.addr).await;
        for bad in ["!!!!", "not base64?", "Zm9v!", "Zm9v,@@@@", "Z"] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            head.headers_mut()
                .insert("x-token-bin", HeaderValue::from_static(bad));
            let reply = c.call(head, vec![framed(&user_request("ok"))], true).await;
            reply.assert_grpc("13", &format!("x-token-bin: {bad:?}"));
        }
        // Valid base64, padded or not, and a list, pass.
        for good in ["Zm9v", "Zm8=", "Zm8", "Zm9v,YmFy"] {
            let mut head = grpc_head(server.addr, "/UserService/GetUser");
            head.headers_mut()
                .insert("x-token-bin", HeaderValue::from_static(good));
            let reply = c.call(head, vec![framed(&user_request("ok"))], true).await;
            reply.assert_grpc("5", &format!("x-token-bin: {good:?}"));
        }
        drop(c);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// SETTINGS_MAX_HEADER_LIST_SIZE is 16 KiB. What h2 does beyond it, observed and asserted:
///
/// * a block a little over the limit (20 KiB) is decoded and refused on its stream alone:
///   HEADERS `:status 431` with END_STREAM (h2 then resets the stream); the connection stays
///   usable and carries a normal call next;
/// * a 1 MiB block is never buffered: the connection is closed with GOAWAY after the first few
///   frames — COMPRESSION_ERROR when fields straddle frames (h2 will not hold a partial field
///   of a block it already knows is too large), ENHANCE_YOUR_CALM "too_many_continuations"
///   when every frame holds whole fields. Other connections are served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_blocks_are_refused() {
    bounded(async {
        let server = user_server().await;
        still_serves(server.addr).await;

        // 20 KiB: over the limit, within h2's decode margin.
        let mut conn = RawConn::open(server.addr).await;
        let mut fields = hostile::hpack::grpc_request_fields("/UserService/GetUser");
        for i in 0..20 {
            fields.push((format!("x-pad-{i}"), "p".repeat(1000)));
        }
        let block = hostile::hpack::block_of(&fields);
        assert!(block.len() > 20_000);
        assert!(
            conn.send(&frames::split_block(1, &block, 16_384, false))
                .await
        );
        let answered = conn
            .observer
            .until(LIMIT, |o| o.stream(1).done() || o.goaway.is_some())
            .await;
        let s1 = conn.observer.stream(1);
        println!(
            "20 KiB header block: {s1:?}, goaway {:?}",
            conn.observer.goaway
        );
        assert!(answered, "no answer to a 20 KiB header block");
        assert!(conn.observer.goaway.is_none(), "{:?}", conn.observer.goaway);
        assert_eq!(s1.http_status(), Some("431"), "{s1:?}");
        assert!(s1.ended, "{s1:?}");
        // The same connection still carries a normal call.
        let mut request = frames::grpc_request(3, "/UserService/GetUser", false);
        request.extend(frames::data(3, &framed(&user_request("ok")), true));
        assert!(conn.send(&request).await);
        assert!(
            conn.observer.until(LIMIT, |o| o.stream(3).done()).await,
            "stream 3 unanswered"
        );
        let s3 = conn.observer.stream(3);
        assert_eq!(s3.http_status(), Some("200"), "{s3:?}");
        assert_eq!(s3.grpc_status(), Some("0"), "{s3:?}");

        drop(conn);

        // 1 MiB of 1 KiB fields, cut into 16 KiB frames the way a client library cuts a block:
        // fields straddle frames, and h2 will not buffer a partial field past the limit.
        let mut fields = hostile::hpack::grpc_request_fields("/UserService/GetUser");
        for i in 0..1040 {
            fields.push((format!("x-pad-{i:04}"), "p".repeat(1010)));
        }
        let block = hostile::hpack::block_of(&fields);
        assert!(block.len() > 1 << 20);
        let flood = frames::split_block(1, &block, 16_384, false);
        let (observer, sent) = flood_until_closed(server.addr, flood, 16_393).await;
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        println!(
            "1 MiB header block, split anywhere: wrote {sent} bytes, GOAWAY {} {:?}, stream 1 {:?}",
            frames::reason(goaway.code),
            goaway.debug,
            observer.stream(1),
        );
        assert_eq!(goaway.code, frames::COMPRESSION_ERROR, "{goaway:?}");

        // The same 1 MiB with every frame holding whole fields: h2 decodes them, and stops at its
        // CONTINUATION count limit.
        let pseudo =
            hostile::hpack::block_of(&hostile::hpack::grpc_request_fields("/UserService/GetUser"));
        let pad =
            |i: usize| hostile::hpack::block(&[(&format!("x-pad-{i:04}"), &"p".repeat(1009))]);
        assert_eq!(pad(0).len(), 1024);
        let mut flood = Vec::new();
        let mut first = pseudo;
        (0..15).for_each(|i| first.extend(pad(i)));
        flood.extend(frames::frame(frames::HEADERS, 0, 1, &first));
        for f in 0..64 {
            let payload: Vec<u8> = (0..16).flat_map(|i| pad(15 + f * 16 + i)).collect();
            let flags = if f == 63 { frames::END_HEADERS } else { 0 };
            flood.extend(frames::frame(frames::CONTINUATION, flags, 1, &payload));
        }
        let (observer, sent) = flood_until_closed(server.addr, flood, 16_393).await;
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        println!(
            "1 MiB header block, whole fields per frame: wrote {sent} bytes, GOAWAY {} {:?}",
            frames::reason(goaway.code),
            goaway.debug,
        );
        assert_eq!(goaway.code, frames::ENHANCE_YOUR_CALM, "{goaway:?}");
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Opens a raw connection, writes `bytes` in pieces of `chunk` from a task of its own while
/// reading what the server sends, until the server closes the connection. Returns what was
/// read and how many bytes were written before the close.
async fn flood_until_closed(
    addr: std::net::SocketAddr,
    bytes: Vec<u8>,
    chunk: usize,
) -> (frames::Observer, usize) {
    let RawConn {
        mut write,
        mut observer,
    } = RawConn::open(addr).await;
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        for piece in bytes.chunks(chunk) {
            if write.write_all(piece).await.is_err() {
                break;
            }
            sent += piece.len();
        }
        (sent, write)
    });
    let closed = observer.until_closed(LIMIT).await;
    assert!(
        closed,
        "the server left the connection open: {:?}",
        observer.goaway
    );
    let (sent, write) = tokio::time::timeout(LIMIT, writer)
        .await
        .expect("the writer finished")
        .expect("writer task");
    drop(write);
    (observer, sent)
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 abuse.
// ---------------------------------------------------------------------------------------------

/// CVE-2023-44487: HEADERS then RST_STREAM, thousands of times, in batches. h2 counts the
/// streams reset before the server accepted them; past `max_pending_accept_reset_streams` (20)
/// it answers GOAWAY ENHANCE_YOUR_CALM and closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let mut flood = Vec::new();
        for i in 0..5000u32 {
            let id = 2 * i + 1;
            flood.extend(frames::grpc_request(id, "/UserService/GetUser", false));
            flood.extend(frames::rst_stream(id, frames::CANCEL));
        }
        let pair = flood.len() / 5000;
        let (observer, sent) = flood_until_closed(server.addr, flood, pair * 100).await;
        let after = server.memory();
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        println!(
            "rapid reset: {} stream pairs written before the close, GOAWAY {} {:?} last stream {}",
            sent / pair,
            frames::reason(goaway.code),
            goaway.debug,
            goaway.last_stream,
        );
        assert_eq!(goaway.code, frames::ENHANCE_YOUR_CALM, "{goaway:?}");
        report_memory("rapid_reset", idle, after);
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// HEADERS without END_HEADERS, then CONTINUATION frames that never end the block (the
/// "CONTINUATION flood", CVE-2024-27316 and kin): h2 allows a handful of them and answers
/// GOAWAY ENHANCE_YOUR_CALM, whether the frames carry header fields or nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_flood_gets_goaway_and_memory_stays_bounded() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let pseudo = hostile::hpack::block_of(&hostile::hpack::grpc_request_fields(
            "/UserService/GetUser",
        ));
        // 10 000 CONTINUATION frames of 1 KiB of header fields each (10 MiB), never END_HEADERS.
        let mut flood = frames::frame(frames::HEADERS, 0, 1, &pseudo);
        for i in 0..10_000 {
            let field = hostile::hpack::block(&[(&format!("x-c-{i:05}"), &"c".repeat(1000))]);
            flood.extend(frames::frame(frames::CONTINUATION, 0, 1, &field));
        }
        let (observer, sent) = flood_until_closed(server.addr, flood, 64 * 1024).await;
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        println!(
            "CONTINUATION flood (1 KiB frames): {sent} bytes written before the close, GOAWAY {} {:?}",
            frames::reason(goaway.code),
            goaway.debug,
        );
        assert_eq!(goaway.code, frames::ENHANCE_YOUR_CALM, "{goaway:?}");
        // 100 000 empty CONTINUATION frames.
        let mut flood = frames::frame(frames::HEADERS, 0, 1, &pseudo);
        let empty = frames::frame(frames::CONTINUATION, 0, 1, &[]);
        for _ in 0..100_000 {
            flood.extend_from_slice(&empty);
        }
        let (observer, sent) = flood_until_closed(server.addr, flood, 64 * 1024).await;
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        println!(
            "CONTINUATION flood (empty frames): {sent} bytes written before the close, GOAWAY {} {:?}",
            frames::reason(goaway.code),
            goaway.debug,
        );
        assert_eq!(goaway.code, frames::ENHANCE_YOUR_CALM, "{goaway:?}");
        report_memory("continuation_flood", idle, server.memory());
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// 20 000 PINGs, read as they come: every one is answered, memory does not grow, others are
/// served. (The variant that never reads is in tests/connection_management.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_answered_and_memory_stays_bounded() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let RawConn {
            mut write,
            mut observer,
        } = RawConn::open(server.addr).await;
        const PINGS: usize = 20_000;
        let writer = tokio::spawn(async move {
            let flood: Vec<u8> = (0..PINGS)
                .flat_map(|i| frames::ping((i as u64).to_be_bytes()))
                .collect();
            write.write_all(&flood).await.expect("write the flood");
            write
        });
        let all = observer.until(LIMIT, |o| o.ping_acks == PINGS).await;
        let _write = writer.await.expect("writer");
        println!(
            "PING flood: {} of {PINGS} answered, GOAWAY {:?}",
            observer.ping_acks, observer.goaway
        );
        assert!(all, "{} of {PINGS} PINGs answered", observer.ping_acks);
        assert!(observer.goaway.is_none() && !observer.closed);
        still_serves(server.addr).await;
        report_memory("ping_flood", idle, server.memory());
        drop(observer);
        server.stop();
    })
    .await
}

/// 5 000 SETTINGS frames, each changing the window and frame size: each is acknowledged in
/// turn, memory does not grow, the flooding connection itself still carries a call, and others
/// are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_is_acknowledged_and_memory_stays_bounded() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let RawConn {
            mut write,
            mut observer,
        } = RawConn::open(server.addr).await;
        const FLOOD: usize = 5_000;
        let flood: Vec<u8> = (0..FLOOD as u32)
            .flat_map(|i| {
                frames::settings(&[
                    (frames::SETTINGS_INITIAL_WINDOW_SIZE, 65_535 + i),
                    (frames::SETTINGS_MAX_FRAME_SIZE, 16_384 + i),
                ])
            })
            .collect();
        let writer = tokio::spawn(async move {
            write.write_all(&flood).await.expect("write the flood");
            write
        });
        // Others are served during the flood.
        still_serves(server.addr).await;
        // One ACK for the SETTINGS of the preface, one per flooded frame.
        let all = observer
            .until(LIMIT, |o| o.settings_acks == FLOOD + 1)
            .await;
        let mut write = writer.await.expect("writer");
        println!(
            "SETTINGS flood: {} of {} acknowledged, GOAWAY {:?}",
            observer.settings_acks,
            FLOOD + 1,
            observer.goaway
        );
        assert!(all, "{} SETTINGS acknowledged", observer.settings_acks);
        assert!(observer.goaway.is_none() && !observer.closed);
        let mut call = frames::grpc_request(1, "/UserService/GetUser", false);
        call.extend(frames::data(1, &framed(&user_request("ok")), true));
        write.write_all(&call).await.expect("write a call");
        assert!(observer.until(LIMIT, |o| o.stream(1).done()).await);
        assert_eq!(observer.stream(1).grpc_status(), Some("0"));
        report_memory("settings_flood", idle, server.memory());
        drop((write, observer));
        server.stop();
    })
    .await
}

/// SETTINGS_MAX_CONCURRENT_STREAMS is 200. A raw peer opens 300 streams that never finish:
/// the first 200 are accepted (no answer yet: their requests are incomplete), the other 100
/// get RST_STREAM REFUSED_STREAM, the connection stays up, and once a stream completes a new
/// one is accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_max_concurrent_streams_are_refused() {
    bounded(async {
        let server = user_server().await;
        still_serves(server.addr).await; // creates "ok"
        let mut conn = RawConn::open(server.addr).await;
        let mut burst = Vec::new();
        for i in 0..300u32 {
            burst.extend(frames::grpc_request(
                2 * i + 1,
                "/UserService/GetUser",
                false,
            ));
        }
        assert!(conn.send(&burst).await);
        let refused = |o: &frames::Observer| {
            o.streams
                .values()
                .filter(|s| s.reset == Some(frames::REFUSED_STREAM))
                .count()
        };
        assert!(
            conn.observer.until(LIMIT, |o| refused(o) == 100).await,
            "{} streams refused",
            refused(&conn.observer)
        );
        // Give the server a moment to (wrongly) answer anything else.
        conn.observer
            .until(Duration::from_millis(200), |_| false)
            .await;
        for i in 0..300u32 {
            let s = conn.observer.stream(2 * i + 1);
            if i < 200 {
                assert!(
                    !s.done() && s.blocks.is_empty(),
                    "stream {}: {s:?}",
                    2 * i + 1
                );
            } else {
                assert_eq!(
                    s.reset,
                    Some(frames::REFUSED_STREAM),
                    "stream {}",
                    2 * i + 1
                );
            }
        }
        assert!(conn.observer.goaway.is_none(), "{:?}", conn.observer.goaway);
        // Finish stream 1: it is served.
        assert!(
            conn.send(&frames::data(1, &framed(&user_request("ok")), true))
                .await
        );
        assert!(conn.observer.until(LIMIT, |o| o.stream(1).done()).await);
        let s1 = conn.observer.stream(1);
        assert_eq!(s1.grpc_status(), Some("0"), "{s1:?}");
        assert!(s1.data.windows(2).any(|w| w == b"ok"), "{s1:?}");
        // Its slot is free again: a new complete call is accepted and served.
        let mut call = frames::grpc_request(601, "/UserService/GetUser", false);
        call.extend(frames::data(601, &framed(&user_request("ok")), true));
        assert!(conn.send(&call).await);
        assert!(conn.observer.until(LIMIT, |o| o.stream(601).done()).await);
        let s = conn.observer.stream(601);
        assert_eq!(s.reset, None, "{s:?}");
        assert_eq!(s.grpc_status(), Some("0"), "{s:?}");
        drop(conn);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Violations of HTTP/2 itself are connection errors: GOAWAY with the code RFC 9113 names,
/// then the connection closes; the server serves others all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_protocol_violations_get_goaway() {
    bounded(async {
        let server = user_server().await;
        let request = |id| frames::grpc_request(id, "/UserService/GetUser", false);
        let cases: Vec<(&str, Vec<u8>, u32)> = vec![
            (
                "DATA on stream 0",
                frames::data(0, b"x", false),
                frames::PROTOCOL_ERROR,
            ),
            (
                "HEADERS on an even stream",
                request(2),
                frames::PROTOCOL_ERROR,
            ),
            (
                "a stream id lower than the last",
                [request(5), request(3)].concat(),
                frames::PROTOCOL_ERROR,
            ),
            (
                "CONTINUATION without HEADERS",
                frames::frame(frames::CONTINUATION, frames::END_HEADERS, 1, &[]),
                frames::PROTOCOL_ERROR,
            ),
            (
                "a frame over SETTINGS_MAX_FRAME_SIZE",
                [request(1), frames::data(1, &vec![0; 20_000], false)].concat(),
                0x6, // FRAME_SIZE_ERROR
            ),
            (
                "a connection window over 2^31-1",
                [
                    frames::window_update(0, 0x7fff_ffff),
                    frames::window_update(0, 0x7fff_ffff),
                ]
                .concat(),
                0x3, // FLOW_CONTROL_ERROR
            ),
            (
                "a WINDOW_UPDATE of 0 on the connection",
                frames::window_update(0, 0),
                frames::PROTOCOL_ERROR,
            ),
            (
                // RFC 9113 §6.5.2 names FLOW_CONTROL_ERROR; h2 0.4 rejects the frame while
                // parsing it, as PROTOCOL_ERROR. Either is a connection error.
                "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1",
                frames::settings(&[(frames::SETTINGS_INITIAL_WINDOW_SIZE, 0x8000_0000)]),
                frames::PROTOCOL_ERROR,
            ),
        ];
        for (what, bytes, code) in cases {
            let (observer, _) = flood_until_closed(server.addr, bytes, 64 * 1024).await;
            let goaway = observer.goaway.clone();
            println!("{what}: GOAWAY {goaway:?}");
            let goaway = goaway.unwrap_or_else(|| panic!("{what}: no GOAWAY"));
            assert_eq!(
                goaway.code,
                code,
                "{what}: GOAWAY {} instead of {}",
                frames::reason(goaway.code),
                frames::reason(code)
            );
        }
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// A peer opens a server-streaming call asking for 400 replies of 1 MiB, with flow-control
/// windows wide open, and then never reads a byte: only TCP backpressure can stop the server.
/// Its memory must stay bounded (the sink holds at most two messages, h2 a bounded send
/// buffer), it must keep serving others, and it did stream (what the socket buffers held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_a_server_stream_keeps_memory_bounded() {
    bounded(async {
        let server = ServerProcess::start(Binary::Interop).await;
        interop_still_serves(server.addr).await;
        let idle = server.memory();
        let mut conn = RawConn::open_with(
            server.addr,
            &[(frames::SETTINGS_INITIAL_WINDOW_SIZE, 0x7fff_ffff)],
        )
        .await;
        assert!(
            conn.send(&frames::window_update(0, 0x7fff_ffff - 65_535))
                .await
        );
        // StreamingOutputCallRequest { response_parameters: [{ size: 1 MiB }; 400] }
        let mut request = Vec::new();
        for _ in 0..400 {
            let mut params = vec![0x08];
            hostile::varint(&mut params, 1 << 20);
            hostile::len_field(&mut request, 2, &params);
        }
        let mut call =
            frames::grpc_request(1, "/grpc.testing.TestService/StreamingOutputCall", false);
        call.extend(frames::data(1, &framed(&request), true));
        assert!(conn.send(&call).await);
        // Two seconds of not reading.
        tokio::time::sleep(Duration::from_secs(2)).await;
        interop_still_serves(server.addr).await;
        let after = server.memory();
        report_memory("never_reading_peer", idle, after);
        // The server did stream: 4 MiB are there to read at once.
        let flowing = conn
            .observer
            .until(LIMIT, |o| o.stream(1).data.len() > 4 << 20)
            .await;
        assert!(
            flowing,
            "{} bytes streamed",
            conn.observer.stream(1).data.len()
        );
        drop(conn);
        interop_still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// 1000 connections that send nothing or only the client preface: the server holds them
/// (every one is accepted) with bounded memory and serves a normal client meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_1000_idle_connections_keep_memory_bounded() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        still_serves(server.addr).await;
        let idle = server.memory();
        let fds_before = open_fds(server.pid);
        let mut sockets = Vec::with_capacity(1000);
        for i in 0..1000 {
            let mut s = tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect");
            if i % 2 == 1 {
                s.write_all(frames::PREFACE).await.expect("preface");
            }
            sockets.push(s);
        }
        // Every connection reached the server (give or take the warm-up client's socket, which
        // may close meanwhile).
        let accepted = wait_for(LIMIT, || open_fds(server.pid) + 2 >= fds_before + 1000).await;
        assert!(
            accepted,
            "{} sockets open in the server",
            open_fds(server.pid) - fds_before
        );
        still_serves(server.addr).await;
        report_memory("slowloris_1000_connections", idle, server.memory());
        drop(sockets);
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// With a short `handshake_timeout`, 1000 silent connections are all closed once it passes,
/// not before, and a normal client is served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_after_the_handshake_timeout() {
    bounded(async {
        let server = user_server_with(ServerConfig {
            handshake_timeout: Duration::from_millis(500),
            ..ServerConfig::default()
        })
        .await;
        let started = tokio::time::Instant::now();
        let mut waiters = Vec::with_capacity(1000);
        for _ in 0..1000 {
            let s = tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect");
            waiters.push(tokio::spawn(closed_after(s)));
        }
        still_serves(server.addr).await;
        let mut times = Vec::new();
        for w in waiters {
            times.push(
                w.await
                    .expect("waiter")
                    .expect("the server closed the connection"),
            );
        }
        times.sort();
        println!(
            "1000 silent connections closed {:?} to {:?} after the first opened",
            times[0] - started,
            times[999] - started
        );
        // Connecting took some time: each was closed at least 0.4 s after the first opened...
        assert!(
            times[0] - started >= Duration::from_millis(400),
            "{:?}",
            times[0] - started
        );
        // ...and all within a few seconds.
        assert!(times[999] - started < Duration::from_secs(10));
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// A peer that sends the 24-byte client preface and then nothing — not even the SETTINGS frame
/// RFC 9113 §3.4 requires next — should be closed by the handshake timeout too, as
/// `ServerConfig::handshake_timeout` documents ("complete the HTTP/2 preface and SETTINGS
/// exchange").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preface_only_connections_are_closed_after_the_handshake_timeout() {
    bounded(async {
        let server = user_server_with(ServerConfig {
            handshake_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        })
        .await;
        let mut waiters = Vec::new();
        for _ in 0..10 {
            let mut s = tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect");
            s.write_all(frames::PREFACE).await.expect("preface");
            waiters.push(tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(3), closed_after(s))
                    .await
                    .ok()
                    .flatten()
            }));
        }
        for w in waiters {
            assert!(
                w.await.expect("waiter").is_some(),
                "a preface-only connection was still open 3 s after connecting \
                 (handshake_timeout 300 ms)"
            );
        }
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// Bytes that are not the HTTP/2 client preface: the server closes the connection (h2 sends
/// no GOAWAY, which RFC 9113 §3.4 allows for an invalid preface), never panics, and serves
/// others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_preface_closes_the_connection() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        let mut tls_hello = vec![
            0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
        ];
        tls_hello.extend([0u8; 64]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "garbage",
                b"GARBAGE GARBAGE GARBAGE GARBAGE GARBAGE\r\n\r\n".to_vec(),
            ),
            (
                "a mangled preface",
                b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n".to_vec(),
            ),
            ("a TLS ClientHello", tls_hello),
            ("NUL bytes", vec![0u8; 4096]),
        ];
        for (what, bytes) in cases {
            let (mut write, mut observer) = RawConn::tcp(server.addr).await;
            let _ = write.write_all(&bytes).await;
            assert!(
                observer.until_closed(LIMIT).await,
                "{what}: connection left open"
            );
            println!("{what}: closed; GOAWAY {:?}", observer.goaway);
        }
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// RFC 9113 §3.4: the client preface is the 24 octets *and* a SETTINGS frame; anything else
/// first is a connection error of type PROTOCOL_ERROR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_frame_other_than_settings_is_a_protocol_error() {
    bounded(async {
        let server = user_server().await;
        let (mut write, mut observer) = RawConn::tcp(server.addr).await;
        let hello = [frames::PREFACE.to_vec(), frames::ping([1; 8])].concat();
        write.write_all(&hello).await.expect("write");
        let closed = observer.until_closed(Duration::from_secs(2)).await;
        println!(
            "PING before SETTINGS: closed {closed}, GOAWAY {:?}, PING ACKs {}",
            observer.goaway, observer.ping_acks
        );
        assert!(closed, "connection left open");
        let goaway = observer.goaway.clone().expect("a GOAWAY");
        assert_eq!(goaway.code, frames::PROTOCOL_ERROR, "{goaway:?}");
        drop(write);
        still_serves(server.addr).await;
        server.stop().await;
    })
    .await
}

/// HTTP/1.1 on the port (prior-knowledge HTTP/2 only): the server closes the connection
/// without an HTTP/1.1 answer, never panics, and serves others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_request_closes_the_connection() {
    bounded(async {
        let server = ServerProcess::start(Binary::UserService).await;
        let cases: [(&str, &[u8]); 3] = [
            ("GET", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
            (
                "an h2c upgrade",
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                  Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            ),
            (
                "a gRPC POST",
                b"POST /UserService/GetUser HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\0\0\0\0\0",
            ),
        ];
        for (what, request) in cases {
            let socket = tokio::net::TcpStream::connect(server.addr)
                .await
                .expect("connect");
            let (mut read, mut write) = socket.into_split();
            write.write_all(request).await.expect("write");
            let mut got = Vec::new();
            let closed = tokio::time::timeout(LIMIT, async {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "{what}: connection left open");
            assert!(
                !got.starts_with(b"HTTP/"),
                "{what}: {:?}",
                String::from_utf8_lossy(&got)
            );
            println!("{what}: closed after {} bytes from the server", got.len());
        }
        still_serves(server.addr).await;
        server.stop();
    })
    .await
}

/// Waits until the server closes `socket`; when, or `None` after 10 s.
async fn closed_after(mut socket: tokio::net::TcpStream) -> Option<tokio::time::Instant> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return tokio::time::Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// File descriptors the process holds.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Polls `condition` every 20 ms until it holds (true) or `limit` passes (false).
async fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}
