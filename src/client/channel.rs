//! A channel: one HTTP/2 connection to a server, shared by every call made through it.
//!
//! HTTP/2 multiplexes: each call is its own stream, and many streams share one TCP
//! connection. A [`Channel`] owns the sending half of an h2 client connection
//! (`SendRequest`, cheap to clone) and a background task that drives the connection (reads
//! frames, writes queued ones, answers PINGs). Cloning a channel clones the handle, not the
//! connection, so many tasks can call concurrently over one socket, as gRPC clients do.

use std::sync::Arc;

use bytes::Bytes;
use http::uri::Authority;
use tokio::net::TcpStream;
use tracing::debug;

use crate::tls::ClientTls;
use crate::tracer::{Side, TracedIo, WireTrace};
use crate::wire::frame::DEFAULT_MAX_MESSAGE_LEN;
use crate::wire::status::Status;

/// Limits a channel enforces on its calls.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// Largest response message accepted: 4 MiB, like other gRPC clients.
    pub max_receive_message_len: usize,
    /// Largest request message sent.
    pub max_send_message_len: usize,
    /// HTTP/2 stream window: 1 MiB, so large responses are not throttled.
    pub initial_stream_window: u32,
    /// HTTP/2 connection window.
    pub initial_connection_window: u32,
    /// Largest response header block accepted. gRPC suggests 8 KiB; 16 KiB as on the server.
    pub max_header_list_size: u32,
    /// TLS (`https`), or `None` for plaintext HTTP/2 with prior knowledge (`http`).
    pub tls: Option<ClientTls>,
    /// Print every HTTP/2 frame of the connection ([`crate::tracer`]); off by default.
    pub wire_trace: Option<WireTrace>,
    /// The `:authority` of every request, instead of the `host:port` connected to (as
    /// grpc-go's `WithAuthority`): for a server behind a proxy or tunnel that routes by name.
    pub authority: Option<String>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_receive_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_send_message_len: i32::MAX as usize,
            initial_stream_window: 1024 * 1024,
            initial_connection_window: 1024 * 1024,
            max_header_list_size: 16 * 1024,
            tls: None,
            wire_trace: None,
            authority: None,
        }
    }
}

/// A connection to one gRPC server. Clone it freely: clones share the connection.
#[derive(Clone)]
pub struct Channel {
    pub(crate) send: h2::client::SendRequest<Bytes>,
    pub(crate) authority: Authority,
    pub(crate) scheme: &'static str,
    pub(crate) config: Arc<ChannelConfig>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("authority", &self.authority)
            .finish()
    }
}

impl Channel {
    /// Connects to `addr` (`host:port`, optionally prefixed with `http://`) over plaintext
    /// HTTP/2 ("h2c", prior knowledge: gRPC needs no HTTP/1.1 upgrade).
    pub async fn connect(addr: &str) -> Result<Channel, Status> {
        Channel::connect_with(addr, ChannelConfig::default()).await
    }

    /// Connects with explicit limits (and TLS, if `config.tls` is set).
    pub async fn connect_with(addr: &str, config: ChannelConfig) -> Result<Channel, Status> {
        let hostport = addr
            .strip_prefix("http://")
            .or_else(|| addr.strip_prefix("https://"))
            .unwrap_or(addr);
        let authority: Authority = config
            .authority
            .as_deref()
            .unwrap_or(hostport)
            .parse()
            .map_err(|_| Status::invalid_argument(format!("invalid authority for {addr:?}")))?;
        let socket = TcpStream::connect(hostport)
            .await
            .map_err(|e| Status::unavailable(format!("cannot connect to {hostport}: {e}")))?;
        let _ = socket.set_nodelay(true);
        let tracer = config
            .wire_trace
            .as_ref()
            .map(|t| t.connection(Side::Client, hostport));
        let send = match (&config.tls, tracer) {
            (None, None) => handshake(socket, &config).await?,
            (None, Some(tracer)) => handshake(TracedIo::new(socket, tracer), &config).await?,
            (Some(tls), None) => handshake(tls.connect(socket).await?, &config).await?,
            (Some(tls), Some(tracer)) => {
                let tls = tls.connect(socket).await?;
                handshake(TracedIo::new(tls, tracer), &config).await?
            }
        };
        Ok(Channel {
            send,
            authority,
            scheme: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            config: Arc::new(config),
        })
    }
}

/// The HTTP/2 client handshake over `io`; the connection is driven by a task of its own.
async fn handshake<T>(
    io: T,
    config: &ChannelConfig,
) -> Result<h2::client::SendRequest<Bytes>, Status>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(config.initial_stream_window)
        .initial_connection_window_size(config.initial_connection_window)
        .max_header_list_size(config.max_header_list_size)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Status::unavailable(format!("HTTP/2 handshake failed: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            debug!(error = %e, "client connection closed");
        }
    });
    Ok(send)
}
