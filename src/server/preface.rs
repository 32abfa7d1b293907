//! The start of an HTTP/2 connection, checked before h2 takes over.
//!
//! A client opens with the 24-byte preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`, and "the client
//! connection preface … MUST be followed by a SETTINGS frame" (RFC 9113 §3.4). h2 completes
//! its handshake as soon as the preface has arrived, so a peer that sends the preface and then
//! nothing would hold a connection until keepalive notices, hours later. This module reads the
//! preface and the header of the first frame within the handshake timeout, refuses anything
//! but SETTINGS there, and hands h2 a stream that replays those bytes: h2 sees the connection
//! exactly as it arrived.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Preface plus one frame header.
const CHECKED: usize = PREFACE.len() + 9;
/// The SETTINGS frame type.
const SETTINGS: u8 = 0x4;

/// Why a connection did not start like HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefaceError {
    /// The first 24 bytes are not the preface (an HTTP/1.1 request, TLS to a plaintext port…).
    NotHttp2,
    /// The first frame is not SETTINGS.
    FirstFrameNotSettings,
}

/// Checks the first 33 bytes of a connection (sans-IO).
pub fn check(start: &[u8; CHECKED]) -> Result<(), PrefaceError> {
    if &start[..PREFACE.len()] != PREFACE {
        return Err(PrefaceError::NotHttp2);
    }
    if start[PREFACE.len() + 3] != SETTINGS {
        return Err(PrefaceError::FirstFrameNotSettings);
    }
    Ok(())
}

/// Reads and checks the start of `io`; returns `io` with those bytes put back. A connection
/// whose first frame is not SETTINGS is answered, as RFC 9113 §3.4 asks, with a connection
/// error of type PROTOCOL_ERROR: our (empty) SETTINGS, then GOAWAY. One that is not HTTP/2 at
/// all gets nothing: it would not understand.
pub async fn read<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
) -> io::Result<Result<Rewind<T>, PrefaceError>> {
    let mut start = [0u8; CHECKED];
    io.read_exact(&mut start).await?;
    match check(&start) {
        Ok(()) => Ok(Ok(Rewind {
            start,
            replayed: 0,
            inner: io,
        })),
        Err(PrefaceError::FirstFrameNotSettings) => {
            io.write_all(&GOAWAY_PROTOCOL_ERROR).await?;
            io.flush().await?;
            Ok(Err(PrefaceError::FirstFrameNotSettings))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// An empty SETTINGS frame (the server's preface), then GOAWAY with last stream 0 and
/// error code PROTOCOL_ERROR (1).
const GOAWAY_PROTOCOL_ERROR: [u8; 26] = [
    0, 0, 0, SETTINGS, 0, 0, 0, 0, 0, // SETTINGS, length 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, length 8, stream 0
    0, 0, 0, 0, 0, 0, 0, 1, // last stream id 0, PROTOCOL_ERROR
];

/// A stream that first yields the bytes already read from it.
#[derive(Debug)]
pub struct Rewind<T> {
    start: [u8; CHECKED],
    replayed: usize,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.replayed < CHECKED {
            let n = (CHECKED - self.replayed).min(buf.remaining());
            let from = self.replayed;
            buf.put_slice(&self.start[from..from + n]);
            self.replayed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(frame_type: u8) -> [u8; CHECKED] {
        let mut s = [0u8; CHECKED];
        s[..24].copy_from_slice(PREFACE);
        s[27] = frame_type;
        s
    }

    #[test]
    fn accepts_preface_then_settings_only() {
        assert_eq!(check(&start(SETTINGS)), Ok(()));
        assert_eq!(check(&start(0x6)), Err(PrefaceError::FirstFrameNotSettings));
        let mut http1 = [b' '; CHECKED];
        http1[..16].copy_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(check(&http1), Err(PrefaceError::NotHttp2));
    }

    #[tokio::test]
    async fn replays_what_it_read() {
        let mut bytes = start(SETTINGS).to_vec();
        bytes.extend_from_slice(b"rest");
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(&bytes).await.expect("write");
        drop(server);
        let rewound = read(client).await.expect("io").expect("valid");
        let mut all = Vec::new();
        let mut rewound = rewound;
        rewound.read_to_end(&mut all).await.expect("read");
        assert_eq!(all, bytes);
    }
}
