//! The listener: accepts TCP connections and serves HTTP/1.1 and HTTP/2 on
//! them with hyper, under limits that hold against careless and hostile
//! clients (poem's own server loop has neither a header-read timeout nor a
//! connection cap, and spins when `accept` fails):
//!
//! - at most `max_connections` open connections; past it the loop stops
//!   accepting (the kernel's backlog holds the rest) instead of failing them;
//! - `accept` errors such as "too many open files" are logged and backed off;
//! - an HTTP/1.1 request's head must arrive within [`HEADER_READ_TIMEOUT`] of
//!   its first byte;
//! - a connection with no request in flight (a request is in flight until
//!   its response body is sent) and no traffic for [`IDLE_TIMEOUT`] is closed;
//! - HTTP/2 allows [`H2_MAX_STREAMS`] concurrent streams per connection;
//! - on draining, no connection is accepted, each connection finishes the
//!   requests it has, and [`serve`] returns when all are closed or the grace
//!   period is over.
//!
//! Nagle's algorithm is off on every connection: otherwise a small write that
//! follows another (an SSE event, a WebSocket frame) waits 40 ms for the
//! client's delayed ACK (docs/performance.md).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, IntoResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::shutdown::Draining;

/// An HTTP/1.1 request head must be complete this long after its first byte.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with nothing in flight and no traffic this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent streams per HTTP/2 connection.
pub const H2_MAX_STREAMS: u32 = 100;
/// How long `accept` waits after failing for lack of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    #[must_use]
    pub fn new(max_connections: usize) -> Self {
        Self { max_connections, header_read_timeout: HEADER_READ_TIMEOUT, idle_timeout: IDLE_TIMEOUT }
    }
}

/// Serves `endpoint` on `listener` until `draining` starts, then lets open
/// connections finish for up to `grace`.
///
/// # Errors
/// Never at present: accept failures are logged and retried.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: Arc<E>,
    limits: Limits,
    mut draining: Draining,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let local = listener.local_addr().map(|addr| LocalAddr(Addr::SocketAddr(addr)))?;
    let mut at_capacity = false;
    loop {
        let permit = tokio::select! {
            () = draining.started() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        if at_capacity && slots.available_permits() > 0 {
            at_capacity = false;
        }
        let accepted = tokio::select! {
            () = draining.started() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    endpoint: Arc::clone(&endpoint),
                    local: local.clone(),
                    remote: RemoteAddr(Addr::SocketAddr(remote)),
                    limits,
                    draining: draining.clone(),
                };
                tokio::spawn(connection.serve(stream, permit));
                if slots.available_permits() == 0 && !at_capacity {
                    at_capacity = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached; accepting paused"
                    );
                }
            }
            Err(error) if is_resource_exhaustion(&error) => {
                tracing::warn!(%error, backoff_ms = ACCEPT_BACKOFF.as_millis(), "accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            Err(error) => tracing::debug!(%error, "accept failed"),
        }
    }
    drop(listener);
    tracing::info!(grace_seconds = grace.as_secs(), "draining: no new connections");
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!(open = limits.max_connections - slots.available_permits(), "grace period over; closing");
    }
    Ok(())
}

/// Out of descriptors or memory: waiting helps, retrying at once spins.
fn is_resource_exhaustion(error: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux and the BSDs alike enough.
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12 | 55))
}

struct Connection<E> {
    endpoint: Arc<E>,
    local: LocalAddr,
    remote: RemoteAddr,
    limits: Limits,
    draining: Draining,
}

impl<E: Endpoint + 'static> Connection<E> {
    async fn serve(mut self, stream: TcpStream, permit: OwnedSemaphorePermit) {
        let activity = Arc::new(Activity::new());
        let io = Watched { inner: Some(stream), activity: Arc::clone(&activity), _permit: permit };
        let service = {
            let (endpoint, local, remote, activity) =
                (Arc::clone(&self.endpoint), self.local.clone(), self.remote.clone(), Arc::clone(&activity));
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (endpoint, local, remote) = (Arc::clone(&endpoint), local.clone(), remote.clone());
                let in_flight = InFlight::start(Arc::clone(&activity));
                async move {
                    let request = poem::Request::from((request, local, remote, Scheme::HTTP));
                    let response = match endpoint.call(request).await {
                        Ok(response) => response.into_response(),
                        Err(error) => error.into_response(),
                    };
                    // The request stays in flight until its body is sent: an SSE
                    // reply waiting on a slow model is not an idle connection.
                    let response = hyper::Response::<BoxBody<Bytes, io::Error>>::from(response)
                        .map(|body| Sending { body, _in_flight: in_flight });
                    Ok::<_, Infallible>(response)
                }
            })
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).keep_alive(true);
        builder.http2().timer(TokioTimer::new()).max_concurrent_streams(H2_MAX_STREAMS);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        let watchdog = activity.watch(self.limits);
        tokio::pin!(watchdog);
        tokio::select! {
            _ = connection.as_mut() => return,
            () = &mut watchdog => return,
            () = self.draining.started() => {}
        }
        connection.as_mut().graceful_shutdown();
        tokio::select! {
            _ = connection.as_mut() => {}
            () = watchdog => {}
        }
    }
}

/// What the watchdog knows of a connection: when it last moved bytes, how
/// many requests are in flight, and when the head now arriving began.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last read or write.
    last: AtomicU64,
    /// Milliseconds since `epoch`, plus one, of the first byte of a request
    /// head not yet complete; 0 when none is arriving.
    head_since: AtomicU64,
    in_flight: AtomicUsize,
    /// HTTP/2 frames its own requests; the head clock is for HTTP/1.1.
    http2: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            http2: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn read(&self, bytes: &[u8]) {
        let now = self.now();
        self.last.store(now, Ordering::Relaxed);
        if self.notes_http2_preface(bytes) {
            return;
        }
        if self.in_flight.load(Ordering::Acquire) == 0 && !self.http2.load(Ordering::Relaxed) {
            let _ = self.head_since.compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// Notes the HTTP/2 preface on the connection's first bytes.
    fn notes_http2_preface(&self, bytes: &[u8]) -> bool {
        if bytes.starts_with(b"PRI * HTTP/2.0") {
            self.http2.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn wrote(&self) {
        self.last.store(self.now(), Ordering::Relaxed);
    }

    /// Resolves when the connection should be closed: a head that took too
    /// long, or nothing in flight and no traffic for the idle timeout.
    async fn watch(&self, limits: Limits) {
        let tick = Duration::from_millis(250).min(limits.header_read_timeout);
        let head_limit = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX);
        let idle_limit = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        loop {
            tokio::time::sleep(tick).await;
            let now = self.now();
            let head_since = self.head_since.load(Ordering::Acquire);
            if head_since != 0 && now.saturating_sub(head_since - 1) > head_limit {
                tracing::debug!("closing a connection whose request head did not arrive in time");
                return;
            }
            let idle = self.in_flight.load(Ordering::Acquire) == 0 && head_since == 0;
            if idle && now.saturating_sub(self.last.load(Ordering::Relaxed)) > idle_limit {
                tracing::debug!("closing an idle connection");
                return;
            }
        }
    }
}

/// A request being handled: its head is complete, and the connection is busy.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(0, Ordering::Release);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.wrote();
    }
}

/// A response body that keeps its request [`InFlight`] until it is sent or dropped.
struct Sending {
    body: BoxBody<Bytes, io::Error>,
    _in_flight: InFlight,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's stream that reports its traffic and holds its slot under
/// the connection cap until it is dropped (after an upgrade, too). Dropped,
/// it lingers (see [`linger`]).
struct Watched {
    inner: Option<TcpStream>,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl Watched {
    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.inner.as_mut().map(Pin::new).ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

/// How long, and how many bytes at most, a closed connection's stream is
/// still read (and dropped) after the server has sent its last byte.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// At most this many closed connections linger at once; past it a stream is
/// closed at once, as before.
static LINGERING: Semaphore = Semaphore::const_new(256);

/// A close with unread bytes in the socket makes the kernel send a reset,
/// and a reset can reach the client before it has read the answer: of 20
/// concurrent 100 MiB chunked uploads answered 413 (the body limit stops
/// reading at 64 KiB), 3 saw "connection reset" instead (`parley-bench --only
/// body-flood`). So the write side is shut (the client sees the end of the
/// answer), and what the client still sends is read into a small buffer
/// and dropped, until it stops, [`LINGER_BYTES`] or [`LINGER_TIME`], as
/// HTTP/1.1 servers do (RFC 9112, section 9.6).
async fn linger(mut stream: TcpStream, _slot: tokio::sync::SemaphorePermit<'static>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = stream.shutdown().await;
    let mut buffer = [0_u8; 8 * 1024];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    })
    .await;
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let (Some(stream), Ok(runtime)) = (self.inner.take(), tokio::runtime::Handle::try_current())
            && let Ok(slot) = LINGERING.try_acquire()
        {
            runtime.spawn(linger(stream, slot));
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = match self.stream() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(error) => return Poll::Ready(Err(error)),
        };
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read(&buf.filled()[before..]);
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.activity.wrote();
        match self.stream() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.activity.wrote();
        match self.stream() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_flush(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(error) => Poll::Ready(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lack_of_resources_backs_off() {
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(24)));
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(23)));
        assert!(!is_resource_exhaustion(&io::Error::from(io::ErrorKind::ConnectionAborted)));
    }

    #[test]
    fn a_head_clock_starts_on_the_first_byte_and_stops_when_the_request_is_handled() {
        let activity = Arc::new(Activity::new());
        activity.read(b"GET / HT");
        assert_ne!(activity.head_since.load(Ordering::Acquire), 0);
        let in_flight = InFlight::start(Arc::clone(&activity));
        assert_eq!(activity.head_since.load(Ordering::Acquire), 0);
        activity.read(b"body bytes");
        assert_eq!(activity.head_since.load(Ordering::Acquire), 0, "a body is not a head");
        drop(in_flight);
        assert_eq!(activity.in_flight.load(Ordering::Acquire), 0);
    }

    /// A listener on a free port with short timeouts, serving `endpoint`.
    async fn serve_briefly<E: Endpoint + 'static>(endpoint: E) -> (String, crate::shutdown::Drain) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let limits = Limits {
            max_connections: 16,
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(300),
        };
        let (drain, draining) = crate::shutdown::Drain::new();
        tokio::spawn(serve(listener, Arc::new(endpoint), limits, draining, Duration::from_secs(1)));
        (address, drain)
    }

    #[tokio::test]
    async fn a_slow_response_body_is_not_cut_as_idle() {
        #[poem::handler]
        fn slow() -> poem::Body {
            let chunks = futures_util::stream::unfold(0, |n| async move {
                if n == 2 {
                    return None;
                }
                if n == 1 {
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                }
                Some((Ok::<_, io::Error>(Bytes::from(format!("part{n};"))), n + 1))
            });
            poem::Body::from_bytes_stream(chunks)
        }
        let (address, _drain) = serve_briefly(poem::get(slow)).await;
        let body = async { reqwest::get(format!("http://{address}/")).await?.text().await };
        assert_eq!(body.await.ok().as_deref(), Some("part0;part1;"), "a gap longer than the idle timeout");
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed() {
        use tokio::io::AsyncReadExt;

        #[poem::handler]
        fn hello() -> &'static str {
            "hello"
        }
        let (address, _drain) = serve_briefly(poem::get(hello)).await;
        let mut stream = TcpStream::connect(&address).await.unwrap_or_else(|e| panic!("{e}"));
        let mut buffer = [0_u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "the server closes a connection that sends nothing: {read:?}");
    }

    #[test]
    fn http2_connections_have_no_head_clock() {
        let activity = Activity::new();
        activity.read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        activity.read(b"\x00\x00\x00\x04");
        assert_eq!(activity.head_since.load(Ordering::Acquire), 0);
    }
}
