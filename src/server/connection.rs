//! Connections: the accept loop, the HTTP/2 handshake, one task per connection, graceful drain.
//!
//! Each accepted TCP connection gets its own task, which runs h2's server handshake (the
//! client preface, then SETTINGS both ways, RFC 9113 §3.4) with the limits of
//! [`ServerConfig`], and then accepts streams. Polling `accept` is also
//! what drives the connection: reading frames, writing queued ones, answering PINGs. Each new
//! stream's headers are checked right here (see [`call`](super::call)); a call that passes
//! then runs in a task of its own, so a slow handler never holds up the other calls on the
//! connection, and a refused one costs no task.
//!
//! **Graceful shutdown** (PROTOCOL-HTTP2.md, "GOAWAY Frame"): on the shutdown signal the
//! listener stops accepting, and every connection sends GOAWAY, which tells the client which
//! streams were accepted and that it should open new ones elsewhere. Streams in flight run to
//! completion; each connection closes once its last stream is done, and the server returns
//! when all have closed, or when the grace period ends.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::server::router::Router;
use crate::server::{call, ServerConfig};

/// What every connection and call of one server shares.
pub struct Shared {
    /// The limits.
    pub config: ServerConfig,
    /// The routing table.
    pub router: Router,
}

/// Accepts connections until `shutdown` completes, then drains them.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    info!(addr = %local, services = ?shared.router.services(), "listening");
    let (drain_tx, drain_rx) = watch::channel(false);
    // Each connection task holds a clone of `done_tx`; when all are dropped, `recv` returns None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // Replies are small and latency matters: do not let Nagle hold them back.
                    let _ = socket.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let drain = drain_rx.clone();
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        serve_connection(socket, peer, shared, drain).await;
                        drop(done);
                    });
                }
                // Out of file descriptors and the like: keep serving the connections we have.
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!("shutting down: sending GOAWAY, waiting for in-flight calls");
    let _ = drain_tx.send(true);
    drop(done_tx);
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        warn!(?grace, "grace period over; closing remaining connections");
    }
    info!("shut down");
    Ok(())
}

/// Runs one HTTP/2 connection to its end.
pub async fn serve_connection<T>(
    io: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut drain: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let handshake = h2::server::Builder::new()
        .initial_window_size(config.initial_stream_window)
        .initial_connection_window_size(config.initial_connection_window)
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_list_size)
        .max_pending_accept_reset_streams(config.max_pending_accept_reset_streams)
        .handshake::<T, Bytes>(io);
    let mut conn = match handshake.await {
        Ok(conn) => conn,
        Err(e) => {
            debug!(%peer, error = %e, "HTTP/2 handshake failed");
            return;
        }
    };
    debug!(%peer, "connection open");
    let mut draining = *drain.borrow();
    if draining {
        conn.graceful_shutdown();
    }
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => call::accept(request, respond, &shared),
                Some(Err(e)) => {
                    debug!(%peer, error = %e, "connection error");
                    break;
                }
                None => break,
            },
            changed = drain.changed(), if !draining => {
                draining = true;
                if changed.is_ok() {
                    conn.graceful_shutdown();
                }
            }
        }
    }
    debug!(%peer, "connection closed");
}
