//! Prometheus metrics: what the server did, by method and status code, over HTTP/1.1.
//!
//! With `--metrics-addr HOST:PORT` the server counts, per method (the `:path`):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `grpc_server_started_total` | counter | `grpc_method` |
//! | `grpc_server_handled_total` | counter | `grpc_method`, `grpc_code` |
//! | `grpc_server_handling_seconds` | histogram | `grpc_method` |
//! | `grpc_server_received_bytes_total` | counter | `grpc_method` (message bytes, prefixes included) |
//! | `grpc_server_sent_bytes_total` | counter | `grpc_method` |
//! | `grpc_server_open_connections` | gauge | |
//! | `grpc_server_open_streams` | gauge | (calls started and not yet finished) |
//!
//! and serves them in the Prometheus text format (version 0.0.4) at `GET /metrics` on an
//! HTTP/1.1 listener of its own, built on `hyper`. Methods the router does not know are
//! counted under `grpc_method="unknown"`: a label per path a client invents would let anyone
//! grow the server's memory.
//!
//! With no `--metrics-addr`, none of this exists: the call path checks one `Option`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::wire::status::Code;

/// Upper bounds of the latency histogram's buckets, in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The label for paths the router does not serve.
pub const UNKNOWN_METHOD: &str = "unknown";

#[derive(Default)]
struct MethodStats {
    started: u64,
    handled: [u64; 17],
    /// Per bucket (not cumulative; summed when rendered), then the +Inf overflow.
    latency: [u64; BUCKETS.len() + 1],
    latency_sum: f64,
    bytes_in: u64,
    bytes_out: u64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    methods: Mutex<BTreeMap<String, MethodStats>>,
    connections: AtomicI64,
    streams: AtomicI64,
}

impl Metrics {
    /// Empty counters.
    pub fn new() -> Self {
        Metrics::default()
    }

    fn with_method(&self, method: &str, f: impl FnOnce(&mut MethodStats)) {
        let mut methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        match methods.get_mut(method) {
            Some(stats) => f(stats),
            None => f(methods.entry(method.to_owned()).or_default()),
        }
    }

    /// A call reached its handler checks.
    pub fn call_started(&self, method: &str) {
        self.streams.fetch_add(1, Ordering::Relaxed);
        self.with_method(method, |m| m.started += 1);
    }

    /// A call ended with `code`. `started` says whether [`call_started`](Self::call_started)
    /// was called for it (calls refused before routing were not).
    pub fn call_finished(
        &self,
        method: &str,
        started: bool,
        code: Code,
        duration: Duration,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        if started {
            self.streams.fetch_sub(1, Ordering::Relaxed);
        }
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.with_method(method, |m| {
            if !started {
                m.started += 1;
            }
            m.handled[code as usize] += 1;
            m.latency[bucket] += 1;
            m.latency_sum += seconds;
            m.bytes_in += bytes_in;
            m.bytes_out += bytes_out;
        });
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended.
    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "grpc_server_started_total",
            "counter",
            "Calls started.",
        );
        for (m, s) in methods.iter() {
            let _ = writeln!(
                out,
                "grpc_server_started_total{{grpc_method=\"{m}\"}} {}",
                s.started
            );
        }
        header(
            &mut out,
            "grpc_server_handled_total",
            "counter",
            "Calls finished, by status code.",
        );
        for (m, s) in methods.iter() {
            for code in Code::ALL {
                let n = s.handled[code as usize];
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "grpc_server_handled_total{{grpc_method=\"{m}\",grpc_code=\"{}\"}} {n}",
                        code.name()
                    );
                }
            }
        }
        header(
            &mut out,
            "grpc_server_handling_seconds",
            "histogram",
            "Time from request headers to final status.",
        );
        for (m, s) in methods.iter() {
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += s.latency[i];
                let _ = writeln!(
                    out,
                    "grpc_server_handling_seconds_bucket{{grpc_method=\"{m}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += s.latency[BUCKETS.len()];
            let _ = writeln!(
                out,
                "grpc_server_handling_seconds_bucket{{grpc_method=\"{m}\",le=\"+Inf\"}} {cumulative}\n\
                 grpc_server_handling_seconds_sum{{grpc_method=\"{m}\"}} {}\n\
                 grpc_server_handling_seconds_count{{grpc_method=\"{m}\"}} {cumulative}",
                s.latency_sum
            );
        }
        header(
            &mut out,
            "grpc_server_received_bytes_total",
            "counter",
            "Message bytes received.",
        );
        for (m, s) in methods.iter() {
            let _ = writeln!(
                out,
                "grpc_server_received_bytes_total{{grpc_method=\"{m}\"}} {}",
                s.bytes_in
            );
        }
        header(
            &mut out,
            "grpc_server_sent_bytes_total",
            "counter",
            "Message bytes sent.",
        );
        for (m, s) in methods.iter() {
            let _ = writeln!(
                out,
                "grpc_server_sent_bytes_total{{grpc_method=\"{m}\"}} {}",
                s.bytes_out
            );
        }
        header(
            &mut out,
            "grpc_server_open_connections",
            "gauge",
            "Open connections.",
        );
        let _ = writeln!(
            out,
            "grpc_server_open_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "grpc_server_open_streams",
            "gauge",
            "Calls in flight.",
        );
        let _ = writeln!(
            out,
            "grpc_server_open_streams {}",
            self.streams.load(Ordering::Relaxed)
        );
        out
    }
}

/// Serves `GET /metrics` (anything else: 404) over HTTP/1.1 until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let metrics = Arc::clone(&metrics);
                async move {
                    let mut response = if request.uri().path() == "/metrics" {
                        let mut r = http::Response::new(Full::new(Bytes::from(metrics.render())));
                        r.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("text/plain; version=0.0.4"),
                        );
                        r
                    } else {
                        http::Response::new(Full::new(Bytes::from_static(b"not found\n")))
                    };
                    if request.uri().path() != "/metrics" {
                        *response.status_mut() = http::StatusCode::NOT_FOUND;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
            let io = hyper_util::rt::TokioIo::new(socket);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                debug!(%peer, error = %e, "metrics connection failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::new();
        m.connection_opened();
        m.call_started("/S/M");
        m.call_finished("/S/M", true, Code::Ok, Duration::from_micros(50), 10, 20);
        m.call_started("/S/M");
        m.call_finished("/S/M", true, Code::NotFound, Duration::from_millis(3), 5, 0);
        m.call_finished(
            UNKNOWN_METHOD,
            false,
            Code::Unimplemented,
            Duration::ZERO,
            0,
            0,
        );
        let text = m.render();
        for line in [
            "grpc_server_started_total{grpc_method=\"/S/M\"} 2",
            "grpc_server_handled_total{grpc_method=\"/S/M\",grpc_code=\"OK\"} 1",
            "grpc_server_handled_total{grpc_method=\"/S/M\",grpc_code=\"NOT_FOUND\"} 1",
            "grpc_server_handling_seconds_bucket{grpc_method=\"/S/M\",le=\"0.0001\"} 1",
            "grpc_server_handling_seconds_bucket{grpc_method=\"/S/M\",le=\"0.005\"} 2",
            "grpc_server_handling_seconds_count{grpc_method=\"/S/M\"} 2",
            "grpc_server_received_bytes_total{grpc_method=\"/S/M\"} 15",
            "grpc_server_sent_bytes_total{grpc_method=\"/S/M\"} 20",
            "grpc_server_started_total{grpc_method=\"unknown\"} 1",
            "grpc_server_open_connections 1",
            "grpc_server_open_streams 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
