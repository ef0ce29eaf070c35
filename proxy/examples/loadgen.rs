//! An open-loop HTTP/1.1 load generator for `bench/run.sh`: sends requests at a fixed rate over
//! a fixed number of keep-alive connections and reports latency percentiles. A request that had
//! to wait for its connection is measured from its *scheduled* start (latency correction, as
//! `oha --latency-correction` and wrk2 do); otherwise from when it was sent.
//!
//! cargo run --release --example loadgen -- URL [--host H] [--rate 1000] [--conns 4] [--secs 10]

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.windows(2).find(|w| w[0] == name).and_then(|w| w[1].parse().ok()).unwrap_or(default)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url: http::Uri = args
        .first()
        .ok_or_else(|| anyhow::anyhow!("usage: loadgen URL [--host H] [--rate R] [--conns N] [--secs S]"))?
        .parse()?;
    let host: String = arg(&args, "--host", url.authority().map(|a| a.to_string()).unwrap_or_default());
    let rate: f64 = arg(&args, "--rate", 1000.0);
    let conns: usize = arg(&args, "--conns", 4);
    let secs: f64 = arg(&args, "--secs", 10.0);
    let addr = format!("{}:{}", url.host().unwrap_or("127.0.0.1"), url.port_u16().unwrap_or(80));
    let path = url.path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".into());
    let total = (rate * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (addr, host, path) = (addr.clone(), host.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut lat = Vec::with_capacity(total / conns + 1);
            let mut errors = 0usize;
            let mut free_at = start;
            for i in (c..total).step_by(conns) {
                let scheduled = start + interval * i as u32;
                tokio::time::sleep_until(scheduled.into()).await;
                // The connection was free at the scheduled time: measure from the actual send, so
                // the timer's own lateness (up to 1 ms in tokio) is not counted. It was busy: measure
                // from the scheduled time, so the queueing behind a slow response is counted.
                let begin = if free_at <= scheduled { Instant::now() } else { scheduled };
                send.ready().await?;
                let req =
                    http::Request::get(path.as_str()).header(http::header::HOST, host.as_str()).body(Empty::new())?;
                match send.send_request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        resp.into_body().collect().await?;
                        lat.push(begin.elapsed());
                    }
                    _ => errors += 1,
                }
                free_at = Instant::now();
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let mut all = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await??;
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(f64::NAN)
    };
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "requests {} errors {errors} rate {:.0}/s p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        all.len(),
        all.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
