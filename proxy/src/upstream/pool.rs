//! Connection pools on hyper's connection-level client: HTTP/1.1 keep-alive connections, or one
//! multiplexed HTTP/2 connection, per upstream address (and per plain/mTLS).
//!
//! hyper-util's pooled `Client` does the same with more per request: a boxed connect future
//! raced against the checkout, a pool key made from the URI (scheme and authority, hashed with
//! SipHash), and a task spawned after every HTTP/1.1 response to wait for the connection to
//! come free. Here the caller names the address to connect to (so the URI's authority can be
//! the request's own, as HTTP/2 apps expect), an HTTP/1.1 connection goes back to the pool as
//! soon as its response head is in, and the next checkout takes a connection whose response has
//! finished (`is_ready`); one still busy stays where it is. A request written to a pooled
//! connection that turned out closed comes back unsent (`try_send_request`) and goes again on
//! a new connection, as hyper-util's client retries it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tracing::debug;

use crate::Body;
use crate::config::Snapshot;
use crate::tls::Identity;
use crate::upstream::connect::{self, Alpn, BoxError, Stream};

/// Idle HTTP/1.1 connections kept per address; more are closed once their response is done.
const MAX_IDLE_PER_ADDRESS: usize = 512;
/// The default time to connect (Envoy's `connect_timeout` default is 10 s; Istio sets 10 s too,
/// hyper-util had none; 5 s keeps a dead endpoint from holding requests long).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may sit idle in the pool.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request got no response.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (connect, mTLS handshake, or identity check failed).
    Connect(BoxError),
    /// The connection failed before the response head came.
    Request(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Request(e) => write!(f, "{e}"),
        }
    }
}

/// How connections are made: plain TCP, or mTLS to other proxies (checking the identity meshd
/// gives the endpoint).
pub enum Dial {
    Plain,
    Mesh {
        identity: Arc<Identity>,
        snapshot: Arc<ArcSwap<Snapshot>>,
    },
    /// TLS origination: every connection is TLS with this config, whatever `tls` says.
    Originate(Arc<crate::tls_config::Origin>),
}

/// What a pool keeps its connections by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    /// HTTP/2 (prior knowledge, or ALPN `h2` over mTLS); else HTTP/1.1.
    pub h2: bool,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// Keep connections for later requests (false: DestinationRule `maxRequestsPerConnection: 1`).
    pub reuse: bool,
}

impl Settings {
    pub fn new(h2: bool) -> Settings {
        Settings { h2, connect_timeout: DEFAULT_CONNECT_TIMEOUT, idle_timeout: DEFAULT_IDLE_TIMEOUT, reuse: true }
    }
}

struct Idle1 {
    sender: http1::SendRequest<Body>,
    since: Instant,
}

/// The connections to one address.
#[derive(Default)]
struct Conns {
    h1: Vec<Idle1>,
    /// The shared HTTP/2 connection and when a request last took it.
    h2: Option<(http2::SendRequest<Body>, Instant)>,
}

/// Connections by address, plain and mTLS apart.
#[derive(Default)]
struct Table {
    plain: HashMap<Box<str>, Conns, foldhash::fast::RandomState>,
    tls: HashMap<Box<str>, Conns, foldhash::fast::RandomState>,
    /// How many times each address's TLS connections were forgotten (its identity changed):
    /// a connection taken out or dialled before then does not come back.
    purges: HashMap<Box<str>, u64, foldhash::fast::RandomState>,
}

impl Table {
    fn side(&mut self, tls: bool) -> &mut HashMap<Box<str>, Conns, foldhash::fast::RandomState> {
        if tls { &mut self.tls } else { &mut self.plain }
    }

    fn purges(&self, address: &str, tls: bool) -> u64 {
        if !tls || self.purges.is_empty() { 0 } else { self.purges.get(address).copied().unwrap_or(0) }
    }
}

struct Inner {
    settings: Settings,
    dial: Dial,
    table: Mutex<Table>,
}

/// A pool of connections to upstreams with one protocol and one set of settings.
#[derive(Clone)]
pub struct Pool(Arc<Inner>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("settings", &self.0.settings).finish()
    }
}

impl Pool {
    /// A pool; a task closes its idle connections after `settings.idle_timeout` (it ends with
    /// the pool). Must be made inside a Tokio runtime.
    pub fn new(settings: Settings, dial: Dial) -> Pool {
        let inner = Arc::new(Inner { settings, dial, table: Mutex::new(Table::default()) });
        let weak = Arc::downgrade(&inner);
        let every = (settings.idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(reap(weak, every));
        Pool(inner)
    }

    pub fn settings(&self) -> Settings {
        self.0.settings
    }

    /// Send `req` (its URI as it should go: absolute for HTTP/2, origin-form for HTTP/1.1) over
    /// a connection to `address` (`IP:port` or `name:port`), mTLS when `tls`.
    pub async fn send(&self, req: Request<Body>, address: &str, tls: bool) -> Result<Response<Incoming>, SendError> {
        if self.0.settings.h2 { self.send_h2(req, address, tls).await } else { self.send_h1(req, address, tls).await }
    }

    /// Upgrades (WebSocket) need the connection to themselves: a new HTTP/1.1 connection, never
    /// pooled, that hyper hands over once the upstream answers 101.
    pub async fn send_upgrade(
        &self,
        req: Request<Body>,
        address: &str,
        tls: bool,
    ) -> Result<Response<Incoming>, SendError> {
        let mut sender = Box::pin(self.connect_h1(address, tls)).await?;
        sender.send_request(req).await.map_err(SendError::Request)
    }

    async fn send_h1(&self, mut req: Request<Body>, address: &str, tls: bool) -> Result<Response<Incoming>, SendError> {
        // One retry: a pooled connection the upstream closed while it sat idle gives the
        // request back unsent.
        for _ in 0..2 {
            let (pooled_sender, purges) = self.checkout_h1(address, tls);
            let (mut sender, pooled) = match pooled_sender {
                Some(s) => (s, true),
                None => (Box::pin(self.connect_h1(address, tls)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    self.checkin_h1(address, tls, sender, purges);
                    return Ok(resp);
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => {
                        debug!(%address, "pooled connection was closed; sending again on a new one");
                        req = unsent;
                    }
                    _ => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut sender = Box::pin(self.connect_h1(address, tls)).await?;
        sender.send_request(req).await.map_err(SendError::Request)
    }

    async fn send_h2(&self, mut req: Request<Body>, address: &str, tls: bool) -> Result<Response<Incoming>, SendError> {
        for _ in 0..2 {
            let (mut sender, pooled) = match self.checkout_h2(address, tls) {
                Some(s) => (s, true),
                None => (Box::pin(self.connect_h2(address, tls)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(mut e) => match e.take_message() {
                    Some(unsent) if pooled => {
                        self.forget_h2(address, tls, &sender);
                        req = unsent;
                    }
                    _ => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut sender = Box::pin(self.connect_h2(address, tls)).await?;
        sender.send_request(req).await.map_err(SendError::Request)
    }

    /// Forget the TLS connections to these addresses.
    pub fn forget_tls(&self, addresses: &[String]) {
        let mut table = self.table();
        for a in addresses {
            table.tls.remove(a.as_str());
            *table.purges.entry(Box::from(a.as_str())).or_default() += 1;
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection whose last response has finished, newest first; closed or expired
    /// ones are dropped on the way.
    /// With the address's purge count as it is now (under the same lock), for the check-in.
    fn checkout_h1(&self, address: &str, tls: bool) -> (Option<http1::SendRequest<Body>>, u64) {
        if !self.0.settings.reuse {
            return (None, 0);
        }
        let idle_timeout = self.0.settings.idle_timeout;
        let mut table = self.table();
        let purges = table.purges(address, tls);
        let Some(conns) = table.side(tls).get_mut(address) else { return (None, purges) };
        let mut i = conns.h1.len();
        while i > 0 {
            i -= 1;
            let c = &conns.h1[i];
            if c.sender.is_closed() || c.since.elapsed() > idle_timeout {
                conns.h1.swap_remove(i);
            } else if c.sender.is_ready() {
                return (Some(conns.h1.swap_remove(i).sender), purges);
            }
        }
        (None, purges)
    }

    /// Back in the pool as soon as the response head is in; it is taken again once ready.
    fn checkin_h1(&self, address: &str, tls: bool, sender: http1::SendRequest<Body>, purges: u64) {
        if !self.0.settings.reuse || sender.is_closed() {
            return;
        }
        let mut table = self.table();
        if table.purges(address, tls) != purges {
            return;
        }
        let side = table.side(tls);
        let conns = match side.get_mut(address) {
            Some(c) => c,
            None => side.entry(Box::from(address)).or_default(),
        };
        if conns.h1.len() < MAX_IDLE_PER_ADDRESS {
            conns.h1.push(Idle1 { sender, since: Instant::now() });
        }
    }

    fn checkout_h2(&self, address: &str, tls: bool) -> Option<http2::SendRequest<Body>> {
        if !self.0.settings.reuse {
            return None;
        }
        let mut table = self.table();
        let conns = table.side(tls).get_mut(address)?;
        match &mut conns.h2 {
            Some((s, used)) if !s.is_closed() => {
                *used = Instant::now();
                Some(s.clone())
            }
            Some(_) => {
                conns.h2 = None;
                None
            }
            None => None,
        }
    }

    fn forget_h2(&self, address: &str, tls: bool, closed: &http2::SendRequest<Body>) {
        let mut table = self.table();
        if let Some(conns) = table.side(tls).get_mut(address)
            && conns.h2.as_ref().is_some_and(|(s, _)| s.is_closed() || closed.is_closed())
        {
            conns.h2 = None;
        }
    }

    async fn dial(&self, address: &str, tls: bool, alpn: Alpn) -> Result<Stream, SendError> {
        if let Some(path) = address.strip_prefix("unix://") {
            // An app on a unix socket: always plain (only app pools are given one).
            let unix = tokio::time::timeout(self.0.settings.connect_timeout, tokio::net::UnixStream::connect(path))
                .await
                .map_err(|_| SendError::Connect(format!("connect to {address} timed out").into()))?
                .map_err(|e| SendError::Connect(format!("connect to {address}: {e}").into()))?;
            return Ok(Stream::Unix(unix));
        }
        let tcp = tokio::time::timeout(self.0.settings.connect_timeout, TcpStream::connect(address))
            .await
            .map_err(|_| SendError::Connect(format!("connect to {address} timed out").into()))?
            .map_err(|e| SendError::Connect(format!("connect to {address}: {e}").into()))?;
        let _ = tcp.set_nodelay(true);
        match (&self.0.dial, tls) {
            (Dial::Originate(o), _) => {
                let config = match alpn {
                    Alpn::H2 => o.h2.clone(),
                    Alpn::Http11 => o.http1.clone(),
                    Alpn::None => o.tcp.clone(),
                };
                connect::originate(config, o.server_name.clone(), tcp).await.map_err(SendError::Connect)
            }
            (_, false) => Ok(Stream::Plain(tcp)),
            (Dial::Mesh { identity, snapshot }, true) => {
                connect::handshake(identity, snapshot, tcp, alpn).await.map_err(SendError::Connect)
            }
            (Dial::Plain, true) => Err(SendError::Connect("this pool does not speak TLS".into())),
        }
    }

    async fn connect_h1(&self, address: &str, tls: bool) -> Result<http1::SendRequest<Body>, SendError> {
        let stream = self.dial(address, tls, Alpn::Http11).await?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(SendError::Request)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "upstream HTTP/1.1 connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn connect_h2(&self, address: &str, tls: bool) -> Result<http2::SendRequest<Body>, SendError> {
        let purges = self.table().purges(address, tls);
        let stream = self.dial(address, tls, Alpn::H2).await?;
        let mut b = http2::Builder::new(TokioExecutor::new());
        b.timer(TokioTimer::new()).adaptive_window(true);
        let (sender, conn) = b.handshake(TokioIo::new(stream)).await.map_err(SendError::Request)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(error = %e, "upstream HTTP/2 connection ended with an error");
            }
        });
        if self.0.settings.reuse {
            let mut table = self.table();
            if table.purges(address, tls) != purges {
                // Dialled before the address's identity changed: used once, never pooled.
                return Ok(sender);
            }
            let side = table.side(tls);
            let conns = match side.get_mut(address) {
                Some(c) => c,
                None => side.entry(Box::from(address)).or_default(),
            };
            // Two requests may have connected at once: the first one in is shared.
            match &conns.h2 {
                Some((existing, _)) if !existing.is_closed() => {}
                _ => conns.h2 = Some((sender.clone(), Instant::now())),
            }
        }
        Ok(sender)
    }
}

/// Close idle connections past the idle timeout, and forget addresses with none left, until
/// the pool is dropped.
async fn reap(pool: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        let idle = inner.settings.idle_timeout;
        let mut table = inner.table.lock().unwrap_or_else(|p| p.into_inner());
        let table = &mut *table;
        for side in [&mut table.plain, &mut table.tls] {
            side.retain(|_, c| {
                c.h1.retain(|i| !i.sender.is_closed() && i.since.elapsed() <= idle);
                // Dropping the pool's handle closes the connection once its last stream ends.
                if c.h2.as_ref().is_some_and(|(s, used)| s.is_closed() || used.elapsed() > idle) {
                    c.h2 = None;
                }
                !c.h1.is_empty() || c.h2.is_some()
            });
        }
    }
}
