//! The `rawgrpc` command: run the UserService server, or call one.
//!
//! ```text
//! rawgrpc serve [--addr 127.0.0.1:50051] [--workers N] [--auth-token T] [--tls-cert PEM --tls-key PEM]
//!               [--metrics-addr HOST:PORT] [--access-log] [limits…]     (see `rawgrpc serve --help`)
//! rawgrpc create-user [--addr A] [--id ID] --name N --email E --age N
//! rawgrpc get-user [--addr A] --id ID
//! ```
//!
//! Every `serve` flag can also come from the environment (`RAWGRPC_ADDR`, `RAWGRPC_AUTH_TOKEN`,
//! …, named in `--help`). The client commands print the user in protobuf text format (as the
//! article's `print(response.user)` does) or, on failure, `error: CODE: message` with exit
//! status 1. Logs go to stderr through `tracing`; `RUST_LOG` sets the level (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rawgrpc::client::channel::ChannelConfig;
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{
    CreateUserRequest, User, UserRequest, UserServiceClient, UserServiceServer,
};
use rawgrpc::server::interceptor::{AccessLog, BearerAuth};
use rawgrpc::server::metrics::{serve_metrics, Metrics};
use rawgrpc::server::{Server, ServerConfig};
use rawgrpc::services::user::UserServiceImpl;
use rawgrpc::tls::ClientTls;
use rawgrpc::tracer::WireTrace;
use rawgrpc::{Request, Status};

const DEFAULT_ADDR: &str = "127.0.0.1:50051";

#[derive(Parser)]
#[command(
    name = "rawgrpc",
    version,
    about = "A gRPC server and client written by hand on raw HTTP/2"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the UserService (with health checking and reflection) until SIGTERM or Ctrl-C,
    /// then drain gracefully and exit 0.
    Serve(ServeArgs),
    /// Call CreateUser and print the stored user.
    CreateUser {
        #[command(flatten)]
        client: ClientArgs,
        /// The user's id (empty: the server assigns one).
        #[arg(long, default_value = "")]
        id: String,
        /// The user's name.
        #[arg(long)]
        name: String,
        /// The user's email.
        #[arg(long)]
        email: String,
        /// The user's age.
        #[arg(long)]
        age: i32,
    },
    /// Call GetUser and print the user.
    GetUser {
        #[command(flatten)]
        client: ClientArgs,
        /// The user's id.
        #[arg(long)]
        id: String,
    },
}

/// `rawgrpc serve`: every limit of `ServerConfig` (see its docs for the reasons behind each
/// default). Durations: `500ms`, `20s`, `5m`, `2h`, or `off`; sizes: `16384`, `16KiB`, `4MiB`.
#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_ADDR, env = "RAWGRPC_ADDR")]
    addr: SocketAddr,
    /// Tokio worker threads (default: one per CPU). With 1, everything runs on one thread
    /// (tokio's current-thread runtime), the cheapest setup for a server given one core.
    #[arg(long, env = "RAWGRPC_WORKERS")]
    workers: Option<usize>,
    /// Require `authorization: Bearer TOKEN` (health and reflection stay open).
    #[arg(long, env = "RAWGRPC_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Log one line per call (method, peer, status, duration, bytes) at info level.
    #[arg(long, env = "RAWGRPC_ACCESS_LOG")]
    access_log: bool,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics.
    #[arg(long, env = "RAWGRPC_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, serves TLS with ALPN h2.
    #[arg(long, env = "RAWGRPC_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "RAWGRPC_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest request message accepted.
    #[arg(long, default_value = "4MiB", value_parser = parse_size, env = "RAWGRPC_MAX_RECV_MESSAGE_SIZE")]
    max_recv_message_size: usize,
    /// Largest reply message sent.
    #[arg(long, default_value = "2GiB", value_parser = parse_size, env = "RAWGRPC_MAX_SEND_MESSAGE_SIZE")]
    max_send_message_size: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection.
    #[arg(long, default_value_t = 200, env = "RAWGRPC_MAX_CONCURRENT_STREAMS")]
    max_concurrent_streams: u32,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE.
    #[arg(long, default_value = "16KiB", value_parser = parse_size, env = "RAWGRPC_MAX_HEADER_LIST_SIZE")]
    max_header_list_size: usize,
    /// HTTP/2 initial stream window.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, env = "RAWGRPC_INITIAL_STREAM_WINDOW")]
    initial_stream_window: usize,
    /// HTTP/2 initial connection window.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, env = "RAWGRPC_INITIAL_CONNECTION_WINDOW")]
    initial_connection_window: usize,
    /// Time a connection has to complete the HTTP/2 (and TLS) handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "RAWGRPC_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Setting,
    /// Send a keepalive PING after this long (gRFC A8).
    #[arg(long, default_value = "2h", value_parser = parse_duration, env = "RAWGRPC_KEEPALIVE_TIME")]
    keepalive_time: Setting,
    /// Close the connection if a keepalive PING is not answered within this.
    #[arg(long, default_value = "20s", value_parser = parse_duration, env = "RAWGRPC_KEEPALIVE_TIMEOUT")]
    keepalive_timeout: Setting,
    /// GOAWAY a connection without streams for this long (gRFC A9).
    #[arg(long, default_value = "off", value_parser = parse_duration, env = "RAWGRPC_MAX_CONNECTION_IDLE")]
    max_connection_idle: Setting,
    /// GOAWAY a connection this old, ±10 % (gRFC A9).
    #[arg(long, default_value = "off", value_parser = parse_duration, env = "RAWGRPC_MAX_CONNECTION_AGE")]
    max_connection_age: Setting,
    /// After the age GOAWAY, cut the connection after this long.
    #[arg(long, default_value = "off", value_parser = parse_duration, env = "RAWGRPC_MAX_CONNECTION_AGE_GRACE")]
    max_connection_age_grace: Setting,
    /// How long graceful shutdown waits for in-flight calls.
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "RAWGRPC_SHUTDOWN_GRACE")]
    shutdown_grace: Setting,
    /// Compress replies with gzip when the client accepts it.
    #[arg(long, env = "RAWGRPC_GZIP_REPLIES")]
    gzip_replies: bool,
    /// Print every HTTP/2 frame, both directions, decoded, to stderr (see docs/walkthrough.md).
    #[arg(long, env = "RAWGRPC_TRACE_WIRE")]
    trace_wire: bool,
}

/// What the client commands share.
#[derive(clap::Args)]
struct ClientArgs {
    /// Server address.
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: String,
    /// Deadline for the call, in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Connect with TLS, trusting the CA certificates in this PEM file.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The name to check the server's certificate for (default: the host of --addr).
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
    /// Send `authorization: Bearer TOKEN`.
    #[arg(long, env = "RAWGRPC_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// Print every HTTP/2 frame of the call, both directions, decoded, to stderr.
    #[arg(long)]
    trace_wire: bool,
}

/// A duration flag's value: a duration, or `off`.
#[derive(Clone, Copy, Debug)]
struct Setting(Option<Duration>);

/// Parses `500ms`, `20s`, `5m`, `2h`, or `off` (none).
fn parse_duration(text: &str) -> Result<Setting, String> {
    if text == "off" {
        return Ok(Setting(None));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: add a unit (ms, s, m, h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    Ok(Setting(Some(d)))
}

/// Parses `16384`, `16KiB`, `4MiB`, `2GiB`.
fn parse_size(text: &str) -> Result<usize, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number"))?;
    let scale: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(format!("{text:?}: unit must be KiB, MiB or GiB")),
    };
    // 2GiB is one more than a message length can be; cap it at i32::MAX like grpc-go.
    Ok(n.saturating_mul(scale).min(i32::MAX as usize))
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        let defaults = ServerConfig::default();
        let u32_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        ServerConfig {
            max_receive_message_len: self.max_recv_message_size,
            max_send_message_len: self.max_send_message_size,
            initial_stream_window: u32_of(self.initial_stream_window),
            initial_connection_window: u32_of(self.initial_connection_window),
            max_concurrent_streams: self.max_concurrent_streams,
            max_header_list_size: u32_of(self.max_header_list_size),
            handshake_timeout: self
                .handshake_timeout
                .0
                .unwrap_or(defaults.handshake_timeout),
            keepalive_time: self.keepalive_time.0,
            keepalive_timeout: self
                .keepalive_timeout
                .0
                .unwrap_or(defaults.keepalive_timeout),
            max_connection_idle: self.max_connection_idle.0,
            max_connection_age: self.max_connection_age.0,
            max_connection_age_grace: self.max_connection_age_grace.0,
            shutdown_grace: self.shutdown_grace.0.unwrap_or(defaults.shutdown_grace),
            response_compression: self.gzip_replies.then_some(rawgrpc::Encoding::Gzip),
            wire_trace: self.trace_wire.then(WireTrace::stderr),
            ..defaults
        }
    }
}

impl ClientArgs {
    async fn connect(&self) -> Result<UserServiceClient, Status> {
        let mut config = ChannelConfig {
            wire_trace: self.trace_wire.then(WireTrace::stderr),
            ..ChannelConfig::default()
        };
        if let Some(ca) = &self.tls_ca {
            let host = self
                .tls_server_name
                .clone()
                .unwrap_or_else(|| host_of(&self.addr).to_owned());
            config.tls = Some(ClientTls::from_ca_file(ca, &host)?);
        }
        Ok(UserServiceClient::new(
            Channel::connect_with(&self.addr, config).await?,
        ))
    }

    fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        if let Some(ms) = self.timeout_ms {
            request.set_timeout(Duration::from_millis(ms));
        }
        if let Some(token) = &self.auth_token {
            request
                .metadata_mut()
                .insert("authorization", &format!("Bearer {token}"))?;
        }
        Ok(request)
    }
}

/// The host part of `host:port` (or `[v6]:port`), for TLS name checks.
fn host_of(addr: &str) -> &str {
    let hostport = addr
        .strip_prefix("https://")
        .or_else(|| addr.strip_prefix("http://"))
        .unwrap_or(addr);
    match hostport.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => hostport,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // A call's span closes when the call ends: at debug level this logs one line per
        // call with its method, status and duration (time.busy + time.idle).
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    let workers = match &cli.command {
        Command::Serve(args) => args.workers,
        _ => Some(1),
    };
    // One worker means one thread: a current-thread runtime runs the accept loop, every
    // connection and the I/O driver on the thread that calls `block_on`, with no work-stealing
    // queues, no cross-thread wake-ups and no second thread parked beside the worker.
    let mut builder = match workers {
        Some(n) if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all();
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::CreateUser {
            client,
            id,
            name,
            email,
            age,
        } => {
            let user = User {
                name: name.into(),
                email: email.into(),
                age,
                id: id.into(),
            };
            let result = async {
                let request = client.request(CreateUserRequest { user: Some(user) })?;
                let response = client.connect().await?.create_user(request).await?;
                Ok(response.message().view().user.map(|u| text_format(&u)))
            };
            print_outcome(result.await)
        }
        Command::GetUser { client, id } => {
            let result = async {
                let user = User {
                    id: id.into(),
                    ..User::default()
                };
                let request = client.request(UserRequest { user: Some(user) })?;
                let response = client.connect().await?.get_user(request).await?;
                Ok(response.message().view().user.map(|u| text_format(&u)))
            };
            print_outcome(result.await)
        }
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let addr = args.addr;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Health: the server ("") and the UserService are SERVING until the shutdown signal.
    let health = rawgrpc::services::health::HealthReporter::new();
    health.set_serving("");
    health.set_serving("UserService");
    let mut server = Server::with_config(args.config());
    if let Some(token) = &args.auth_token {
        server = server.add_interceptor(BearerAuth::new(token));
    }
    if args.access_log {
        server = server.add_interceptor(AccessLog);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        match rawgrpc::tls::server_acceptor(cert, key) {
            Ok(acceptor) => server = server.with_tls(acceptor),
            Err(e) => {
                eprintln!("error: TLS: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(metrics_addr) = args.metrics_addr {
        let metrics = Arc::new(Metrics::new());
        match tokio::net::TcpListener::bind(metrics_addr).await {
            Ok(l) => {
                tracing::info!(addr = %metrics_addr, "serving metrics at /metrics");
                tokio::spawn(serve_metrics(l, Arc::clone(&metrics)));
            }
            Err(e) => {
                eprintln!("error: cannot listen on {metrics_addr}: {e}");
                return ExitCode::FAILURE;
            }
        }
        server = server.with_metrics(metrics);
    }
    let server = server
        .add_service(UserServiceServer::new(UserServiceImpl::in_memory()))
        .add_service(rawgrpc::proto::grpc::health::v1::HealthServer::new(
            health.service(),
        ));
    // Reflection last, so that it lists every service above and itself (v1 and v1alpha).
    let server = rawgrpc::services::reflection::ReflectionService::add_to(server);
    // On SIGTERM / Ctrl-C, report NOT_SERVING first (Watch streams see it and end), then
    // drain.
    let shutdown = async move {
        rawgrpc::server::shutdown_signal().await;
        health.shutdown();
    };
    match server.serve_with_shutdown(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_outcome(result: Result<Option<String>, Status>) -> ExitCode {
    match result {
        Ok(Some(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: the response carries no user");
            ExitCode::FAILURE
        }
        Err(status) => {
            eprintln!("error: {}: {}", status.code(), status.message());
            ExitCode::FAILURE
        }
    }
}

/// The user in protobuf text format, fields in declaration order, defaults omitted (as
/// Python's `print(response.user)` shows it, but the id always shown).
fn text_format(user: &User<'_>) -> String {
    let mut out = String::new();
    if !user.name.is_empty() {
        out += &format!("name: {}\n", quote(&user.name));
    }
    if !user.email.is_empty() {
        out += &format!("email: {}\n", quote(&user.email));
    }
    if user.age != 0 {
        out += &format!("age: {}\n", user.age);
    }
    out += &format!("id: {}\n", quote(&user.id));
    out
}

/// A text-format string literal: quotes, backslashes and control characters escaped.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
