//! Interceptors: code that runs around every call, whatever its method.
//!
//! An [`Interceptor`] sees each call twice: before its handler runs ([`Interceptor::on_call`],
//! with the method, the peer and the request metadata, and the power to refuse the call with a
//! status), and after its final status is known ([`Interceptor::on_end`], with the status,
//! the duration and the bytes of message payload moved each way). Interceptors compose: the
//! server runs them in the order they were added; the first refusal wins, and every
//! interceptor still sees the end of a refused call.
//!
//! Two ship with rawgrpc: [`BearerAuth`] (`--auth-token`) and [`AccessLog`] (`--access-log`).
//! The Prometheus metrics (`--metrics-addr`, [`super::metrics`]) observe the same two moments
//! but are not an interceptor: `server::call` updates them directly.
//!
//! A server with no interceptor pays nothing for the mechanism: no clock is read and no byte
//! is counted.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;

use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};

/// A call about to start.
#[derive(Debug)]
pub struct CallInfo<'a> {
    /// The `:path`, `/package.Service/Method`.
    pub method: &'a str,
    /// The client's address.
    pub peer: SocketAddr,
    /// The request metadata.
    pub metadata: &'a Metadata,
}

/// A call that ended.
#[derive(Debug)]
pub struct CallEnd<'a> {
    /// The `:path`, `/package.Service/Method`.
    pub method: &'a str,
    /// The client's address.
    pub peer: SocketAddr,
    /// The final status (CANCELLED if the client reset the stream).
    pub code: Code,
    /// From the request headers to the final status.
    pub duration: Duration,
    /// Message bytes received (5-byte prefixes included, before decompression).
    pub bytes_in: u64,
    /// Message bytes sent (5-byte prefixes included, after compression).
    pub bytes_out: u64,
}

/// Code run around every call.
pub trait Interceptor: Send + Sync + 'static {
    /// Before the handler: `Err` refuses the call with that status (sent Trailers-Only).
    fn on_call(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        let _ = call;
        Ok(())
    }

    /// After the final status.
    fn on_end(&self, call: &CallEnd<'_>) {
        let _ = call;
    }
}

/// Requires `authorization: Bearer TOKEN` on every call, except the services that stock tools
/// probe without credentials (health checking and reflection). Missing or wrong:
/// UNAUTHENTICATED.
pub struct BearerAuth {
    expected: String,
    exempt: Vec<String>,
}

impl BearerAuth {
    /// Requires `token`; health and reflection stay open.
    pub fn new(token: &str) -> Self {
        BearerAuth {
            expected: format!("Bearer {token}"),
            exempt: vec![
                "/grpc.health.v1.Health/".to_owned(),
                "/grpc.reflection.v1.ServerReflection/".to_owned(),
                "/grpc.reflection.v1alpha.ServerReflection/".to_owned(),
            ],
        }
    }

    /// Leaves methods whose path starts with `prefix` open too.
    pub fn exempt(mut self, prefix: &str) -> Self {
        self.exempt.push(prefix.to_owned());
        self
    }
}

/// Compares without stopping at the first difference, so the time taken does not tell an
/// attacker how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for BearerAuth {
    fn on_call(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        if self
            .exempt
            .iter()
            .any(|p| call.method.starts_with(p.as_str()))
        {
            return Ok(());
        }
        match call.metadata.get("authorization") {
            Some(v) if constant_time_eq(v.as_bytes(), self.expected.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated("missing bearer token")),
        }
    }
}

/// One `info` line per call through `tracing`: method, peer, status, duration, bytes.
#[derive(Debug, Default)]
pub struct AccessLog;

impl Interceptor for AccessLog {
    fn on_end(&self, call: &CallEnd<'_>) {
        info!(
            target: "rawgrpc::access",
            method = call.method,
            peer = %call.peer,
            status = call.code.name(),
            duration_us = call.duration.as_micros() as u64,
            bytes_in = call.bytes_in,
            bytes_out = call.bytes_out,
            "call"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(method: &'a str, metadata: &'a Metadata) -> CallInfo<'a> {
        CallInfo {
            method,
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            metadata,
        }
    }

    #[test]
    fn bearer_auth() {
        let auth = BearerAuth::new("s3cret");
        let none = Metadata::new();
        let mut right = Metadata::new();
        right
            .insert("authorization", "Bearer s3cret")
            .expect("valid");
        let mut wrong = Metadata::new();
        wrong
            .insert("authorization", "Bearer s3cres")
            .expect("valid");
        let m = "/UserService/GetUser";
        assert!(auth.on_call(&info(m, &right)).is_ok());
        let code = |md| auth.on_call(&info(m, md)).map_err(|s| s.code());
        assert_eq!(code(&none), Err(Code::Unauthenticated));
        assert_eq!(code(&wrong), Err(Code::Unauthenticated));
        assert!(auth
            .on_call(&info("/grpc.health.v1.Health/Check", &none))
            .is_ok());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
