//! The process's log: stderr, filtered by `RUST_LOG`, changeable at run time.

/// Log to stderr, honouring `RUST_LOG` (default `info`), in colour only when `color` (see
/// `mesh_api::term::stderr_color`).
pub fn init_tracing(color: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(color);
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = LOG_FILTER.set(handle);
    }
}

type FilterHandle = tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// The log filter in force, changeable at run time through the admin API (`/logging`).
static LOG_FILTER: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

/// Set the log filter (`debug`, `info`, `mesh_proxy=trace,hyper=warn`, ...).
/// The log filter in force (`info`, `debug`, `mesh_proxy=debug,info`...).
pub fn log_level() -> Result<String, String> {
    let handle = LOG_FILTER.get().ok_or("logging was not set up by this process")?;
    handle.with_current(|f| f.to_string()).map_err(|e| e.to_string())
}

pub fn set_log_level(spec: &str) -> Result<(), String> {
    let handle = LOG_FILTER.get().ok_or("logging was not set up by this process")?;
    let filter =
        tracing_subscriber::EnvFilter::try_new(spec).map_err(|e| format!("invalid log level {spec:?}: {e}"))?;
    handle.reload(filter).map_err(|e| e.to_string())
}
