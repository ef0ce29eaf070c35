//! The workload's inbound policies, compiled: AuthorizationPolicy, RequestAuthentication
//! (JWT) and LocalRateLimit.

pub mod authz;
pub mod jwt;
pub mod ratelimit;
