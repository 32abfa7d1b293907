//! Micro-benchmarks of the sans-IO pieces on the hot path, so a contributor sees the effect of
//! a change in seconds: `cargo bench --bench wire` (or `-- frame` for one group).
//!
//! These time code in isolation; the per-call cost of the whole server (instructions and
//! allocations per RPC, beside tonic and bare h2) comes from `../shared/bench/run.sh` — see
//! docs/performance.md.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rawgrpc::codec;
use rawgrpc::proto::user::{User, UserRequest, UserResponse};
use rawgrpc::wire::frame::MessageDecoder;
use rawgrpc::wire::{metadata, status, timeout};

fn get_user_request() -> Bytes {
    let request = UserRequest {
        user: Some(User {
            id: "bench".into(),
            ..User::default()
        }),
    };
    codec::encode(&request, usize::MAX).expect("encode")
}

fn user(name_len: usize) -> User<'static> {
    User {
        name: "n".repeat(name_len).into(),
        email: "bench@example.com".into(),
        age: 30,
        id: "bench".into(),
    }
}

fn frame(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    let one = get_user_request();
    group.bench_function("decode one message in one chunk", |b| {
        b.iter(|| {
            let mut d = MessageDecoder::new(4 << 20);
            d.push(one.clone());
            black_box(d.next_message().expect("valid"))
        })
    });
    let big = codec::encode(
        &UserResponse {
            user: Some(user(64 << 10)),
        },
        usize::MAX,
    )
    .expect("e");
    let chunks: Vec<Bytes> = big.chunks(16 << 10).map(Bytes::copy_from_slice).collect();
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.bench_function("decode 64 KiB across 16 KiB frames", |b| {
        b.iter(|| {
            let mut d = MessageDecoder::new(4 << 20);
            let mut out = None;
            for chunk in &chunks {
                d.push(chunk.clone());
                if let Some(m) = d.next_message().expect("valid") {
                    out = Some(m);
                }
            }
            black_box(out)
        })
    });
    group.finish();
}

fn protobuf(c: &mut Criterion) {
    let mut group = c.benchmark_group("protobuf");
    let request = get_user_request();
    let payload = request.slice(5..);
    group.bench_function("decode GetUser request (borrowing)", |b| {
        b.iter(|| black_box(codec::decode::<UserRequest<'_>>(black_box(&payload)).expect("ok")))
    });
    let reply = UserResponse {
        user: Some(user(10)),
    };
    group.bench_function("encode GetUser reply with prefix", |b| {
        b.iter(|| black_box(codec::encode(black_box(&reply), usize::MAX).expect("ok")))
    });
    let stored = codec::Encoded::<UserResponse<'static>>::new(&reply);
    group.bench_function("frame a pre-encoded reply", |b| {
        b.iter(|| {
            black_box(
                codec::frame_encoded(stored.payload(), usize::MAX, rawgrpc::Encoding::Identity)
                    .expect("ok"),
            )
        })
    });
    // A 64 KiB name: the cost is the proto3 UTF-8 check of the string (`codec::read_string`).
    // Last in the group, as the throughput it sets applies to every later benchmark.
    let big = codec::encode(
        &UserResponse {
            user: Some(user(64 << 10)),
        },
        usize::MAX,
    )
    .expect("e");
    let big_payload = big.slice(5..);
    group.throughput(Throughput::Bytes(big_payload.len() as u64));
    group.bench_function("decode a User with a 64 KiB ASCII name (ASCII scan)", |b| {
        b.iter(|| {
            black_box(codec::decode::<UserResponse<'_>>(black_box(&big_payload)).expect("ok"))
        })
    });
    // One two-byte character at the start: the ASCII scan gives up after its first block and
    // the full UTF-8 validator reads the name.
    let accented = codec::encode(
        &UserResponse {
            user: Some(User {
                name: format!("é{}", "n".repeat((64 << 10) - 2)).into(),
                ..user(0)
            }),
        },
        usize::MAX,
    )
    .expect("e");
    let accented_payload = accented.slice(5..);
    group.bench_function(
        "decode a User with a 64 KiB non-ASCII name (UTF-8 check)",
        |b| {
            b.iter(|| {
                black_box(
                    codec::decode::<UserResponse<'_>>(black_box(&accented_payload)).expect("ok"),
                )
            })
        },
    );
    group.finish();
}

fn headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("headers");
    group.bench_function("grpc-message percent-encode (ASCII, borrowed)", |b| {
        b.iter(|| {
            black_box(status::percent_encode(black_box(
                "user \"bench\" not found",
            )))
        })
    });
    group.bench_function("grpc-message percent-encode (non-ASCII)", |b| {
        b.iter(|| {
            black_box(status::percent_encode(black_box(
                "utilisateur «bench» introuvable",
            )))
        })
    });
    group.bench_function("grpc-message percent-decode", |b| {
        b.iter(|| {
            black_box(status::percent_decode(black_box(
                b"user %22bench%22 not found",
            )))
        })
    });
    group.bench_function("grpc-timeout parse", |b| {
        b.iter(|| black_box(timeout::parse(black_box(b"250000u"))))
    });
    group.bench_function("grpc-status parse", |b| {
        b.iter(|| black_box(status::Code::from_header(black_box(b"5"))))
    });
    let value = metadata::base64_encode(&[0xab; 48]);
    group.bench_function("-bin metadata base64 decode (48 bytes)", |b| {
        b.iter(|| black_box(metadata::base64_decode(black_box(value.as_bytes()))))
    });
    group.finish();
}

criterion_group!(benches, frame, protobuf, headers);
criterion_main!(benches);
