use super::*;

fn limits() -> Limits {
    Limits {
        max_connections: 10,
        max_requests: 10,
        tls_handshake: Duration::from_secs(10),
        request_headers: Duration::from_secs(10),
        stream_idle: Duration::from_secs(300),
        idle: Duration::from_secs(3600),
        idle_from_flag: false,
    }
}

fn activity(accepted: u64) -> Activity {
    Activity {
        accepted_ms: accepted,
        last_io_ms: AtomicU64::new(accepted),
        head_since_ms: AtomicU64::new(0),
        in_flight: AtomicU32::new(0),
        requests: AtomicU64::new(0),
        protocol: AtomicU8::new(0),
    }
}

const IDLE: Duration = Duration::from_secs(3600);

#[test]
fn a_new_connection_must_bring_a_request_within_the_header_timeout() {
    let a = activity(1000);
    assert_eq!(verdict(&a, &limits(), IDLE, 5000), Verdict::Wait(11_000));
    assert_eq!(verdict(&a, &limits(), IDLE, 11_000), Verdict::Kill("request_headers_timeout"));
}

#[test]
fn a_started_head_must_finish_and_an_idle_keep_alive_connection_may_wait() {
    let a = activity(0);
    a.requests.store(1, Ordering::Relaxed);
    a.last_io_ms.store(20_000, Ordering::Relaxed);
    // Between requests: only the idle timeout.
    assert_eq!(verdict(&a, &limits(), IDLE, 30_000), Verdict::Wait(3_620_000));
    assert_eq!(verdict(&a, &limits(), IDLE, 3_620_000), Verdict::Idle);
    // One byte of the next request arrived at 25 s: the rest is due by 35 s.
    a.head_since_ms.store(25_001, Ordering::Relaxed);
    assert_eq!(verdict(&a, &limits(), IDLE, 30_000), Verdict::Wait(35_000));
    assert_eq!(verdict(&a, &limits(), IDLE, 35_000), Verdict::Kill("request_headers_timeout"));
}

#[test]
fn a_request_in_flight_is_judged_by_the_stream_idle_timeout() {
    let a = activity(0);
    a.requests.store(1, Ordering::Relaxed);
    a.in_flight.store(1, Ordering::Relaxed);
    a.last_io_ms.store(1_000, Ordering::Relaxed);
    assert_eq!(verdict(&a, &limits(), IDLE, 100_000), Verdict::Wait(301_000));
    assert_eq!(verdict(&a, &limits(), IDLE, 301_000), Verdict::Kill("stream_idle_timeout"));
}

#[test]
fn logs_are_throttled() {
    let t = LogThrottle::default();
    assert!(t.ready(), "the first event logs");
    assert!(!t.ready(), "the next one within the interval does not");
}

#[test]
fn the_connection_budget_leaves_room_for_upstreams() {
    assert_eq!(connection_budget(1024), 480);
    assert_eq!(connection_budget(10), 16);
}
