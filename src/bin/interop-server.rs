//! `interop-server`: rawgrpc's TestService for gRPC's interop suite.
//!
//! ```text
//! interop-server --port 10000 [--use_tls=false] [--host 127.0.0.1]
//! ```
//!
//! Flags follow `doc/interop-test-descriptions.md` ("Server"). TLS is not implemented yet, so
//! `--use_tls=true` is refused. Stops gracefully on SIGTERM or Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use rawgrpc::interop::server::TestServiceImpl;
use rawgrpc::proto::grpc::testing::TestServiceServer;
use rawgrpc::server::Server;

#[derive(Parser)]
#[command(
    name = "interop-server",
    about = "gRPC interop TestService served by rawgrpc"
)]
struct Args {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Use TLS (not supported yet: must be false).
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.use_tls {
        eprintln!("interop-server: TLS is not implemented; run with --use_tls=false");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("interop-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let addr = SocketAddr::new(args.host, args.port);
        let server = Server::new().add_service(TestServiceServer::new(TestServiceImpl));
        match server.serve(addr, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("interop-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
