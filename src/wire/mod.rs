//! The gRPC wire codecs, sans-IO: bytes in, values out.
//!
//! Nothing in this module touches a socket, a runtime or h2's streams. Each codec takes the
//! bytes (or header values) that arrived and returns typed values or a typed error, so unit
//! tests, property tests and fuzz targets drive them directly, and the layers above only move
//! bytes between h2 and these functions.
//!
//! | module | protocol piece | spec |
//! |---|---|---|
//! | [`frame`] | the 5-byte Length-Prefixed-Message | PROTOCOL-HTTP2.md, "Requests" |
//! | [`status`] | `grpc-status`, `grpc-message`, the 17 codes | PROTOCOL-HTTP2.md "Responses", statuscodes.md |
//! | [`timeout`] | `grpc-timeout` | PROTOCOL-HTTP2.md, "Timeout" |
//! | [`metadata`] | Custom-Metadata, `-bin` base64, reserved names | PROTOCOL-HTTP2.md, "Custom-Metadata" |
//! | [`compression`] | `grpc-encoding`, gzip per message | PROTOCOL-HTTP2.md "Compressed-Flag", compression.md |

pub mod compression;
pub mod frame;
pub mod metadata;
pub mod status;
pub mod timeout;
