//! A server in a process of its own, so its memory can be read from `/proc/PID/status`.
//!
//! [`ServerProcess`] starts `rawgrpc serve` or `interop-server` on a free port of 127.0.0.1,
//! waits until it accepts, and on drop — also when the test panics — sends SIGTERM, waits
//! briefly, then SIGKILLs and reaps it: no process outlives its test.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmRSS: resident now.
    pub rss_kib: u64,
    /// VmHWM: the peak resident set since the process started.
    pub hwm_kib: u64,
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// Which binary to run.
#[derive(Debug, Clone, Copy)]
pub enum Binary {
    /// `rawgrpc serve --addr 127.0.0.1:P --workers 2`: the UserService.
    UserService,
    /// `interop-server --port P`: the interop TestService.
    Interop,
}

pub struct ServerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub pid: u32,
    log: PathBuf,
}

static SPAWNED: AtomicUsize = AtomicUsize::new(0);

/// The binary cargo built for this test, unless `var` names another (a release build, say).
fn binary_path(var: &str, built: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(built))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl ServerProcess {
    /// Starts `binary` and waits until it accepts connections (up to 15 s, three ports tried).
    pub async fn start(binary: Binary) -> ServerProcess {
        for _ in 0..3 {
            if let Some(server) = ServerProcess::try_start(binary).await {
                return server;
            }
        }
        panic!("{binary:?} did not start");
    }

    async fn try_start(binary: Binary) -> Option<ServerProcess> {
        let port = free_port();
        let n = SPAWNED.fetch_add(1, Ordering::SeqCst);
        let log = std::env::temp_dir().join(format!(
            "rawgrpc-hostile-{}-{n}-{port}.log",
            std::process::id()
        ));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut command = match binary {
            Binary::UserService => {
                let mut c = Command::new(binary_path(
                    "HOSTILE_RAWGRPC_BIN",
                    env!("CARGO_BIN_EXE_rawgrpc"),
                ));
                c.args([
                    "serve",
                    "--addr",
                    &format!("127.0.0.1:{port}"),
                    "--workers",
                    "2",
                ]);
                c
            }
            Binary::Interop => {
                let mut c = Command::new(binary_path(
                    "HOSTILE_INTEROP_SERVER_BIN",
                    env!("CARGO_BIN_EXE_interop-server"),
                ));
                c.args(["--port", &port.to_string()]);
                c
            }
        };
        let child = command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn server");
        let pid = child.id();
        let mut server = ServerProcess {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pid,
            log,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(15) {
            if tokio::net::TcpStream::connect(server.addr).await.is_ok() {
                return Some(server);
            }
            if let Some(child) = server.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("{binary:?} exited early ({status}): {}", server.log_text());
                    return None; // port taken meanwhile, most likely: try another
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.pid)
    }

    /// What the server wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics if the server's log shows a panic.
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGTERM, then wait up to `grace` for a clean exit; SIGKILL after that. Returns the exit
    /// status if the process exited on its own after SIGTERM.
    pub fn stop_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops the server (SIGTERM), asserts it exited cleanly and never panicked.
    pub fn stop(mut self) {
        let status = self.stop_within(Duration::from_secs(12));
        self.assert_no_panic();
        let status = status.expect("the server exits after SIGTERM");
        assert!(
            status.success(),
            "server exit status {status}: {}",
            self.log_text()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop_within(Duration::from_secs(2));
        let _ = std::fs::remove_file(&self.log);
    }
}
