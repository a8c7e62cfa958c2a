//! Benchmark, not a test (ignored by `cargo test`): N concurrent web chat
//! sessions on loopback against the real `serve`, each opening, getting
//! its greeting, then pressing a button and typing a message. Prints the
//! p50/p99 from a message sent to its reply received (measured in the
//! client) and the peak RSS of this process (service and clients together).
//!
//! cargo test --release --test web_load -- --ignored --nocapture
//! (WEB_LOAD_SESSIONS=1000 by default)

mod support;
#[path = "support/web_client.rs"]
mod web_client;

use std::sync::Arc;
use std::time::Instant;

use madoguchi::clock::SystemClock;
use serde_json::json;
use support::service::Service;
use web_client::open;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn many_concurrent_web_sessions() {
    let sessions: usize = std::env::var("WEB_LOAD_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("dir");
    let mut config = support::config();
    config.web.max_sockets_per_ip = sessions * 2;
    config.web.max_connects_per_minute = (sessions * 4) as u32;
    let service = Service::start(
        config,
        &dir.path().join("load.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let rss_before = peak_rss_kib();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..sessions {
        let url = service.url.clone();
        tasks.push(tokio::spawn(async move {
            let mut page = open(&url, None, None).await.expect("open");
            page.hello(0).await;
            page.next_of("reply").await;
            let mut latencies = Vec::new();
            for (i, message) in [
                json!({"type": "choice", "id": "start-locked", "key": format!("c{n}")}),
                json!({"type": "text", "text": "６回くらい", "id": format!("t{n}")}),
            ]
            .into_iter()
            .enumerate()
            {
                let sent = Instant::now();
                page.send(message).await;
                page.next_of("reply").await;
                latencies.push((i, sent.elapsed()));
            }
            page.close().await;
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("session").into_iter().map(|(_, d)| d));
    }
    let wall = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "web_load: {sessions} sessions, {} messages in {wall:?}; message→reply p50 {:?}, p99 {:?}, max {:?}; peak RSS {} MiB (before the sessions {} MiB; service and clients in one process)",
        all.len(),
        at(0.50),
        at(0.99),
        all.last().copied().unwrap_or_default(),
        peak_rss_kib() / 1024,
        rss_before / 1024,
    );
    service.stop().await;
}
