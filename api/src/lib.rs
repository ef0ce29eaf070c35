//! Types shared by meshd, the proxy and the CLI: Istio-compatible resources and their
//! validation, the proxy-config model, and the discovery protocol. No IO lives here.

pub mod cert;
pub mod control;
pub mod core;
pub mod corpus;
pub mod credential;
pub mod duration;
pub mod exposition;
pub mod gateway_api;
pub mod home;
pub mod host;
pub mod identity;
pub mod meta;
pub mod networking;
pub mod protocol;
pub mod proxy_config;
pub mod resource;
pub mod rollout;
#[cfg(feature = "schema")]
pub mod schema;
pub mod security;
pub mod support;
pub mod telemetry;
pub mod term;
pub mod validate;

pub use resource::{Key, Kind, Object, Parsed, Resource, ResourceError};
pub use validate::FieldError;

/// The version every component reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
