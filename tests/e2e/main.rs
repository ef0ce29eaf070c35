//! End-to-end tests: the real `mesh` binary, its meshd and proxies as processes, traffic over
//! loopback sockets. Each test has its own MESH_HOME and ports picked by the OS.

mod capture;
mod edge;
mod gatewayapi;
mod hardening;
mod harness;
mod kube;
mod protocols;
mod resilience;
mod rollout;
mod security;
mod surface;
mod telemetry;
mod traffic;
mod workflow;
