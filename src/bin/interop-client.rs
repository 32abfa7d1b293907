//! `interop-client`: rawgrpc's client side of gRPC's interop suite.
//!
//! ```text
//! interop-client --server_host 127.0.0.1 --server_port 10000 --test_case large_unary [--use_tls=false]
//! ```
//!
//! Flags follow `doc/interop-test-descriptions.md` ("Client"); exit status 0 iff the case
//! passes. `--test_case all` runs every implemented case in turn. TLS is not implemented yet.

use std::process::ExitCode;

use clap::{ArgAction, Parser};
use rawgrpc::client::Channel;
use rawgrpc::interop::client::{run, CASES};

#[derive(Parser)]
#[command(
    name = "interop-client",
    about = "gRPC interop test cases run by rawgrpc"
)]
struct Args {
    /// Server host.
    #[arg(long = "server_host", default_value = "127.0.0.1")]
    server_host: String,
    /// Server port.
    #[arg(long = "server_port")]
    server_port: u16,
    /// The case to run (or `all`).
    #[arg(long = "test_case")]
    test_case: String,
    /// Use TLS (not supported yet: must be false).
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
    /// Accepted for compatibility with interop harnesses; TLS is not supported.
    #[arg(long = "use_test_ca", action = ArgAction::Set, default_value_t = false)]
    use_test_ca: bool,
    /// Accepted for compatibility; the :authority is `server_host:server_port`.
    #[arg(long = "server_host_override")]
    server_host_override: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.use_tls || args.use_test_ca {
        eprintln!("interop-client: TLS is not implemented; run with --use_tls=false");
        return ExitCode::from(2);
    }
    let _ = &args.server_host_override;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("interop-client: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let addr = format!("{}:{}", args.server_host, args.server_port);
        let cases: Vec<&str> = if args.test_case == "all" {
            CASES.to_vec()
        } else {
            vec![args.test_case.as_str()]
        };
        let mut failed = 0;
        for case in cases {
            // A fresh channel per case, as the reference clients do.
            let outcome = match Channel::connect(&addr).await {
                Ok(channel) => run(&channel, case).await,
                Err(status) => Err(format!("cannot connect to {addr}: {status}")),
            };
            match outcome {
                Ok(()) => println!("ok - {case}"),
                Err(reason) => {
                    failed += 1;
                    println!("not ok - {case}: {reason}");
                }
            }
        }
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
