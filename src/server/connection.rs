//! Connections: the accept loop, the HTTP/2 handshake, one task per connection, graceful drain.
//!
//! Each accepted TCP connection gets its own task, which runs h2's server handshake (the
//! client preface, then SETTINGS both ways, RFC 9113 §3.4) with the limits of
//! [`ServerConfig`], and then accepts streams. Polling `accept` is also
//! what drives the connection: reading frames, writing queued ones, answering PINGs. Each new
//! stream's headers are checked right here (see [`call`]); a refused call costs no task. A
//! unary call that passes is polled once in place, with the other streams that arrived with
//! it (see [`CallBatch`]), and gets a task of its own only if it has to wait; streaming calls
//! always get one. So a handler that waits never holds up the other calls on the connection
//! (one that computes for long without awaiting does).
//!
//! **Graceful shutdown** (PROTOCOL-HTTP2.md, "GOAWAY Frame"): on the shutdown signal the
//! listener stops accepting, and every connection sends GOAWAY, which tells the client which
//! streams were accepted and that it should open new ones elsewhere. Streams in flight run to
//! completion; each connection closes once its last stream is done, and the server returns
//! when all have closed, or when the grace period ends.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::server::interceptor::Interceptor;
use crate::server::metrics::Metrics;
use crate::server::router::{CallBatch, Router};
use crate::server::{call, preface, ServerConfig};
use crate::tracer::{Side, TracedIo};

/// What every connection and call of one server shares.
pub struct Shared {
    /// The limits.
    pub config: ServerConfig,
    /// The routing table.
    pub router: Router,
    /// Run around every call, in order.
    pub interceptors: Vec<Arc<dyn Interceptor>>,
    /// Counters for Prometheus, when enabled.
    pub metrics: Option<Arc<Metrics>>,
    /// TLS for every connection, when enabled (plaintext h2c otherwise).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    /// A server's shared state with no interceptors and no metrics.
    pub fn new(config: ServerConfig, router: Router) -> Self {
        Shared {
            config,
            router,
            interceptors: Vec::new(),
            metrics: None,
            tls: None,
        }
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection(Option<Arc<Metrics>>);

impl OpenConnection {
    fn new(metrics: &Option<Arc<Metrics>>) -> Self {
        if let Some(m) = metrics {
            m.connection_opened();
        }
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            m.connection_closed();
        }
    }
}

/// What the server asks of every connection, through a `watch` channel, as it shuts down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Serving as usual.
    Serving,
    /// Shutting down: GOAWAY, accept no new stream, let in-flight calls finish.
    Draining,
    /// The shutdown grace is over: close the connection now, cutting what is left.
    Closing,
}

/// Most streams one connection accepts before it runs the calls among them (`CallBatch`).
/// 64 covers the benchmark's 64 streams per connection read at once; a bound at all keeps a
/// client that pipelines requests without pause from holding the connection task in its
/// accept loop.
const MAX_CALL_BATCH: usize = 64;

/// Accepts connections until `shutdown` completes, then drains them.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    info!(addr = %local, services = ?shared.router.services(), "listening");
    let (drain_tx, drain_rx) = watch::channel(Drain::Serving);
    // Each connection task holds a clone of `done_tx`; when all are dropped, `recv` returns None.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // Replies are small and latency matters: do not let Nagle hold them back.
                    let _ = socket.set_nodelay(true);
                    // One budget for the whole handshake, TLS included, counted from here: a
                    // peer that is slow through TLS must not get a fresh budget for HTTP/2.
                    let handshake_deadline = Instant::now() + shared.config.handshake_timeout;
                    let shared = Arc::clone(&shared);
                    let drain = drain_rx.clone();
                    let done = done_tx.clone();
                    // One spawn per kind of connection, not one task that branches: a task is
                    // as large as its largest state, and a TLS session is about 11 KB that
                    // every plaintext connection would otherwise carry too (13 KB a task
                    // instead of 2).
                    match shared.tls.clone() {
                        None => {
                            tokio::spawn(async move {
                                serve_maybe_traced(socket, peer, shared, drain, handshake_deadline)
                                    .await;
                                drop(done);
                            });
                        }
                        Some(acceptor) => {
                            tokio::spawn(async move {
                                let tls = acceptor.accept(socket);
                                match tokio::time::timeout_at(handshake_deadline, tls).await {
                                    Ok(Ok(tls)) => {
                                        serve_maybe_traced(tls, peer, shared, drain, handshake_deadline)
                                            .await
                                    }
                                    Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                                    Err(_) => debug!(%peer, "TLS handshake timed out"),
                                }
                                drop(done);
                            });
                        }
                    }
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
    let _ = drain_tx.send(Drain::Draining);
    drop(done_tx);
    let grace = shared.config.shutdown_grace;
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        warn!(?grace, "grace period over; closing remaining connections");
        // Without this a library caller's remaining connections (and their calls) would
        // outlive `serve`; the CLI only stopped them by exiting.
        let _ = drain_tx.send(Drain::Closing);
    }
    info!("shut down");
    Ok(())
}

/// Runs one connection, through the wire tracer if the config asks for it. The choice is made
/// once per connection: an untraced socket is not wrapped at all.
async fn serve_maybe_traced<T>(
    io: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    drain: watch::Receiver<Drain>,
    handshake_deadline: Instant,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    match &shared.config.wire_trace {
        None => serve_until(io, peer, shared, drain, handshake_deadline).await,
        Some(trace) => {
            let traced = TracedIo::new(io, trace.connection(Side::Server, peer));
            serve_until(traced, peer, shared, drain, handshake_deadline).await
        }
    }
}

/// Runs one HTTP/2 connection to its end; it has `handshake_timeout` from now to complete the
/// HTTP/2 handshake.
pub async fn serve_connection<T>(
    io: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    drain: watch::Receiver<Drain>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let handshake_deadline = Instant::now() + shared.config.handshake_timeout;
    serve_until(io, peer, shared, drain, handshake_deadline).await;
}

/// Runs one HTTP/2 connection to its end, if its handshake completes by `handshake_deadline`.
async fn serve_until<T>(
    io: T,
    peer: SocketAddr,
    shared: Arc<Shared>,
    drain: watch::Receiver<Drain>,
    handshake_deadline: Instant,
) where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let _open = OpenConnection::new(&shared.metrics);
    let config = &shared.config;
    // A peer that connects and never completes the preface and its first SETTINGS frame
    // (slowloris) holds a socket and a task: it gets `handshake_timeout` and no more.
    let started = async {
        let io = match preface::read(io).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Err(e) => return Err(e.to_string()),
        };
        h2::server::Builder::new()
            .initial_window_size(config.initial_stream_window)
            .initial_connection_window_size(config.initial_connection_window)
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_header_list_size(config.max_header_list_size)
            .max_pending_accept_reset_streams(config.max_pending_accept_reset_streams)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| e.to_string())
    };
    let mut conn = match tokio::time::timeout_at(handshake_deadline, started).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "HTTP/2 handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "HTTP/2 handshake timed out");
            return;
        }
    };
    debug!(%peer, "connection open");
    let mut lifetime = Lifetime::new(config, conn.ping_pong());
    let mut batch = CallBatch::new();
    // Told to close, or the drain channel is gone: nothing more to hear from it.
    let mut closing = false;
    let mut draining = *drain.borrow() != Drain::Serving;
    if draining {
        conn.graceful_shutdown();
    }
    // One future waits for the drain signal across loop iterations, and a new one is made
    // only after it fires: a fresh `changed()` on every wake-up would register a waiter with
    // the watch channel and remove it again, for each call.
    let drain_signal = next_drain(drain);
    tokio::pin!(drain_signal);
    loop {
        // Asking h2 takes its stream lock: only when idleness is watched.
        let in_use = lifetime.idle.is_some() && conn.has_streams();
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    lifetime.active();
                    call::accept(request, respond, &shared, peer, &mut batch);
                    // Every other stream h2 has already read joins the batch before any of
                    // them runs, so their replies leave in one write (see `CallBatch`). The
                    // no-op waker is harmless: the loop polls `accept` again, with the task's
                    // waker, before it waits.
                    let mut cx = Context::from_waker(Waker::noop());
                    let mut ended = false;
                    for _ in 1..MAX_CALL_BATCH {
                        match conn.poll_accept(&mut cx) {
                            Poll::Ready(Some(Ok((request, respond)))) => {
                                call::accept(request, respond, &shared, peer, &mut batch);
                            }
                            Poll::Ready(Some(Err(e))) => {
                                debug!(%peer, error = %e, "connection error");
                                ended = true;
                                break;
                            }
                            Poll::Ready(None) => {
                                ended = true;
                                break;
                            }
                            Poll::Pending => break,
                        }
                    }
                    batch.run();
                    if ended {
                        break;
                    }
                }
                Some(Err(e)) => {
                    debug!(%peer, error = %e, "connection error");
                    break;
                }
                None => break,
            },
            (changed, drain) = &mut drain_signal, if !closing => {
                match changed {
                    Ok(Drain::Serving) => {}
                    Ok(Drain::Draining) => {
                        if !draining {
                            draining = true;
                            conn.graceful_shutdown();
                        }
                    }
                    Ok(Drain::Closing) => {
                        debug!(%peer, "shutdown grace over: closing connection");
                        closing = true;
                        conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                    }
                    // The server dropped the channel without a word: nothing more to hear.
                    Err(_) => closing = true,
                }
                drain_signal.set(next_drain(drain));
            }
            event = lifetime.next_event(in_use) => match event {
                // No stream is open, so nothing can be cut short: GOAWAY and close now, without
                // the PING round trip of a graceful shutdown that a dead peer never completes.
                LifetimeEvent::Idle => {
                    debug!(%peer, "closing idle connection");
                    conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                }
                LifetimeEvent::TooOld => {
                    debug!(%peer, "closing old connection gracefully");
                    draining = true;
                    conn.graceful_shutdown();
                }
                LifetimeEvent::GraceOver | LifetimeEvent::PingTimeout => {
                    debug!(%peer, ?event, "closing connection");
                    conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                }
                LifetimeEvent::Tick => {}
            },
        }
    }
    debug!(%peer, "connection closed");
}

/// The drain state the server announces next, with the receiver to wait for the one after;
/// `Err` once the server has dropped its sender.
async fn next_drain(
    mut drain: watch::Receiver<Drain>,
) -> (
    Result<Drain, watch::error::RecvError>,
    watch::Receiver<Drain>,
) {
    let changed = drain.changed().await.map(|()| *drain.borrow_and_update());
    (changed, drain)
}

/// What ends a connection besides its peer: idleness, age, and an unanswered keepalive PING
/// (gRFC A8 "Client-side Keepalive" seen from the server, and A9 "Server-side Connection
/// Management").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LifetimeEvent {
    /// No stream for `max_connection_idle`: GOAWAY and close.
    Idle,
    /// Older than `max_connection_age`: GOAWAY, then close once drained.
    TooOld,
    /// `max_connection_age_grace` after GOAWAY and streams remain: close now.
    GraceOver,
    /// A keepalive PING went unanswered for `keepalive_timeout`: the peer is gone.
    PingTimeout,
    /// Nothing to act on (a keepalive PING was answered, idleness was re-checked).
    Tick,
}

/// The timers of one connection. One `Sleep` serves them all: it is armed for the nearest
/// deadline and re-armed only when that deadline changes, so the accept loop does not touch
/// the timer wheel on every stream.
struct Lifetime {
    opened: Instant,
    last_active: Instant,
    idle: Option<Duration>,
    age: Option<Duration>,
    age_grace: Option<Duration>,
    /// When GOAWAY went out for age, if it did.
    aged_at: Option<Instant>,
    keepalive: Option<Keepalive>,
    timer: Pin<Box<tokio::time::Sleep>>,
    timer_at: Option<Instant>,
    /// The timer was polled since it was last armed, so it will wake this task when due.
    timer_polled: bool,
}

/// Server keepalive: a PING every `time`; no PONG within `timeout` means the peer is gone.
struct Keepalive {
    time: Duration,
    timeout: Duration,
    pings: h2::PingPong,
    next_ping: Instant,
    /// Set while a PING is unanswered: when to give up on it.
    pong_due: Option<Instant>,
}

impl Lifetime {
    fn new(config: &ServerConfig, ping_pong: Option<h2::PingPong>) -> Self {
        let now = Instant::now();
        let keepalive = match (config.keepalive_time, ping_pong) {
            (Some(time), Some(pings)) => Some(Keepalive {
                time,
                timeout: config.keepalive_timeout,
                pings,
                next_ping: now + time,
                pong_due: None,
            }),
            _ => None,
        };
        Lifetime {
            opened: now,
            last_active: now,
            idle: config.max_connection_idle,
            age: config.max_connection_age.map(jitter),
            age_grace: config.max_connection_age_grace,
            aged_at: None,
            keepalive,
            timer: Box::pin(tokio::time::sleep_until(now)),
            timer_at: None,
            timer_polled: false,
        }
    }

    /// A stream arrived. The clock is read only when idleness is watched.
    fn active(&mut self) {
        if self.idle.is_some() {
            self.last_active = Instant::now();
        }
    }

    /// The nearest deadline of all the timers, if any.
    fn next_deadline(&self) -> Option<Instant> {
        let idle = self.idle.map(|idle| self.last_active + idle);
        let age = match (self.age, self.aged_at, self.age_grace) {
            (Some(age), None, _) => Some(self.opened + age),
            (_, Some(at), Some(grace)) => Some(at + grace),
            _ => None,
        };
        let keepalive = self
            .keepalive
            .as_ref()
            .map(|k| k.pong_due.unwrap_or(k.next_ping));
        [idle, age, keepalive].into_iter().flatten().min()
    }

    /// Waits for the next event. `has_streams` says whether the connection is in use now; a
    /// connection in use is never idle.
    async fn next_event(&mut self, has_streams: bool) -> LifetimeEvent {
        if has_streams {
            self.active();
        }
        std::future::poll_fn(|cx| self.poll_event(cx, has_streams)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, has_streams: bool) -> Poll<LifetimeEvent> {
        if let Some(k) = &mut self.keepalive {
            if k.pong_due.is_some() {
                match k.pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        k.pong_due = None;
                        k.next_ping = Instant::now() + k.time;
                        return Poll::Ready(LifetimeEvent::Tick);
                    }
                    Poll::Ready(Err(_)) => {
                        self.keepalive = None;
                        return Poll::Ready(LifetimeEvent::PingTimeout);
                    }
                    Poll::Pending => {}
                }
            }
        }
        let Some(deadline) = self.next_deadline() else {
            return Poll::Pending;
        };
        if self.timer_at != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.timer_at = Some(deadline);
            self.timer_polled = false;
        }
        // Once polled, an armed timer keeps this task's waker: until it has elapsed, polling
        // it again on every pass of the accept loop would only cost time.
        if self.timer_polled && !self.timer.is_elapsed() {
            return Poll::Pending;
        }
        self.timer_polled = true;
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer_polled = false;
        // Something is due: find what.
        let now = Instant::now();
        if let Some(k) = &mut self.keepalive {
            match k.pong_due {
                Some(due) if now >= due => {
                    self.keepalive = None;
                    return Poll::Ready(LifetimeEvent::PingTimeout);
                }
                None if now >= k.next_ping => {
                    if k.pings.send_ping(h2::Ping::opaque()).is_err() {
                        self.keepalive = None;
                        return Poll::Ready(LifetimeEvent::PingTimeout);
                    }
                    k.pong_due = Some(now + k.timeout);
                    return Poll::Ready(LifetimeEvent::Tick);
                }
                _ => {}
            }
        }
        match (self.age, self.aged_at, self.age_grace) {
            (Some(age), None, _) if now >= self.opened + age => {
                self.aged_at = Some(now);
                return Poll::Ready(LifetimeEvent::TooOld);
            }
            (_, Some(at), Some(grace)) if now >= at + grace => {
                self.age_grace = None;
                return Poll::Ready(LifetimeEvent::GraceOver);
            }
            _ => {}
        }
        if let Some(idle) = self.idle {
            if now >= self.last_active + idle {
                if has_streams {
                    self.last_active = now;
                } else {
                    self.idle = None;
                    return Poll::Ready(LifetimeEvent::Idle);
                }
            }
        }
        Poll::Ready(LifetimeEvent::Tick)
    }
}

/// ±10 % of jitter on the maximum age, so connections opened together do not all reconnect
/// together (gRFC A9). The randomness need not be good: the clock's low bits will do.
fn jitter(age: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let permille = 900 + u64::from(nanos % 201); // 900..=1100
    age * u32::try_from(permille).unwrap_or(1000) / 1000
}
