//! One module per command.

pub mod analyze;
pub mod apply;
pub mod bug_report;
pub mod cert;
pub mod check;
pub mod dashboard;
pub mod delete;
pub mod demo;
pub mod demo_app;
pub mod describe;
pub mod get;
pub mod install;
pub mod kube;
pub mod logs;
pub mod manifest;
pub mod proxy;
pub mod proxy_config;
pub mod proxy_status;
pub mod proxy_token;
pub mod rollout;
pub mod route;
pub mod secret;
pub mod top;
pub mod version;
