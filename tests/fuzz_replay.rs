//! The fuzz targets without a fuzzer: every committed corpus file and crash reproducer, and a
//! few thousand pseudo-random inputs, through the same `rawgrpc::fuzz_targets` functions that
//! cargo-fuzz runs (`fuzz/README.md`). A regression a fuzzer once found fails here, in CI.
//!
//! `write_seed_corpus` (ignored; run it with `cargo test --test fuzz_replay -- --ignored
//! write_seed_corpus`) regenerates the seed files of `fuzz/corpus/`, including the
//! `server_connection` seeds: the bytes rawgrpc's own client writes, recorded by a proxy
//! between it and an in-process server.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use rawgrpc::fuzz_targets;

type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/NAME.rs` and corpus directory.
const TARGETS: &[(&str, Target)] = &[
    ("frame_decoder", fuzz_targets::frame_decoder),
    ("grpc_timeout", fuzz_targets::grpc_timeout),
    ("grpc_message", fuzz_targets::grpc_message),
    ("base64_metadata", fuzz_targets::base64_metadata),
    ("protobuf_requests", fuzz_targets::protobuf_requests),
    ("gzip_decompress", fuzz_targets::gzip_decompress),
    ("server_connection", fuzz_targets::server_connection),
    ("wire_tracer", fuzz_targets::wire_tracer),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

thread_local! {
    /// Panics on this thread. `server_connection` runs the server on a current-thread runtime,
    /// so a panic in a call's task (which tokio catches) still happens on the test's thread.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info);
        }));
    });
}

/// Runs one input; `Err` describes a panic anywhere on this thread.
fn run_one(target: Target, input: &[u8]) -> Result<(), String> {
    count_panics();
    let before = PANICS.with(Cell::get);
    let result = std::panic::catch_unwind(|| target(input));
    let panics = PANICS.with(Cell::get) - before;
    match result {
        Err(payload) => Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())),
        Ok(()) if panics > 0 => Err(format!("{panics} panic(s) in spawned tasks")),
        Ok(()) => Ok(()),
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter(|p| p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    files.sort();
    files
}

/// A small deterministic PRNG (xorshift64*): the smoke inputs are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// A pseudo-random input: random bytes, or a seed with a few random edits.
fn smoke_input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(4) == 0 {
        let len = rng.below(64) + rng.below(4) * rng.below(256);
        return (0..len).map(|_| rng.byte()).collect();
    }
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.byte();
            }
            2 => v.insert(at, rng.byte()),
            3 => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            4 => v.truncate(at),
            _ => {
                // An interesting value: the framing flag bytes and lengths are the usual spot.
                let values: [&[u8]; 6] = [
                    &[0],
                    &[1],
                    &[0xff],
                    &[0x7f, 0xff, 0xff, 0xff],
                    &[0, 0, 0, 0],
                    b"%",
                ];
                let value = values[rng.below(values.len())];
                v.splice(at..at, value.iter().copied());
            }
        }
    }
    v
}

/// Replays the corpus and crash reproducers of `name`, then `smoke` pseudo-random inputs
/// (stopping early once `budget` has passed), and fails listing every input that panicked.
fn replay(name: &str, smoke: usize, budget: Duration) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known target");
    let corpus = files_in(&fuzz_dir().join("corpus").join(name));
    let crashes = files_in(&fuzz_dir().join("crashes").join(name));
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no seed files");

    let mut failures = Vec::new();
    let mut seeds = Vec::new();
    for path in corpus.iter().chain(&crashes) {
        let input = std::fs::read(path).expect("read corpus file");
        if let Err(e) = run_one(target, &input) {
            failures.push(format!("{}: {e}", path.display()));
        }
        seeds.push(input);
    }

    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
    let mut ran = 0;
    while ran < smoke && started.elapsed() < budget {
        let input = smoke_input(&mut rng, &seeds);
        if let Err(e) = run_one(target, &input) {
            failures.push(format!("smoke input {ran} = {}: {e}", hex(&input)));
        }
        ran += 1;
    }
    eprintln!(
        "{name}: {} corpus files, {} crash reproducers, {ran} smoke inputs in {:?}",
        corpus.len(),
        crashes.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{name}: {} failing input(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const SMOKE_BUDGET: Duration = Duration::from_secs(3);

#[test]
fn replay_frame_decoder() {
    replay("frame_decoder", 3000, SMOKE_BUDGET);
}

#[test]
fn replay_grpc_timeout() {
    replay("grpc_timeout", 3000, SMOKE_BUDGET);
}

#[test]
fn replay_grpc_message() {
    replay("grpc_message", 3000, SMOKE_BUDGET);
}

#[test]
fn replay_base64_metadata() {
    replay("base64_metadata", 3000, SMOKE_BUDGET);
}

#[test]
fn replay_protobuf_requests() {
    replay("protobuf_requests", 3000, SMOKE_BUDGET);
}

#[test]
fn replay_gzip_decompress() {
    replay("gzip_decompress", 2000, SMOKE_BUDGET);
}

#[test]
fn replay_server_connection() {
    replay("server_connection", 200, SMOKE_BUDGET);
}

#[test]
fn replay_wire_tracer() {
    replay("wire_tracer", 2000, SMOKE_BUDGET);
}

#[test]
fn every_target_has_a_fuzz_binary_and_a_corpus() {
    for (name, _) in TARGETS {
        let bin = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let source = std::fs::read_to_string(&bin).unwrap_or_else(|_| panic!("{bin:?}"));
        assert!(
            source.contains(&format!("rawgrpc::fuzz_targets::{name}(data)")),
            "{bin:?} must call rawgrpc::fuzz_targets::{name}"
        );
        let cargo = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("Cargo.toml");
        assert!(
            cargo.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
        assert!(
            fuzz_dir().join("corpus").join(name).is_dir(),
            "corpus/{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Seed corpus generation
// ---------------------------------------------------------------------------------------------

mod seeds {
    use std::borrow::Cow;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use quick_protobuf::MessageWrite;
    use rawgrpc::client::Channel;
    use rawgrpc::fuzz_targets::CLIENT_PREFACE;
    use rawgrpc::proto::grpc::testing::{
        BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest,
        SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
        StreamingOutputCallRequest, StreamingOutputCallResponse, TestServiceClient,
        UnimplementedServiceClient,
    };
    use rawgrpc::proto::user::{
        CreateUserRequest, CreateUserResponse, User, UserRequest, UserResponse, UserServiceClient,
    };
    use rawgrpc::wire::compression;
    use rawgrpc::{Encoding, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub type Files = Vec<(String, Vec<u8>)>;

    fn framed(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![flag];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// A `frame_decoder` input: limit, chunk sizes (high bit: do not drain), stream.
    fn decoder_input(max: u16, sizes: &[u8], stream: &[u8]) -> Vec<u8> {
        let mut v = max.to_be_bytes().to_vec();
        v.push(sizes.len() as u8);
        v.extend_from_slice(sizes);
        v.extend_from_slice(stream);
        v
    }

    pub fn frame_decoder() -> Files {
        let three = [framed(0, b"hello"), framed(1, b""), framed(0, &[7u8; 300])].concat();
        let mut max_len = framed(0, &[1u8; 16]);
        max_len.extend(framed(0, &[2u8; 17]));
        vec![
            ("empty-stream".into(), decoder_input(1024, &[], b"")),
            (
                "one-message".into(),
                decoder_input(1024, &[], &framed(0, b"hello")),
            ),
            (
                "compressed-flag".into(),
                decoder_input(1024, &[], &framed(1, b"\x1f\x8b\x08")),
            ),
            (
                "empty-message".into(),
                decoder_input(0, &[], &framed(0, b"")),
            ),
            (
                "three-messages-split".into(),
                decoder_input(1024, &[3, 4, 1, 8, 100], &three),
            ),
            (
                "three-messages-undrained".into(),
                decoder_input(1024, &[0x83, 0x82, 0x90, 0x7f, 0x85], &three),
            ),
            (
                "split-prefix-bytewise".into(),
                decoder_input(1024, &[1; 15], &three),
            ),
            (
                "split-prefix-empty-chunks".into(),
                decoder_input(1024, &[0, 2, 0, 3, 0, 1], &framed(0, b"abc")),
            ),
            (
                "message-inside-one-chunk".into(),
                decoder_input(
                    1024,
                    &[2, 40],
                    &[framed(0, b"first"), framed(0, b"second")].concat(),
                ),
            ),
            (
                "length-at-limit-then-over".into(),
                decoder_input(16, &[10], &max_len),
            ),
            (
                "length-u32-max".into(),
                decoder_input(1024, &[], &[0, 0xff, 0xff, 0xff, 0xff]),
            ),
            (
                "length-over-limit-split".into(),
                decoder_input(8, &[2, 2], &[0, 0, 0, 0, 9, 1, 2, 3]),
            ),
            ("flag-2".into(), decoder_input(1024, &[], &framed(2, b"x"))),
            (
                "flag-255-after-message".into(),
                decoder_input(1024, &[6], &[framed(0, b"ok"), framed(255, b"x")].concat()),
            ),
            (
                "flag-128".into(),
                decoder_input(1024, &[1, 1], &framed(0x80, b"")),
            ),
            (
                "truncated-prefix".into(),
                decoder_input(1024, &[], &[0, 0, 0]),
            ),
            (
                "truncated-payload".into(),
                decoder_input(1024, &[4], &framed(0, b"abcdef")[..8]),
            ),
            (
                "truncated-after-message".into(),
                decoder_input(1024, &[], &[framed(0, b"ok"), vec![1, 0]].concat()),
            ),
        ]
    }

    pub fn grpc_timeout() -> Files {
        let mut files: Files = [
            "1H",
            "2M",
            "3S",
            "4m",
            "5u",
            "6n",
            "99999999H",
            "99999999n",
            "0m",
            "00000001S",
            "12345678u",
            "123456789S",
            "",
            "S",
            "1",
            "1s",
            "1h",
            "1.5S",
            "-1S",
            " 1S",
            "1S ",
            "1x",
            "abcS",
            "1SS",
            "+5m",
        ]
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("text-{i:02}"), s.as_bytes().to_vec()))
        .collect();
        // 12 bytes and more: also read as a duration to format.
        for (name, secs, nanos) in [
            ("duration-250ms", 0u64, 250_000_000u32),
            ("duration-1ns", 0, 1),
            ("duration-year", 365 * 86_400, 0),
            ("duration-odd", 12, 345_678_901),
            ("duration-max", u64::MAX, 999_999_999),
        ] {
            let mut v = secs.to_le_bytes().to_vec();
            v.extend_from_slice(&nanos.to_le_bytes());
            files.push((name.into(), v));
        }
        files.push(("digits-12-bytes".into(), b"12345678901S".to_vec()));
        files
    }

    pub fn grpc_message() -> Files {
        let texts: [&[u8]; 18] = [
            b"",
            b"plain ascii with spaces ~!",
            b"100%25 sure",
            b"%",
            b"50%",
            b"%4",
            b"%zz%4",
            b"%41%42",
            b"%c3%a9 and %C3%A9",
            b"%FF%FE",
            b"%E2%9C%93 done",
            b"user%20%22x%22%20not%20found%0A",
            "üñíçødé ✓ 🚀".as_bytes(),
            b"\x00\x1f\x7f\n\t",
            b"\xff\xfe invalid utf-8",
            b"\xc3",
            b"%%%%%",
            b"%e2%82",
        ];
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("message-{i:02}"), t.to_vec()))
            .collect()
    }

    pub fn base64_metadata() -> Files {
        let texts: [&[u8]; 24] = [
            b"",
            b"AA",
            b"AAA",
            b"AAAA",
            b"AA==",
            b"AAA=",
            b"aGk=",
            b"aGk",
            b"aGl",
            b"/w",
            b"+/+/",
            b"AAEC",
            b"A",
            b"AAAAA",
            b"A===",
            b"====",
            b"aG=k",
            b"AA==AA",
            b"AA=",
            b"AAEC, /w==",
            b"AA AA",
            b"-_-_",
            b"AAAA\n",
            b"\x00\xff\x80binary",
        ];
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("base64-{i:02}"), t.to_vec()))
            .collect()
    }

    fn body<M: MessageWrite>(m: &M) -> Vec<u8> {
        rawgrpc::codec::encode(m, usize::MAX).expect("encode")[5..].to_vec()
    }

    fn user() -> User<'static> {
        User {
            name: Cow::Borrowed("Ada Lovelace"),
            email: Cow::Borrowed("ada@example.com"),
            age: 36,
            id: Cow::Borrowed("user-1"),
        }
    }

    fn payload(n: usize) -> Payload<'static> {
        Payload {
            type_pb: PayloadType::COMPRESSABLE,
            body: Cow::Owned(vec![0; n]),
        }
    }

    fn params() -> Vec<ResponseParameters> {
        vec![
            ResponseParameters {
                size: 31415,
                interval_us: 0,
                compressed: None,
                fill_peer_socket_address: None,
            },
            ResponseParameters {
                size: 9,
                interval_us: 1000,
                compressed: Some(BoolValue { value: true }),
                fill_peer_socket_address: Some(BoolValue { value: false }),
            },
        ]
    }

    fn echo() -> EchoStatus<'static> {
        EchoStatus {
            code: 2,
            message: Cow::Borrowed("test status message ü"),
        }
    }

    pub fn protobuf_requests() -> Files {
        let bodies: Vec<(u8, &str, Vec<u8>)> = vec![
            (0, "UserRequest", body(&UserRequest { user: Some(user()) })),
            (
                1,
                "CreateUserRequest",
                body(&CreateUserRequest { user: Some(user()) }),
            ),
            (
                2,
                "UserResponse",
                body(&UserResponse { user: Some(user()) }),
            ),
            (
                3,
                "CreateUserResponse",
                body(&CreateUserResponse { user: Some(user()) }),
            ),
            (4, "User", body(&user())),
            (
                5,
                "SimpleRequest",
                body(&SimpleRequest {
                    response_size: 314_159,
                    payload: Some(payload(20)),
                    fill_username: true,
                    fill_oauth_scope: true,
                    response_compressed: Some(BoolValue { value: true }),
                    response_status: Some(echo()),
                    expect_compressed: Some(BoolValue { value: false }),
                    fill_server_id: true,
                    fill_grpclb_route_type: true,
                    ..Default::default()
                }),
            ),
            (
                6,
                "StreamingInputCallRequest",
                body(&StreamingInputCallRequest {
                    payload: Some(payload(27)),
                    expect_compressed: Some(BoolValue { value: true }),
                }),
            ),
            (
                7,
                "StreamingOutputCallRequest",
                body(&StreamingOutputCallRequest {
                    response_parameters: params(),
                    payload: Some(payload(8)),
                    response_status: Some(echo()),
                    ..Default::default()
                }),
            ),
            (8, "Empty", body(&Empty {})),
            (
                9,
                "SimpleResponse",
                body(&SimpleResponse {
                    payload: Some(payload(5)),
                    username: Cow::Borrowed("user"),
                    oauth_scope: Cow::Borrowed("scope"),
                    server_id: Cow::Borrowed("server"),
                    hostname: Cow::Borrowed("host"),
                    ..Default::default()
                }),
            ),
            (
                10,
                "StreamingOutputCallResponse",
                body(&StreamingOutputCallResponse {
                    payload: Some(payload(3)),
                    peer_socket_address: Cow::Borrowed("127.0.0.1:1"),
                }),
            ),
            (
                11,
                "StreamingInputCallResponse",
                body(&StreamingInputCallResponse {
                    aggregated_payload_size: 74922,
                }),
            ),
            (12, "Payload", body(&payload(4))),
            (13, "EchoStatus", body(&echo())),
            (14, "ResponseParameters", body(&params()[1])),
            (15, "BoolValue", body(&BoolValue { value: true })),
        ];
        let mut files: Files = bodies
            .iter()
            .map(|(i, name, b)| (format!("{i:02}-{name}"), [&[*i][..], b].concat()))
            .collect();
        let user_request = &bodies[0].2;
        files.push(("00-UserRequest-truncated".into(), {
            let mut v = vec![0];
            v.extend_from_slice(&user_request[..user_request.len() - 3]);
            v
        }));
        // Field 1 (user) declared as a varint instead of length-delimited; an unknown field;
        // a huge length; a negative int32 as ten varint bytes; a bad UTF-8 string.
        files.push(("00-wrong-wire-type".into(), vec![0, 0x08, 0x01]));
        files.push((
            "04-unknown-field".into(),
            vec![4, 0x78, 0x05, 0x0a, 0x01, b'x'],
        ));
        files.push((
            "04-huge-length".into(),
            vec![4, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
        ));
        files.push((
            "04-negative-age".into(),
            vec![
                4, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ));
        files.push(("04-invalid-utf8".into(), vec![4, 0x0a, 0x02, 0xc3, 0x28]));
        files.push(("16-all-types".into(), [&[16u8][..], &bodies[5].2].concat()));
        files
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        compression::gzip_into(data, &mut out).expect("gzip");
        out
    }

    pub fn gzip_decompress() -> Files {
        let hello = gzip(b"hello, hello, hello world");
        let mut bad_crc = hello.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 0xff;
        let mut bad_size = hello.clone();
        bad_size[n - 2] ^= 0x01;
        vec![
            ("gzip-hello".into(), hello.clone()),
            ("gzip-empty".into(), gzip(b"")),
            ("gzip-truncated".into(), hello[..hello.len() / 2].to_vec()),
            ("gzip-header-only".into(), hello[..10].to_vec()),
            ("gzip-bad-crc".into(), bad_crc),
            ("gzip-bad-size".into(), bad_size),
            (
                "gzip-trailing-garbage".into(),
                [&hello[..], b"garbage"].concat(),
            ),
            (
                "gzip-two-members".into(),
                [hello.clone(), gzip(b"second")].concat(),
            ),
            ("gzip-at-limit".into(), gzip(&vec![0u8; 64 * 1024])),
            ("gzip-over-limit".into(), gzip(&vec![0u8; 64 * 1024 + 1])),
            ("gzip-bomb-1mib".into(), gzip(&vec![0u8; 1 << 20])),
            ("not-gzip".into(), b"not gzip at all".to_vec()),
            ("empty".into(), Vec::new()),
        ]
    }

    // --- server_connection: recorded client bytes -------------------------------------------

    /// Records what a client writes towards `server` while `client` runs against the address
    /// it is given; returns the bytes after the connection preface.
    async fn record<F, Fut>(server: SocketAddr, client: F) -> Vec<u8>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let proxy = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let proxy_addr = proxy.local_addr().expect("proxy addr");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&recorded);
        let relay = tokio::spawn(async move {
            let (downstream, _) = proxy.accept().await.expect("accept");
            let upstream = TcpStream::connect(server).await.expect("connect server");
            let (mut client_rd, mut client_wr) = downstream.into_split();
            let (mut server_rd, mut server_wr) = upstream.into_split();
            let up = async move {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client_rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                    if server_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_wr.shutdown().await;
            };
            let down = async move {
                let _ = tokio::io::copy(&mut server_rd, &mut client_wr).await;
            };
            tokio::join!(up, down);
        });
        tokio::time::timeout(
            Duration::from_secs(20),
            client(format!("http://{proxy_addr}")),
        )
        .await
        .expect("recorded client finishes");
        // Let the last frames (WINDOW_UPDATE, RST_STREAM) through before taking the bytes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let bytes = recorded.lock().expect("lock").clone();
        relay.abort();
        assert!(bytes.starts_with(CLIENT_PREFACE), "recorded a preface");
        bytes[CLIENT_PREFACE.len()..].to_vec()
    }

    async fn channel(addr: &str) -> Channel {
        Channel::connect(addr).await.expect("connect")
    }

    fn named_user(id: &'static str) -> Option<User<'static>> {
        Some(User {
            id: Cow::Borrowed(id),
            name: Cow::Borrowed("Ada"),
            ..User::default()
        })
    }

    /// A raw h2 request, for what the rawgrpc client never sends.
    async fn raw(addr: String, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let hostport = addr.trim_start_matches("http://").to_string();
        let socket = TcpStream::connect(&hostport).await.expect("connect");
        let (mut send, conn) = h2::client::handshake(socket).await.expect("handshake");
        tokio::spawn(conn);
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{hostport}{path}"));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request.body(()).expect("request");
        let (response, mut stream) = send.send_request(request, body.is_empty()).expect("send");
        if !body.is_empty() {
            // The server may have answered and closed the stream already (405, 415).
            let _ = stream.send_data(Bytes::copy_from_slice(body), true);
        }
        if let Ok(response) = response.await {
            let mut body = response.into_body();
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { break };
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            let _ = body.trailers().await;
        }
    }

    /// A raw request: file name, method, path, headers, body.
    type RawCase<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>);

    const GRPC: &[(&str, &str)] = &[("content-type", "application/grpc"), ("te", "trailers")];

    fn with_grpc<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = GRPC.to_vec();
        v.extend_from_slice(extra);
        v
    }

    pub async fn server_connection() -> Files {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let server_addr = listener.local_addr().expect("addr");
        let server =
            rawgrpc::server::Server::with_config(rawgrpc::fuzz_targets::fuzz_server_config())
                .add_service(rawgrpc::proto::user::UserServiceServer::new(
                    rawgrpc::services::user::UserServiceImpl::in_memory(),
                ))
                .add_service(rawgrpc::proto::grpc::testing::TestServiceServer::new(
                    rawgrpc::interop::server::TestServiceImpl,
                ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        let s = server_addr;
        let mut files: Files = Vec::new();

        let user_request = body(&UserRequest {
            user: named_user("ada"),
        });
        let user_message = framed(0, &user_request);

        files.push((
            "user-get-not-found".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let _ = c
                    .get_user(UserRequest {
                        user: named_user("nobody"),
                    })
                    .await;
            })
            .await,
        ));
        files.push((
            "user-create-then-get".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let _ = c
                    .create_user(CreateUserRequest {
                        user: named_user("ada"),
                    })
                    .await;
                let _ = c
                    .get_user(UserRequest {
                        user: named_user("ada"),
                    })
                    .await;
            })
            .await,
        ));
        files.push((
            "user-create-invalid".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let _ = c.create_user(CreateUserRequest { user: None }).await;
            })
            .await,
        ));
        files.push((
            "user-get-timeout-metadata".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let mut r = Request::new(UserRequest {
                    user: named_user("ada"),
                });
                r.set_timeout(Duration::from_millis(250));
                r.metadata_mut().insert("x-request-id", "42").expect("meta");
                r.metadata_mut()
                    .insert_bin("x-trace-bin", &[1, 2, 3])
                    .expect("bin");
                let _ = c.get_user(r).await;
            })
            .await,
        ));
        files.push((
            "user-create-gzip".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let mut r = Request::new(CreateUserRequest {
                    user: named_user(""),
                });
                r.set_compression(Encoding::Gzip);
                let _ = c.create_user(r).await;
            })
            .await,
        ));
        files.push((
            "user-concurrent-gets".into(),
            record(s, |a| async move {
                let c = UserServiceClient::new(channel(&a).await);
                let calls = (0..4).map(|_| {
                    let c = c.clone();
                    async move {
                        let _ = c
                            .get_user(UserRequest {
                                user: named_user("x"),
                            })
                            .await;
                    }
                });
                for call in calls {
                    call.await;
                }
            })
            .await,
        ));
        files.push((
            "unknown-method".into(),
            record(s, |a| async move {
                let ch = channel(&a).await;
                let _ = ch
                    .unary::<_, UserResponse<'static>>(
                        "/UserService/DeleteUser",
                        Request::new(UserRequest::default()),
                    )
                    .await;
            })
            .await,
        ));
        files.push((
            "unknown-service".into(),
            record(s, |a| async move {
                let c = UnimplementedServiceClient::new(channel(&a).await);
                let _ = c.unimplemented_call(Empty {}).await;
            })
            .await,
        ));
        files.push((
            "test-empty-and-unimplemented".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let _ = c.empty_call(Empty {}).await;
                let _ = c.unimplemented_call(Empty {}).await;
            })
            .await,
        ));
        files.push((
            "test-unary-echo".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let mut r = Request::new(SimpleRequest {
                    response_size: 100,
                    payload: Some(payload(10)),
                    response_compressed: Some(BoolValue { value: true }),
                    ..Default::default()
                });
                r.metadata_mut()
                    .insert("x-grpc-test-echo-initial", "initial")
                    .expect("meta");
                r.metadata_mut()
                    .insert_bin("x-grpc-test-echo-trailing-bin", &[0xab, 0xab, 0xab])
                    .expect("bin");
                let _ = c.unary_call(r).await;
            })
            .await,
        ));
        files.push((
            "test-unary-status".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let mut r = Request::new(SimpleRequest {
                    response_status: Some(echo()),
                    expect_compressed: Some(BoolValue { value: true }),
                    ..Default::default()
                });
                r.set_compression(Encoding::Gzip);
                let _ = c.unary_call(r).await;
            })
            .await,
        ));
        files.push((
            "test-server-streaming".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let r = StreamingOutputCallRequest {
                    response_parameters: vec![
                        ResponseParameters {
                            size: 10,
                            ..Default::default()
                        },
                        ResponseParameters {
                            size: 20,
                            interval_us: 500,
                            compressed: Some(BoolValue { value: true }),
                            ..Default::default()
                        },
                        ResponseParameters {
                            size: 0,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                };
                if let Ok(reply) = c.streaming_output_call(r).await {
                    let mut replies = reply.into_message();
                    while let Ok(Some(_)) = replies.message().await {}
                }
            })
            .await,
        ));
        files.push((
            "test-client-streaming".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let mut r = Request::new(());
                r.set_compression(Encoding::Gzip);
                if let Ok((mut sink, reply)) = c.streaming_input_call(r).await {
                    for (i, n) in [27, 8, 0, 45].into_iter().enumerate() {
                        let m = StreamingInputCallRequest {
                            payload: Some(payload(n)),
                            ..Default::default()
                        };
                        let _ = sink.send_with(&m, i % 2 == 1).await;
                    }
                    let _ = sink.finish();
                    let _ = reply.single().await;
                }
            })
            .await,
        ));
        files.push((
            "test-bidi-ping-pong".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                if let Ok((mut sink, replies)) = c.full_duplex_call(()).await {
                    let m = StreamingOutputCallRequest {
                        response_parameters: vec![ResponseParameters {
                            size: 31,
                            ..Default::default()
                        }],
                        payload: Some(payload(27)),
                        ..Default::default()
                    };
                    let _ = sink.send(&m).await;
                    if let Ok(replies) = replies.streaming().await {
                        let mut replies = replies.into_message();
                        let _ = replies.message().await;
                        let _ = sink.send(&m).await;
                        let _ = replies.message().await;
                        let _ = sink.finish();
                        while let Ok(Some(_)) = replies.message().await {}
                    }
                }
            })
            .await,
        ));
        files.push((
            "test-half-duplex".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                if let Ok((mut sink, replies)) = c.half_duplex_call(()).await {
                    let m = StreamingOutputCallRequest {
                        response_parameters: vec![ResponseParameters {
                            size: 5,
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let _ = sink.send(&m).await;
                    let _ = sink.send(&m).await;
                    let _ = sink.finish();
                    if let Ok(replies) = replies.streaming().await {
                        let mut replies = replies.into_message();
                        while let Ok(Some(_)) = replies.message().await {}
                    }
                }
            })
            .await,
        ));
        files.push((
            "test-cancel-after-begin".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                if let Ok((sink, _reply)) = c.streaming_input_call(()).await {
                    sink.cancel();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            })
            .await,
        ));
        files.push((
            "test-timeout-on-sleeping-server".into(),
            record(s, |a| async move {
                let c = TestServiceClient::new(channel(&a).await);
                let mut r = Request::new(());
                r.set_timeout(Duration::from_millis(1));
                if let Ok((mut sink, replies)) = c.full_duplex_call(r).await {
                    let m = StreamingOutputCallRequest {
                        response_parameters: vec![ResponseParameters {
                            size: 5,
                            interval_us: 2_000_000,
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let _ = sink.send(&m).await;
                    let _ = replies.streaming().await;
                }
            })
            .await,
        ));
        // Requests no well-behaved client sends.
        let cases: Vec<RawCase> = vec![
            (
                "raw-get-method",
                "GET",
                "/UserService/GetUser",
                with_grpc(&[]),
                vec![],
            ),
            (
                "raw-json-content-type",
                "POST",
                "/UserService/GetUser",
                vec![("content-type", "application/json")],
                user_message.clone(),
            ),
            (
                "raw-bad-timeout",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[("grpc-timeout", "123456789S")]),
                user_message.clone(),
            ),
            (
                "raw-snappy-encoding",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[("grpc-encoding", "snappy")]),
                user_message.clone(),
            ),
            (
                "raw-compressed-flag-without-encoding",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                framed(1, &user_request),
            ),
            (
                "raw-gzip-garbage",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[("grpc-encoding", "gzip")]),
                framed(1, b"not gzip"),
            ),
            (
                "raw-truncated-message",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                user_message[..user_message.len() - 2].to_vec(),
            ),
            (
                "raw-two-messages-unary",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                [user_message.clone(), user_message.clone()].concat(),
            ),
            (
                "raw-no-message-unary",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                vec![],
            ),
            (
                "raw-invalid-flag",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                framed(7, b"x"),
            ),
            (
                "raw-too-large",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                vec![0, 0x7f, 0xff, 0xff, 0xff],
            ),
            (
                "raw-bad-bin-metadata",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[("x-data-bin", "!!!!")]),
                user_message.clone(),
            ),
            (
                "raw-not-protobuf",
                "POST",
                "/UserService/GetUser",
                with_grpc(&[]),
                framed(0, &[0x0a, 0xff, 0xff, 0xff, 0x0f]),
            ),
        ];
        // Known library bugs, kept as reproducers (fuzz/crashes/server_connection/).
        let underflow = framed(0, &[0x0a, 0x01, 0x1a, 0x31]);
        files.push((
            "crash:quick-protobuf-211-get-user".into(),
            record(s, |a| async move {
                raw(a, "POST", "/UserService/GetUser", GRPC, &underflow).await;
            })
            .await,
        ));
        for (name, method, path, headers, body_bytes) in cases {
            files.push((
                name.into(),
                record(s, |a| async move {
                    raw(a, method, path, &headers, &body_bytes).await;
                })
                .await,
            ));
        }

        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), serving).await;
        files
    }
}

/// Regenerates the seed files of `fuzz/corpus/` (the files this writes, nothing else: files
/// the fuzzer or a person added stay).
#[test]
#[ignore = "writes fuzz/corpus/; run by hand after changing the seeds"]
fn write_seed_corpus() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let connection = runtime.block_on(seeds::server_connection());
    let sets: Vec<(&str, seeds::Files)> = vec![
        ("frame_decoder", seeds::frame_decoder()),
        ("grpc_timeout", seeds::grpc_timeout()),
        ("grpc_message", seeds::grpc_message()),
        ("base64_metadata", seeds::base64_metadata()),
        ("protobuf_requests", seeds::protobuf_requests()),
        ("gzip_decompress", seeds::gzip_decompress()),
        ("server_connection", connection),
    ];
    for (name, files) in sets {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        for (file, bytes) in &files {
            let path = match file.strip_prefix("crash:") {
                Some(crash) => {
                    let dir = fuzz_dir().join("crashes").join(name);
                    std::fs::create_dir_all(&dir).expect("create crashes dir");
                    dir.join(crash)
                }
                None => dir.join(file),
            };
            std::fs::write(path, bytes).expect("write seed");
        }
        eprintln!("{name}: {} seeds", files.len());
    }
}
