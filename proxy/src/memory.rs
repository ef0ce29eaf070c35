//! Giving freed heap back to the system once a burst of traffic is over.
//!
//! glibc's allocator keeps what the proxy frees (connection buffers, TLS state, request heads)
//! in its free lists, so after a load spike the process stays at its peak RSS until the same
//! memory is needed again. When the proxy has been quiet for a whole tick after being busy
//! (no request finished, no connection closed), `malloc_trim(0)` returns the free pages. Under
//! steady traffic it never runs, so it costs the data path one relaxed atomic add per request
//! and per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Requests finished and connections closed, since the process started.
static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// How often the proxy looks for a quiet spell.
pub const TICK: Duration = Duration::from_millis(500);

/// A request finished or a connection closed.
pub fn note_activity() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Trim the heap each time activity stops for a whole `tick` (runs until the process ends).
pub async fn release_when_quiet(tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = ACTIVITY.load(Ordering::Relaxed);
    let mut trimmed_at = last;
    loop {
        interval.tick().await;
        let now = ACTIVITY.load(Ordering::Relaxed);
        if now == last && now != trimmed_at {
            trim();
            trimmed_at = now;
        }
        last = now;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one FFI call: glibc has no safe binding for it
fn trim() {
    // SAFETY: malloc_trim takes no pointers; it locks each of glibc's arenas in turn and only
    // releases pages that are free in them, so it is sound to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
