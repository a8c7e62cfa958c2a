//! Benchmark, not a test (ignored by `cargo test`): N concurrent web chat
//! sessions on loopback against the real `madoguchi serve`, run as a child
//! process (so its memory is its own), each opening, getting its
//! greeting, then pressing a button and typing a message. Prints the
//! p50/p99 from a message sent to its reply received (measured in the
//! client), the peak RSS of `serve` and, separately, of the clients (this
//! process), and the size of the page's JS+CSS, raw and gzipped.
//!
//! cargo test --release --test web_load -- --ignored --nocapture
//! (WEB_LOAD_SESSIONS=1000 by default)

mod support;
#[path = "support/web_client.rs"]
mod web_client;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use serde_json::json;
use web_client::open;

/// Peak resident set size of a process (`self` or a pid), in KiB.
fn peak_rss_kib(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `madoguchi serve` with the web chat on 127.0.0.1 (a port of its
/// choosing), limits raised for `sessions`; returns it and its base URL
/// once it listens. Its log is drained in the background.
fn start_serve(db: &std::path::Path, sessions: usize) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .arg("serve")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MADOGUCHI__STORAGE__DATABASE", db)
        .env("MADOGUCHI__WEB__LISTEN", "127.0.0.1:0")
        .env(
            "MADOGUCHI__WEB__MAX_SOCKETS_PER_IP",
            (sessions * 2).to_string(),
        )
        .env(
            "MADOGUCHI__WEB__MAX_CONNECTS_PER_MINUTE",
            (sessions * 4).to_string(),
        )
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("MADOGUCHI_DISCORD_TOKEN")
        .env_remove("MADOGUCHI_TEAMS_APP_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start madoguchi serve");
    let mut log = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            log.read_line(&mut line).expect("serve's log") > 0,
            "serve ended before it listened"
        );
        if let Some(at) = line.find("web chat: http://") {
            let rest = &line[at + "web chat: ".len()..];
            let end = rest.find("/chat").expect("the chat's address");
            break rest[..end].to_string();
        }
    };
    std::thread::spawn(move || {
        let mut sink = std::io::sink();
        for line in log.lines().map_while(Result::ok) {
            let _ = writeln!(sink, "{line}");
        }
    });
    (child, url)
}

/// Bytes of `body` gzipped (`gzip -9`, as a proxy would serve it).
fn gzipped_len(body: &[u8]) -> Option<usize> {
    let mut gzip = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    gzip.stdin.take()?.write_all(body).ok()?;
    Some(gzip.wait_with_output().ok()?.stdout.len())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn many_concurrent_web_sessions() {
    let sessions: usize = std::env::var("WEB_LOAD_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("dir");
    let (mut serve, url) = start_serve(&dir.path().join("load.db"), sessions);
    let serve_pid = serve.id().to_string();

    let mut page_sizes = Vec::new();
    for asset in ["chat.js", "chat.css"] {
        let body = reqwest::get(format!("{url}/chat/{asset}"))
            .await
            .and_then(|r| r.error_for_status())
            .expect("asset")
            .bytes()
            .await
            .expect("asset body");
        page_sizes.push((asset, body.len(), gzipped_len(&body)));
    }

    let serve_rss_idle = peak_rss_kib(&serve_pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..sessions {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut page = open(&url, None, None).await.expect("open");
            page.hello(0).await;
            page.next_of("reply").await;
            let mut latencies = Vec::new();
            for message in [
                json!({"type": "choice", "id": "start-locked", "key": format!("c{n}")}),
                json!({"type": "text", "text": "６回くらい", "id": format!("t{n}")}),
            ] {
                let sent = Instant::now();
                page.send(message).await;
                page.next_of("reply").await;
                latencies.push(sent.elapsed());
            }
            page.close().await;
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("session"));
    }
    let wall = started.elapsed();
    let serve_rss = peak_rss_kib(&serve_pid);
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "web_load: {sessions} sessions, {} messages in {wall:?}; message→reply p50 {:?}, p99 {:?}, max {:?}",
        all.len(),
        at(0.50),
        at(0.99),
        all.last().copied().unwrap_or_default(),
    );
    println!(
        "web_load: peak RSS of serve {:.1} MiB (idle before the sessions {:.1} MiB); of the clients (this process) {:.1} MiB",
        serve_rss as f64 / 1024.0,
        serve_rss_idle as f64 / 1024.0,
        peak_rss_kib("self") as f64 / 1024.0,
    );
    let raw: usize = page_sizes.iter().map(|(_, raw, _)| raw).sum();
    let gzipped: Option<usize> = page_sizes.iter().map(|(_, _, gz)| *gz).sum();
    let each = page_sizes
        .iter()
        .map(|(name, raw, gz)| {
            format!(
                "{name} {raw} B / {}",
                gz.map_or("?".to_string(), |g| format!("{g} B"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "web_load: page JS+CSS {raw} B raw, {} gzipped ({each})",
        gzipped.map_or("? (gzip not found)".to_string(), |g| format!("{g} B"))
    );

    let stopped = Command::new("kill")
        .args(["-TERM", &serve_pid])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let exit = serve.wait().expect("wait for serve");
    assert!(exit.success(), "serve exited with {exit}");
}
