//! What the proxy reports: Istio's metrics, access logs, trace propagation and export, and
//! its own log.

pub mod access;
pub mod log;
pub mod metrics;
pub mod trace;
