//! The server: accept connections, turn HTTP/2 streams into gRPC calls, route them.
//!
//! * [`connection`]: the accept loop, one task per connection running h2, graceful drain.
//! * [`call`]: one stream as one gRPC call — header checks, reading the request, writing the
//!   reply and the status.
//! * [`router`]: the routing table from `:path` to handler, and the traits generated service
//!   glue implements.
//!
//! [`ServerConfig`] holds every limit the server enforces. h2's own defaults suit a client
//! better than a server facing the network (64 KiB windows, a 16 MiB header list, no limit on
//! concurrent streams), so each is set here deliberately, with its reason.

pub mod call;
pub mod connection;
pub mod interceptor;
pub mod metrics;
pub mod preface;
pub mod router;
pub mod sink;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use interceptor::{CallEnd, CallInfo, Interceptor};
pub use router::{
    BidiStreamingMethod, ClientStreamingMethod, Route, Router, ServerStreamingMethod, Service,
    UnaryMethod,
};
pub use sink::ResponseSink;

use crate::tracer::WireTrace;
use crate::wire::compression::Encoding;
use crate::wire::frame::DEFAULT_MAX_MESSAGE_LEN;

/// The limits and tunables of a server. Every field has a default chosen for a server that
/// faces untrusted clients; the doc of each says why.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request message accepted (after the prefix). 4 MiB, like grpc-go, grpc-java and
    /// tonic: clients written for them fit, and one call cannot make us buffer more.
    pub max_receive_message_len: usize,
    /// Largest reply message sent. `i32::MAX`, grpc-go's default: the handler controls replies.
    pub max_send_message_len: usize,
    /// HTTP/2 initial stream window (SETTINGS_INITIAL_WINDOW_SIZE). 1 MiB instead of h2's
    /// 64 KiB so a large request is not throttled to one window per round trip; the same as
    /// hyper and tonic.
    pub initial_stream_window: u32,
    /// HTTP/2 connection window. 1 MiB: with the stream window it bounds what a client can
    /// have in flight towards us on one connection.
    pub initial_connection_window: u32,
    /// SETTINGS_MAX_CONCURRENT_STREAMS. h2 sets no limit; 200 (hyper's default) bounds the
    /// tasks and buffers one connection can hold at once, and is far above what one client
    /// needs (the benchmark runs 64 streams per connection).
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE. h2 defaults to 16 MiB; gRPC suggests 8 KiB of request
    /// headers. 16 KiB leaves room for large tokens while bounding HPACK work per request.
    pub max_header_list_size: u32,
    /// Streams a client may reset before we accept them, per connection, before h2 answers
    /// with GOAWAY (the "rapid reset" attack, CVE-2023-44487). h2's default, 20.
    pub max_pending_accept_reset_streams: usize,
    /// How long graceful shutdown waits for in-flight calls before closing anyway.
    pub shutdown_grace: Duration,
    /// Compress replies with this encoding when the client accepts it and the handler did not
    /// choose. `None` (identity): compression costs CPU that small messages do not repay.
    pub response_compression: Option<Encoding>,
    /// Time a new connection has to complete the HTTP/2 preface and SETTINGS exchange,
    /// counted from accept, the TLS handshake included. 10 s: ample for any real client, and a
    /// peer that opens sockets and sends nothing (slowloris) holds each one only that long.
    pub handshake_timeout: Duration,
    /// Send a keepalive PING after this long without one (gRFC A8). `Some(2 h)`, gRPC's
    /// default: finds dead peers on idle connections without chatter.
    pub keepalive_time: Option<Duration>,
    /// A keepalive PING unanswered this long closes the connection. 20 s, gRPC's default.
    pub keepalive_timeout: Duration,
    /// Close (GOAWAY) a connection that has had no stream for this long (gRFC A9). `None`,
    /// gRPC's default: clients keep channels open on purpose; set it to shed idle sockets.
    pub max_connection_idle: Option<Duration>,
    /// Close (GOAWAY) a connection this old, ±10 % jitter (gRFC A9), so load re-balances.
    /// `None`, gRPC's default.
    pub max_connection_age: Option<Duration>,
    /// After the age GOAWAY, how long in-flight calls may take before the connection is cut.
    /// `None`: as long as they need.
    pub max_connection_age_grace: Option<Duration>,
    /// Print every HTTP/2 frame of every connection ([`crate::tracer`]). `None`: a teaching
    /// and debugging tool, off unless asked for; when off, sockets are not wrapped at all.
    pub wire_trace: Option<WireTrace>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_receive_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_send_message_len: i32::MAX as usize,
            initial_stream_window: 1024 * 1024,
            initial_connection_window: 1024 * 1024,
            max_concurrent_streams: 200,
            max_header_list_size: 16 * 1024,
            max_pending_accept_reset_streams: 20,
            shutdown_grace: Duration::from_secs(10),
            response_compression: None,
            handshake_timeout: Duration::from_secs(10),
            keepalive_time: Some(Duration::from_secs(2 * 60 * 60)),
            keepalive_timeout: Duration::from_secs(20),
            max_connection_idle: None,
            max_connection_age: None,
            max_connection_age_grace: None,
            wire_trace: None,
        }
    }
}

/// A gRPC server: a configuration and a routing table.
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use rawgrpc::proto::user::UserServiceServer;
/// use rawgrpc::server::Server;
/// use rawgrpc::services::user::UserServiceImpl;
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:50051").await?;
/// Server::new()
///     .add_service(UserServiceServer::new(UserServiceImpl::in_memory()))
///     .serve_with_shutdown(listener, async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await
/// # }
/// ```
#[derive(Default)]
pub struct Server {
    config: ServerConfig,
    router: Router,
    interceptors: Vec<Arc<dyn Interceptor>>,
    metrics: Option<Arc<metrics::Metrics>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// A server with the default configuration and no services.
    pub fn new() -> Self {
        Server::default()
    }

    /// A server with `config` and no services.
    pub fn with_config(config: ServerConfig) -> Self {
        Server {
            config,
            router: Router::new(),
            interceptors: Vec::new(),
            metrics: None,
            tls: None,
        }
    }

    /// Serves over TLS (ALPN h2) with `acceptor`, e.g. from [`crate::tls::server_acceptor`].
    pub fn with_tls(mut self, acceptor: tokio_rustls::TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Counts calls and connections into `metrics` (serve them with
    /// [`metrics::serve_metrics`]).
    pub fn with_metrics(mut self, metrics: Arc<metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds an interceptor, run around every call after those added before it.
    pub fn add_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptors.push(Arc::new(interceptor));
        self
    }

    /// Adds the routes of a generated service adapter (e.g. `UserServiceServer`).
    pub fn add_service(mut self, service: impl Service) -> Self {
        self.router.add_service(service);
        self
    }

    /// The routing table built so far.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Serves connections from `listener` until `shutdown` completes, then drains: GOAWAY to
    /// every client, in-flight calls finish (up to `shutdown_grace`), and this returns.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let shared = Arc::new(connection::Shared {
            config: self.config,
            router: self.router,
            interceptors: self.interceptors,
            metrics: self.metrics,
            tls: self.tls,
        });
        connection::serve(listener, shared, shutdown).await
    }

    /// Binds `addr` and serves until `shutdown` completes.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_shutdown(listener, shutdown).await
    }
}

/// Completes when the process is asked to stop: Ctrl-C (SIGINT), or SIGTERM on Unix (what
/// `kill`, systemd and Kubernetes send). Pass it to [`Server::serve_with_shutdown`] for a
/// graceful stop: GOAWAY to every client, then in-flight calls finish.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // No SIGTERM handler to be had: Ctrl-C alone stops the server.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
