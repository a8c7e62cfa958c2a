//! A deadline for request heads on the service's HTTP listener: a client
//! must send each request's head (request line and headers) within
//! `web.handshake_timeout_seconds` of connecting, or of the previous
//! response on a kept-alive connection; otherwise the connection is
//! closed. axum's `serve` sets no such deadline (hyper's
//! `header_read_timeout` needs a timer axum does not give it), so without
//! this a client could hold connections open by trickling a head byte by
//! byte (slowloris), and idle kept-alive connections would stay forever.
//!
//! It works on the bytes, below hyper: reads are watched for the blank
//! line that ends a head; a response written re-arms the deadline for
//! the next head. A connection whose response is `101 Switching
//! Protocols` (a WebSocket) is left alone from then on: the socket's own
//! idle timeout (`web.idle_timeout_seconds`) applies to it. A request's
//! body and handler are bounded separately (408 after the same time, see
//! [`super::router`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt, TapIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// The blank line that ends a request head.
const HEAD_END: &[u8] = b"\r\n\r\n";

/// A listener whose connections get the head deadline; the no-op tap
/// makes axum's `ConnectInfo<SocketAddr>` available for it.
pub type TimedListener = TapIo<HeadTimeoutListener, fn(&mut HeadTimeout<TcpStream>)>;

/// `listener` with a head deadline of `timeout` on every connection.
pub fn listener(listener: TcpListener, timeout: Duration) -> TimedListener {
    fn untouched(_: &mut HeadTimeout<TcpStream>) {}
    HeadTimeoutListener {
        inner: listener,
        timeout,
    }
    .tap_io(untouched as fn(&mut HeadTimeout<TcpStream>))
}

/// See [`listener`].
pub struct HeadTimeoutListener {
    inner: TcpListener,
    timeout: Duration,
}

impl Listener for HeadTimeoutListener {
    type Io = HeadTimeout<TcpStream>;
    type Addr = SocketAddr;

    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Addr)> + Send {
        let timeout = self.timeout;
        let accepted = Listener::accept(&mut self.inner);
        async move {
            let (io, address) = accepted.await;
            (HeadTimeout::new(io, timeout), address)
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a head; `matched` bytes of [`HEAD_END`] seen so far.
    Head { matched: usize },
    /// A head arrived; its body and response are someone else's concern.
    Request,
    /// Switched protocols (a WebSocket): never timed out here.
    Upgraded,
}

/// A connection with the head deadline (see the module docs).
pub struct HeadTimeout<T> {
    io: T,
    timeout: Duration,
    phase: Phase,
    deadline: Pin<Box<Sleep>>,
}

impl<T> HeadTimeout<T> {
    pub fn new(io: T, timeout: Duration) -> HeadTimeout<T> {
        HeadTimeout {
            io,
            timeout,
            phase: Phase::Head { matched: 0 },
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// Bytes read: a head ends at its blank line.
    fn saw(&mut self, bytes: &[u8]) {
        let Phase::Head { mut matched } = self.phase else {
            return;
        };
        for &byte in bytes {
            matched = if byte == HEAD_END[matched] {
                matched + 1
            } else if byte == HEAD_END[0] {
                1
            } else {
                0
            };
            if matched == HEAD_END.len() {
                self.phase = Phase::Request;
                return;
            }
        }
        self.phase = Phase::Head { matched };
    }

    /// Bytes of a response written: after a 101 the connection is a
    /// WebSocket; otherwise the next head is due within the timeout.
    fn wrote(&mut self, first: &[u8]) {
        match self.phase {
            Phase::Upgraded => {}
            Phase::Request if first.starts_with(b"HTTP/1.1 101") => {
                self.phase = Phase::Upgraded;
            }
            Phase::Request | Phase::Head { .. } => {
                self.phase = Phase::Head { matched: 0 };
                self.deadline.as_mut().reset(Instant::now() + self.timeout);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeadTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let filled = buf.filled()[before..].to_vec();
                this.saw(&filled);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if matches!(this.phase, Phase::Head { .. })
                    && this.deadline.as_mut().poll(cx).is_ready()
                {
                    tracing::debug!("HTTP: no request head in time; connection closed");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request head in time",
                    )));
                }
                Poll::Pending
            }
            failed => failed,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeadTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                this.wrote(buf);
            }
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            if n > 0 {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
                this.wrote(first);
            }
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn heads_are_found_across_reads_and_a_101_ends_the_watch() {
        let mut conn = HeadTimeout::new((), Duration::from_secs(10));
        conn.saw(b"GET /chat HTTP/1.1\r\nHost: x\r");
        assert_eq!(conn.phase, Phase::Head { matched: 1 });
        conn.saw(b"\n\r");
        assert_eq!(conn.phase, Phase::Head { matched: 3 });
        conn.saw(b"\n");
        assert_eq!(conn.phase, Phase::Request);
        conn.wrote(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(conn.phase, Phase::Head { matched: 0 });
        conn.saw(b"GET /chat/ws HTTP/1.1\r\n\r\n");
        assert_eq!(conn.phase, Phase::Request);
        conn.wrote(b"HTTP/1.1 101 Switching Protocols\r\n");
        assert_eq!(conn.phase, Phase::Upgraded);
        conn.saw(b"\r\n\r\n");
        conn.wrote(b"HTTP/1.1 200 OK");
        assert_eq!(conn.phase, Phase::Upgraded);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_head_times_out_and_a_websocket_does_not() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(1024);
        let (client_read, mut client_write) = tokio::io::split(client);
        let mut server = HeadTimeout::new(server, Duration::from_secs(10));
        client_write
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.expect("first bytes");
        assert!(n > 0);
        // Nothing more within the deadline (paused time jumps to it).
        let error = server.read(&mut buf).await.expect_err("timed out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);

        let (client, server) = tokio::io::duplex(1024);
        let (mut client_read2, mut client_write2) = tokio::io::split(client);
        let mut server = HeadTimeout::new(server, Duration::from_secs(10));
        client_write2
            .write_all(b"GET /chat/ws HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let head = server.read(&mut buf).await.expect("head");
        assert_eq!(head, 25);
        server
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .expect("101");
        let answer = client_read2.read(&mut buf).await.expect("client reads");
        assert!(answer > 0);
        // A silent WebSocket is not closed here, however long it waits.
        let waited = tokio::time::timeout(Duration::from_secs(3600), server.read(&mut buf)).await;
        assert!(waited.is_err(), "still open after an hour: {waited:?}");
        drop(client_read);
    }
}
