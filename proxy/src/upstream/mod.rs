//! Where requests and connections go: clusters and their endpoints, the pooled clients,
//! connecting to peers (mTLS) and to TCP upstreams.

pub mod client;
pub mod cluster;
pub mod connect;
pub mod pool;
pub mod tcp;
