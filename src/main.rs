//! The `rawgrpc` command: run the UserService server, or call one.
//!
//! ```text
//! rawgrpc serve [--addr 127.0.0.1:50051] [--workers N]
//! rawgrpc create-user [--addr A] [--id ID] --name N --email E --age N
//! rawgrpc get-user [--addr A] --id ID
//! ```
//!
//! The client commands print the user in protobuf text format (as the article's
//! `print(response.user)` does) or, on failure, `error: CODE: message` with exit status 1.
//! Logs go to stderr through `tracing`; `RUST_LOG` sets the level (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{
    CreateUserRequest, User, UserRequest, UserServiceClient, UserServiceServer,
};
use rawgrpc::server::Server;
use rawgrpc::services::user::UserServiceImpl;
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
    /// Serve the UserService until SIGTERM or Ctrl-C, then drain gracefully and exit 0.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = DEFAULT_ADDR, env = "RAWGRPC_ADDR")]
        addr: SocketAddr,
        /// Tokio worker threads (default: one per CPU).
        #[arg(long, env = "RAWGRPC_WORKERS")]
        workers: Option<usize>,
    },
    /// Call CreateUser and print the stored user.
    CreateUser {
        /// Server address.
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: String,
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
        /// Deadline for the call, in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
    /// Call GetUser and print the user.
    GetUser {
        /// Server address.
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: String,
        /// The user's id.
        #[arg(long)]
        id: String,
        /// Deadline for the call, in milliseconds.
        #[arg(long)]
        timeout_ms: Option<u64>,
    },
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
        Command::Serve { workers, .. } => *workers,
        _ => Some(1),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = workers {
        builder.worker_threads(n.max(1));
    }
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
        Command::Serve { addr, .. } => serve(addr).await,
        Command::CreateUser {
            addr,
            id,
            name,
            email,
            age,
            timeout_ms,
        } => {
            let user = User {
                name: name.into(),
                email: email.into(),
                age,
                id: id.into(),
            };
            let result = async {
                let client = UserServiceClient::new(Channel::connect(&addr).await?);
                let request = with_timeout(CreateUserRequest { user: Some(user) }, timeout_ms);
                let response = client.create_user(request).await?;
                Ok(response.message().view().user.map(|u| text_format(&u)))
            };
            print_outcome(result.await)
        }
        Command::GetUser {
            addr,
            id,
            timeout_ms,
        } => {
            let result = async {
                let client = UserServiceClient::new(Channel::connect(&addr).await?);
                let user = User {
                    id: id.into(),
                    ..User::default()
                };
                let request = with_timeout(UserRequest { user: Some(user) }, timeout_ms);
                let response = client.get_user(request).await?;
                Ok(response.message().view().user.map(|u| text_format(&u)))
            };
            print_outcome(result.await)
        }
    }
}

async fn serve(addr: SocketAddr) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = Server::new().add_service(UserServiceServer::new(UserServiceImpl::in_memory()));
    match server
        .serve_with_shutdown(listener, shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
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

fn with_timeout<T>(message: T, timeout_ms: Option<u64>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(ms) = timeout_ms {
        request.set_timeout(Duration::from_millis(ms));
    }
    request
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
