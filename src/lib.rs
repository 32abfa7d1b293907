//! # rawgrpc — gRPC written by hand on raw HTTP/2
//!
//! rawgrpc implements gRPC directly on the [`h2`] crate: the 5-byte message framing, status
//! codes and trailers, deadlines and metadata, over h2 streams, with protobuf messages decoded
//! by `quick-protobuf` borrowing from the received bytes. It is meant to be run (a small, fast
//! server that stock gRPC clients talk to), read (each module teaches the protocol piece it
//! implements), and fuzzed (every parser of untrusted bytes is a pure function).
//!
//! ## The layers, bottom to top
//!
//! ```text
//! TCP ─▶ h2 connection ─▶ h2 stream ─▶ gRPC call ─────────▶ router ─▶ service
//!        server::connection           server::call           server::router  services::user
//!                                      wire::{frame,status,timeout,metadata}  (sans-IO codecs)
//!                                      codec (protobuf on top of the framing)
//! ```
//!
//! * [`wire`]: sans-IO codecs — bytes in, values out. The framing decoder, status encoding,
//!   `grpc-timeout`, metadata and compression. No socket, no runtime.
//! * [`codec`]: protobuf over the framing — decode borrowing, encode once into the send buffer.
//! * [`call`] and [`streaming`]: what a call carries (message, metadata, timeout) and the stream
//!   of received messages, with flow control released as the reader asks for more.
//! * [`server`]: accepts connections, turns each h2 stream into a call of one of the four kinds
//!   (unary, server streaming, client streaming, bidirectional), routes it by `:path`.
//! * [`client`]: a [`client::Channel`] over one h2 connection, shared by concurrent calls.
//! * [`proto`]: code generated from `proto/` by `build.rs` (messages, server traits, clients).
//! * [`services`]: the article's UserService; [`interop`]: gRPC's interop TestService and cases.
//! * [`tracer`]: the wire tracer (`--trace-wire`), a passive tap beneath h2 that prints every
//!   HTTP/2 frame with its headers and gRPC messages decoded; `docs/walkthrough.md` shows its
//!   output for real calls.
//!
//! ## The life of one unary call (server side)
//!
//! 1. [`server::connection`] accepts a TCP connection and runs the HTTP/2 handshake; h2 hands
//!    over each new stream as a request head plus a body.
//! 2. [`server::call`] checks `:method` and `content-type`, reads `grpc-timeout`, and asks the
//!    [`server::Router`] for the handler of `:path` (none: UNIMPLEMENTED, Trailers-Only).
//! 3. DATA frames feed the [`wire::frame::MessageDecoder`]; the complete message is decoded
//!    with the generated type, borrowing from the received bytes; the handler runs.
//! 4. The reply is encoded once (prefix + message) into the buffer h2 sends, followed by the
//!    trailers carrying `grpc-status` — or, for an error before any message, a single
//!    Trailers-Only HEADERS frame.
#![warn(missing_docs)]

// The generated code names this crate `::rawgrpc`, as code outside it would.
extern crate self as rawgrpc;

pub mod call;
pub mod client;
pub mod codec;
pub mod fuzz_targets;
pub mod interop;
pub mod proto;
pub mod server;
pub mod services;
pub mod streaming;
pub mod tls;
pub mod tracer;
pub mod wire;

pub use call::{IntoRequest, Request, Response};
pub use codec::{Decoded, Message};
pub use streaming::Streaming;
pub use wire::compression::Encoding;
pub use wire::metadata::Metadata;
pub use wire::status::{Code, Status};
