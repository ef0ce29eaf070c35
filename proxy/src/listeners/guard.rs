//! Limits and timeouts for downstream connections, the same on every listener, so that slow or
//! abusive clients degrade into refused connections and closed sockets, never into a wedged
//! proxy:
//!
//! - a cap on open connections and on requests in flight, per listener (Envoy's listener
//!   connection limit and overload manager). A full listener makes room by closing its oldest
//!   connection that has not yet sent a whole request (a slow-loris client; real clients send
//!   theirs at once), else closes the new connection; a request over the cap gets 503
//!   `envoy overloaded`;
//! - a TLS handshake timeout and a request-header timeout (a request's head must arrive within
//!   it once its first byte has, and a new connection must bring its first request within it);
//! - a stream idle timeout (no byte either way while a request is in flight; Envoy's 5 min) and
//!   a connection idle timeout (no request in flight; Envoy's and Istio's 1 h);
//! - an accept loop that backs off, and logs once per interval, when the process is out of file
//!   descriptors, and a file-descriptor limit raised to the hard limit at start.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::Body;

/// The limits in force for downstream connections (`mesh proxy run` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections per listener; beyond it new connections are closed at accept.
    pub max_connections: usize,
    /// Requests in flight per listener; beyond it requests get 503.
    pub max_requests: usize,
    pub tls_handshake: Duration,
    pub request_headers: Duration,
    pub stream_idle: Duration,
    /// The default connection idle timeout; the mesh config (`ISTIO_META_IDLE_TIMEOUT`)
    /// replaces it unless `idle_from_flag`.
    pub idle: Duration,
    pub idle_from_flag: bool,
}

pub const DEFAULT_TLS_HANDSHAKE: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_HEADERS: Duration = Duration::from_secs(10);
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(300);
pub const DEFAULT_IDLE: Duration = Duration::from_secs(3600);
pub const DEFAULT_MAX_REQUESTS: usize = 4096;
/// File descriptors kept for everything but downstream connections (meshd, the admin API,
/// logs, JWKS fetches...).
const RESERVED_FDS: u64 = 64;
/// The admin and metrics listeners serve a few local clients.
pub const SMALL_LISTENER_CONNECTIONS: usize = 64;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: connection_budget(fd_limit()),
            max_requests: DEFAULT_MAX_REQUESTS,
            tls_handshake: DEFAULT_TLS_HANDSHAKE,
            request_headers: DEFAULT_REQUEST_HEADERS,
            stream_idle: DEFAULT_STREAM_IDLE,
            idle: DEFAULT_IDLE,
            idle_from_flag: false,
        }
    }
}

/// Downstream connections one listener may hold with `nofile` descriptors: each may need an
/// upstream connection too, and some descriptors are kept for the rest of the proxy.
pub fn connection_budget(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(RESERVED_FDS) / 2).unwrap_or(usize::MAX).max(16)
}

/// The soft limit on open files.
pub fn fd_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// Raise the soft limit on open files to the hard limit (Envoy and istio-proxy do the same);
/// returns the limit in force.
pub fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, l) {
            debug!(error = %e, "cannot raise the open-files limit");
        }
    }
    fd_limit()
}

/// The proxy's drain (SIGTERM): listeners close their connections as they go idle, and
/// count what is still open across the data-path listeners.
#[derive(Debug)]
pub struct Drain {
    on: tokio::sync::watch::Sender<bool>,
    /// Open downstream connections on data-path listeners (not admin or metrics).
    active: AtomicUsize,
}

impl Default for Drain {
    fn default() -> Self {
        Drain { on: tokio::sync::watch::Sender::new(false), active: AtomicUsize::new(0) }
    }
}

impl Drain {
    pub fn start(&self) {
        self.on.send_replace(true);
    }

    pub fn started(&self) -> bool {
        *self.on.borrow()
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

/// A listener's counters: open connections and requests in flight against its caps.
pub struct Listener {
    pub name: &'static str,
    /// The proxy's drain; None for the admin and metrics listeners, which never drain.
    drain: Option<Arc<Drain>>,
    open: AtomicUsize,
    in_flight: AtomicUsize,
    max_connections: usize,
    pub limits: Limits,
    /// The config in force, for its connection idle timeout.
    snapshot: Arc<arc_swap::ArcSwap<crate::config::Snapshot>>,
    metrics: Arc<crate::telemetry::metrics::Metrics>,
    refusals: LogThrottle,
    /// Connections that have not sent a whole request yet, oldest first: the ones a full
    /// listener closes to make room.
    pending: std::sync::Mutex<std::collections::VecDeque<std::sync::Weak<Slot>>>,
}

/// One connection's standing, for eviction.
pub struct Slot {
    /// Set once the connection sent a whole request (or started relaying TCP): not evictable.
    settled: std::sync::atomic::AtomicBool,
    evict: tokio::sync::Notify,
}

impl Listener {
    pub fn new(
        name: &'static str,
        limits: Limits,
        max_connections: usize,
        snapshot: Arc<arc_swap::ArcSwap<crate::config::Snapshot>>,
        metrics: Arc<crate::telemetry::metrics::Metrics>,
        drain: Option<Arc<Drain>>,
    ) -> Arc<Listener> {
        Arc::new(Listener {
            name,
            drain,
            open: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_connections,
            limits,
            snapshot,
            metrics,
            refusals: LogThrottle::default(),
            pending: Default::default(),
        })
    }

    /// A permit for one more connection, or None when the listener is full and no connection
    /// waiting for its first request could be closed to make room.
    pub fn admit(self: &Arc<Self>) -> Option<ConnPermit> {
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.max_connections && !self.evict_oldest_pending() {
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.metrics.downstream_rejected(self.name, "connection_limit");
            if self.refusals.ready() {
                warn!(
                    listener = self.name,
                    limit = self.max_connections,
                    "connection limit reached; closing new connections (logged once per 10 s)"
                );
            }
            return None;
        }
        if let Some(d) = &self.drain {
            d.active.fetch_add(1, Ordering::Relaxed);
        }
        let slot = Arc::new(Slot { settled: Default::default(), evict: tokio::sync::Notify::new() });
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            // Drop what is gone or settled from the front: the queue holds about the
            // connections of the last header timeout.
            while pending.front().is_some_and(|w| w.upgrade().is_none_or(|s| s.settled.load(Ordering::Relaxed))) {
                pending.pop_front();
            }
            pending.push_back(Arc::downgrade(&slot));
        }
        Some(ConnPermit { listener: self.clone(), _open: self.metrics.connection(self.name), slot })
    }

    /// Close the oldest connection that has not sent a whole request yet; false when there is
    /// none. Its slot is taken over by the caller (the count stays over the cap until that
    /// connection's task ends, a moment later).
    fn evict_oldest_pending(&self) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(w) = pending.pop_front() {
            if let Some(slot) = w.upgrade()
                && !slot.settled.load(Ordering::Relaxed)
            {
                slot.settled.store(true, Ordering::Relaxed);
                slot.evict.notify_one();
                self.metrics.downstream_rejected(self.name, "evicted");
                return true;
            }
        }
        false
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// The connection idle timeout: the flag when given, else the mesh config's, else 1 h.
    fn idle_timeout(&self) -> Duration {
        if self.limits.idle_from_flag {
            return self.limits.idle;
        }
        match self.snapshot.load().raw.listeners.idle_timeout_ms {
            Some(ms) if ms > 0 => Duration::from_millis(ms),
            _ => self.limits.idle,
        }
    }

    pub fn metrics(&self) -> &crate::telemetry::metrics::Metrics {
        &self.metrics
    }
}

/// One open connection on a listener; dropping it frees the slot.
pub struct ConnPermit {
    listener: Arc<Listener>,
    _open: crate::telemetry::metrics::OpenConnection,
    slot: Arc<Slot>,
}

impl ConnPermit {
    pub fn listener(&self) -> &Arc<Listener> {
        &self.listener
    }

    /// The connection sent a whole request (or is relaying TCP): it is no longer a candidate
    /// for eviction.
    pub fn settle(&self) {
        self.slot.settled.store(true, Ordering::Relaxed);
    }

    /// `f`, unless a full listener evicts this connection first (then None).
    pub async fn unless_evicted<T>(&self, f: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            t = f => Some(t),
            () = self.slot.evict.notified() => None,
        }
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.listener.open.fetch_sub(1, Ordering::Relaxed);
        if let Some(d) = &self.listener.drain {
            d.active.fetch_sub(1, Ordering::Relaxed);
        }
        crate::memory::note_activity();
    }
}

/// At most one log line per interval for a repeated event.
#[derive(Default)]
pub struct LogThrottle {
    last_ms: AtomicU64,
}

impl LogThrottle {
    const INTERVAL_MS: u64 = 10_000;

    /// True when the caller should log now.
    pub fn ready(&self) -> bool {
        let now = now_ms() + Self::INTERVAL_MS; // never 0, so the first call logs
        let last = self.last_ms.load(Ordering::Relaxed);
        (last == 0 || now >= last + Self::INTERVAL_MS)
            && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// The next connection, admitted under the listener's cap. Accept errors (out of file
/// descriptors, ...) back off from 10 ms up to 1 s, logged once per 10 s, so a listener never
/// spins; connections over the cap are closed at once.
pub async fn accept(listener: &TcpListener, state: &Arc<Listener>) -> (TcpStream, SocketAddr, ConnPermit) {
    let mut backoff = Duration::from_millis(10);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                match state.admit() {
                    Some(permit) => return (stream, peer, permit),
                    None => drop(stream),
                }
            }
            Err(e) => {
                state.metrics.downstream_rejected(state.name, "accept_error");
                if state.refusals.ready() {
                    warn!(listener = state.name, error = %e, retry_in = ?backoff, "accept failed (logged once per 10 s)");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Milliseconds on a monotonic clock shared by the whole process.
fn now_ms() -> u64 {
    static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(std::time::Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a connection has been doing, for its watchdog.
struct Activity {
    accepted_ms: u64,
    /// The last byte read or written.
    last_io_ms: AtomicU64,
    /// When bytes of a request head began to arrive with no request in flight (+1; 0: none).
    head_since_ms: AtomicU64,
    in_flight: AtomicU32,
    requests: AtomicU64,
    /// 0 unknown, 1 HTTP/1, 2 HTTP/2 (from the first bytes).
    protocol: AtomicU8,
}

impl Activity {
    fn new() -> Activity {
        let now = now_ms();
        Activity {
            accepted_ms: now,
            last_io_ms: AtomicU64::new(now),
            head_since_ms: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            protocol: AtomicU8::new(0),
        }
    }
}

/// What the watchdog does next.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing is due before this time (ms).
    Wait(u64),
    /// Idle for the idle timeout: close gracefully (HTTP/2 GOAWAY).
    Idle,
    /// A timeout that a client caused: drop the connection now.
    Kill(&'static str),
}

fn verdict(a: &Activity, limits: &Limits, idle: Duration, now: u64) -> Verdict {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let last_io = a.last_io_ms.load(Ordering::Relaxed);
    if a.in_flight.load(Ordering::Relaxed) > 0 {
        let due = last_io.saturating_add(ms(limits.stream_idle));
        return if now >= due { Verdict::Kill("stream_idle_timeout") } else { Verdict::Wait(due) };
    }
    let mut next = u64::MAX;
    let head = a.head_since_ms.load(Ordering::Relaxed);
    let header_deadlines = [
        (a.requests.load(Ordering::Relaxed) == 0).then(|| a.accepted_ms.saturating_add(ms(limits.request_headers))),
        (head != 0).then(|| (head - 1).saturating_add(ms(limits.request_headers))),
    ];
    for due in header_deadlines.into_iter().flatten() {
        if now >= due {
            return Verdict::Kill("request_headers_timeout");
        }
        next = next.min(due);
    }
    let due = last_io.saturating_add(ms(idle));
    if now >= due {
        return Verdict::Idle;
    }
    Verdict::Wait(next.min(due))
}

/// A downstream stream that records its activity for the watchdog.
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    /// The first bytes, until HTTP/1 or HTTP/2 is known.
    first: [u8; 3],
    seen: u8,
}

impl<S> Tracked<S> {
    fn note_read(&mut self, bytes: &[u8]) {
        let now = now_ms();
        let a = &self.activity;
        a.last_io_ms.store(now, Ordering::Relaxed);
        if usize::from(self.seen) < self.first.len() {
            for &b in bytes.iter().take(self.first.len() - usize::from(self.seen)) {
                self.first[usize::from(self.seen)] = b;
                self.seen += 1;
            }
            if usize::from(self.seen) == self.first.len() {
                a.protocol.store(if &self.first == b"PRI" { 2 } else { 1 }, Ordering::Relaxed);
            }
        }
        // An HTTP/1 request head has begun: it must be complete within the header timeout.
        // (HTTP/2 sends frames between requests; its first request is timed from accept.)
        if a.protocol.load(Ordering::Relaxed) != 2
            && a.in_flight.load(Ordering::Relaxed) == 0
            && a.head_since_ms.load(Ordering::Relaxed) == 0
        {
            a.head_since_ms.store(now + 1, Ordering::Relaxed);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r
            && buf.filled().len() > before
        {
            let this = &mut *self;
            let filled = &buf.filled()[before..];
            this.note_read(filled);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            self.activity.last_io_ms.store(now_ms(), Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r
            && n > 0
        {
            self.activity.last_io_ms.store(now_ms(), Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request in flight: counted on its listener and its connection until the response body
/// is done (or dropped).
pub struct InFlight {
    listener: Arc<Listener>,
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.listener.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.activity.last_io_ms.store(now_ms(), Ordering::Relaxed);
        crate::memory::note_activity();
    }
}

/// A response body that keeps its request counted as in flight until it ends.
pub struct Counted<B> {
    inner: B,
    _in_flight: Option<InFlight>,
}

impl<B: HttpBody + Unpin> HttpBody for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The 503 for a request over the listener's cap (Envoy's overload manager answer).
fn overloaded() -> Response<Body> {
    let mut r = crate::http::local_reply(StatusCode::SERVICE_UNAVAILABLE, "envoy overloaded");
    r.headers_mut().insert("x-envoy-overloaded", http::HeaderValue::from_static("true"));
    r
}

/// Serve HTTP (HTTP/1.1 or h2c, upgrades passed through) on one accepted connection with the
/// listener's caps and timeouts. `handler` answers each request.
pub async fn serve_http<S, F, Fut>(io: S, permit: &ConnPermit, peer: SocketAddr, handler: F)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = permit.listener().clone();
    let activity = Arc::new(Activity::new());
    let io = Tracked { inner: io, activity: activity.clone(), first: [0; 3], seen: 0 };
    let svc = {
        let (listener, activity, slot) = (listener.clone(), activity.clone(), permit.slot.clone());
        let handler = Arc::new(handler);
        service_fn(move |req: Request<Incoming>| {
            slot.settled.store(true, Ordering::Relaxed);
            activity.head_since_ms.store(0, Ordering::Relaxed);
            activity.requests.fetch_add(1, Ordering::Relaxed);
            activity.in_flight.fetch_add(1, Ordering::Relaxed);
            let over = listener.in_flight.fetch_add(1, Ordering::Relaxed) >= listener.limits.max_requests;
            let in_flight = InFlight { listener: listener.clone(), activity: activity.clone() };
            // Boxed where it is made: a request's future is several KiB, and hyper moves the
            // future it is given; this way it is copied once, not at every move.
            let fut = (!over).then(|| Box::pin(handler(req)));
            let listener = listener.clone();
            async move {
                let resp = match fut {
                    Some(f) => f.await,
                    None => {
                        listener.metrics.downstream_rejected(listener.name, "request_limit");
                        overloaded()
                    }
                };
                Ok::<_, Infallible>(resp.map(|b| Counted { inner: b, _in_flight: Some(in_flight) }))
            }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Draining: a connection that comes now gets one request (HTTP/1.1 `Connection: close`);
    // one open before closes once its requests in flight are answered.
    let mut drain = listener.drain.as_ref().map(|d| d.on.subscribe());
    if drain.as_mut().is_some_and(|d| *d.borrow_and_update()) {
        builder.http1().keep_alive(false);
    }
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let limits = listener.limits;
    let sleep = tokio::time::sleep(limits.request_headers.min(limits.stream_idle).min(listener.idle_timeout()));
    tokio::pin!(sleep);
    let mut closing = false;
    loop {
        tokio::select! {
            Ok(()) = async { match drain.as_mut() { Some(d) => d.changed().await, None => std::future::pending().await } }, if !closing => {
                if drain.as_mut().is_some_and(|d| *d.borrow_and_update()) {
                    debug!(listener = listener.name, %peer, "draining: closing the connection once its requests are answered");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            r = conn.as_mut() => {
                if let Err(e) = r {
                    debug!(listener = listener.name, %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = permit.slot.evict.notified() => {
                debug!(listener = listener.name, %peer, "listener full: closing this connection, which has sent no request");
                return;
            }
            () = &mut sleep => {
                match verdict(&activity, &limits, listener.idle_timeout(), now_ms()) {
                    Verdict::Wait(due) => {
                        let wait = Duration::from_millis(due.saturating_sub(now_ms()).max(1));
                        sleep.as_mut().reset(tokio::time::Instant::now() + wait);
                    }
                    Verdict::Idle if !closing => {
                        debug!(listener = listener.name, %peer, "idle timeout; closing the connection");
                        listener.metrics.downstream_rejected(listener.name, "idle_timeout");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        sleep.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                    }
                    Verdict::Idle => return,
                    Verdict::Kill(why) => {
                        debug!(listener = listener.name, %peer, why, "closing the connection");
                        listener.metrics.downstream_rejected(listener.name, why);
                        return;
                    }
                }
            }
        }
    }
}

/// Copy bytes both ways until both sides close, or until nothing moved for the idle timeout
/// (Envoy's TCP proxy `idle_timeout`): `idle` when given (a DestinationRule's `tcp.idleTimeout`;
/// zero: never), else the listener's (1 h by default). Returns (bytes from downstream, bytes to it).
pub async fn relay<D, U>(
    downstream: &mut D,
    upstream: &mut U,
    permit: &ConnPermit,
    idle: Option<Duration>,
) -> io::Result<(u64, u64)>
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let listener = permit.listener();
    permit.settle();
    let activity = Arc::new(Activity::new());
    // A relayed connection has no requests: mark one so the header rules never apply.
    activity.requests.store(1, Ordering::Relaxed);
    activity.protocol.store(2, Ordering::Relaxed);
    let mut tracked = Tracked { inner: downstream, activity: activity.clone(), first: [0; 3], seen: 3 };
    let copy = tokio::io::copy_bidirectional(&mut tracked, upstream);
    tokio::pin!(copy);
    let idle = match idle {
        Some(d) if d.is_zero() => return copy.await,
        Some(d) => d,
        None => listener.idle_timeout(),
    };
    let sleep = tokio::time::sleep(idle);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            r = copy.as_mut() => return r,
            () = &mut sleep => {
                let due = activity.last_io_ms.load(Ordering::Relaxed).saturating_add(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX));
                let now = now_ms();
                if now >= due {
                    debug!(listener = listener.name, "TCP idle timeout; closing the connection");
                    listener.metrics.downstream_rejected(listener.name, "idle_timeout");
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout"));
                }
                sleep.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(due - now));
            }
        }
    }
}

/// `f` within the TLS handshake timeout; None (logged and counted) when it took longer.
pub async fn handshake<T>(listener: &Listener, f: impl Future<Output = T>) -> Option<T> {
    match tokio::time::timeout(listener.limits.tls_handshake, f).await {
        Ok(t) => Some(t),
        Err(_) => {
            listener.metrics.downstream_rejected(listener.name, "tls_handshake_timeout");
            None
        }
    }
}

#[cfg(test)]
mod tests;
