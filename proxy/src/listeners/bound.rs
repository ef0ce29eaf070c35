//! Listeners a Sidecar asks for at addresses of their own (Istio's `bind` and capture mode
//! `NONE`): opened when a config asks for them, closed when none does. An ingress one serves
//! its workload port as the inbound listeners do; an egress one serves the Sidecar's hosts on
//! its port, routing HTTP by Host (the listener's port when the Host carries none) and TCP to
//! the one service its hosts take on that port.
//!
//! A listener is known by its address, port and direction; what it does with a connection
//! is read from the config in force when the connection comes, so a change of protocol or
//! target never closes the socket.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mesh_api::proxy_config::{BoundListener, Direction};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tracing::{debug, info, warn};

use crate::Shared;
use crate::listeners::{Downstream, guard, inbound, tcp};

/// What identifies an opened listener.
type Key = (SocketAddr, Direction);

/// Keep the opened listeners in line with the config, until the proxy stops.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut open: HashMap<Key, AbortHandle> = HashMap::new();
    // A listener that could not be opened is tried again at the next config, not in a loop.
    let mut failed: HashMap<Key, String> = HashMap::new();
    loop {
        let wanted: Vec<(Key, BoundListener)> = {
            let snapshot = shared.snapshot.load();
            snapshot.raw.listeners.bound.iter().filter_map(|b| Some((key(&shared, b)?, b.clone()))).collect()
        };
        open.retain(|k, task| {
            let keep = wanted.iter().any(|(w, _)| w == k);
            if !keep {
                info!(address = %k.0, direction = ?k.1, "Sidecar listener closed: no config asks for it");
                task.abort();
            }
            keep
        });
        failed.retain(|k, _| wanted.iter().any(|(w, _)| w == k));
        for (k, b) in wanted {
            if open.contains_key(&k) {
                continue;
            }
            match TcpListener::bind(k.0).await {
                Ok(l) => {
                    info!(address = %k.0, direction = ?k.1, "Sidecar listener open");
                    failed.remove(&k);
                    let task = tokio::spawn(serve(l, shared.clone(), b));
                    open.insert(k, task.abort_handle());
                }
                Err(e) => {
                    let why = e.to_string();
                    if failed.get(&k) != Some(&why) {
                        warn!(address = %k.0, direction = ?k.1, error = %why, "cannot open the Sidecar listener");
                    }
                    failed.insert(k, why);
                }
            }
        }
        shared.config_changed.notified().await;
    }
}

/// The address a listener binds: its `bind`, else the inbound address (ingress) or loopback
/// (egress). A unix socket bind is not served (logged once per config).
fn key(shared: &Shared, b: &BoundListener) -> Option<Key> {
    let ip = match b.bind.as_deref() {
        Some(bind) => match bind.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                debug!(%bind, port = b.port, "Sidecar listener on a unix socket is not served");
                return None;
            }
        },
        None if b.direction == Direction::Inbound => shared.inbound_bind,
        None => Ipv4Addr::LOCALHOST.into(),
    };
    Some((SocketAddr::new(ip, b.port), b.direction))
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, b: BoundListener) {
    let port = b.port;
    let state = shared.listener(match b.direction {
        Direction::Inbound => "sidecar_inbound",
        Direction::Outbound => "sidecar_outbound",
    });
    loop {
        let (stream, remote, permit) = guard::accept(&listener, &state).await;
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        match b.direction {
            Direction::Inbound => {
                // The app is the Sidecar's `defaultEndpoint` for the port, else the same port
                // on loopback.
                let app = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
                tokio::spawn(inbound::handle_inbound(shared, stream, remote, port, app, None, permit));
            }
            Direction::Outbound => {
                let bind = b.bind.clone();
                tokio::spawn(async move {
                    let (tcp, host) = {
                        let snapshot = shared.snapshot.load();
                        let now = snapshot
                            .raw
                            .listeners
                            .bound
                            .iter()
                            .find(|o| o.direction == Direction::Outbound && o.port == port && o.bind == bind);
                        (now.is_some_and(|o| o.tcp), now.and_then(|o| o.host.clone()))
                    };
                    if tcp {
                        match host {
                            Some(host) => tcp::outbound_tcp(&shared, stream, &host, port, None, &permit).await,
                            None => debug!(port, "Sidecar TCP listener: no service of its hosts on this port; closing"),
                        }
                        return;
                    }
                    let from = Downstream {
                        client: remote,
                        gateway_port: None,
                        original_dst: None,
                        listener_port: Some(port),
                    };
                    guard::serve_http(stream, &permit, remote, move |req| {
                        crate::http::outbound::outbound(shared.clone(), from, req)
                    })
                    .await;
                });
            }
        }
    }
}
