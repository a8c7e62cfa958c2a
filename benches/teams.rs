//! Teams endpoint throughput and latency, end to end on loopback: the real
//! `serve` (axum, JWT validation of every request, desk, SQLite with durable
//! commits, outbox, connector client with a cached token) against the fake
//! Bot Framework of the tests. Closed loop: each of C conversations sends an
//! activity and waits until **all its replies have reached the connector**
//! (the bot answers 200 once the input is committed and replies
//! asynchronously, so the POST round trip alone would not be what the person
//! waits for). Each turn alternates "MNP…" (1 reply) and "最初から…" (3
//! replies). Each case runs with an instant connector and with one that
//! answers 100 ms late (a realistic distance to the Teams service), where
//! replies of different conversations must go out concurrently.
//!
//! Run with `cargo bench --bench teams`.

#[path = "../tests/support/fake_botframework.rs"]
mod fake_botframework;
#[path = "../tests/support/wait.rs"]
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_botframework::{FakeBotFramework, APP_ID};
use madoguchi::clock::SystemClock;
use madoguchi::config::Config;
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::desk::Desk;
use serde_json::json;

const RUN: Duration = Duration::from_secs(5);

fn config(fake: &FakeBotFramework) -> Config {
    let mut config = Config::default();
    config.general.flows_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/flows").into();
    config.general.locales_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/locales").into();
    config.teams.app_id = APP_ID.into();
    config.teams.openid_metadata_url = fake.openid_url();
    config.teams.token_url = fake.token_url();
    config
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("madoguchi Teams endpoint benchmark (benches/teams.rs)");
        println!("  closed loop, latency = POST sent -> last reply at the connector; SQLite WAL + synchronous=FULL");
        for delay_ms in [0u64, 100] {
            for concurrency in [1usize, 16] {
                run(concurrency, delay_ms).await;
            }
        }
    });
}

async fn run(concurrency: usize, delay_ms: u64) {
    let fake = FakeBotFramework::start().await;
    fake.set_delay_ms(delay_ms);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(&fake);
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .expect("sqlite"),
    );
    let content = madoguchi::content::load(&config).expect("content");
    let desk = Desk::new(
        content.flow,
        content.catalog,
        store,
        config.engine_settings().expect("settings"),
        "ja".into(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/messages",
        listener.local_addr().expect("addr")
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = tokio::spawn(async move {
        let env = |name: &str| (name == "MADOGUCHI_TEAMS_APP_SECRET").then(|| "s3cret".to_string());
        let shutdown = async {
            let _ = stopped.await;
        };
        madoguchi::serve::run_with_listener(
            config,
            desk,
            Arc::new(SystemClock),
            &env,
            Some(listener),
            shutdown,
        )
        .await
        .expect("serve");
    });
    let http = reqwest::Client::new();
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    let started = Instant::now();
    let mut workers = Vec::new();
    for c in 0..concurrency {
        let fake = fake.clone();
        let http = http.clone();
        let url = url.clone();
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            let conversation = format!("a:bench-{c}");
            let mut latencies = Vec::new();
            let mut expected = 0usize;
            let mut turn = 0u64;
            while started.elapsed() < RUN {
                let (text, replies) = if turn.is_multiple_of(2) {
                    ("MNPで携帯会社を変えました", 1)
                } else {
                    ("最初からやり直したい", 3)
                };
                // The first input opens the conversation: the greeting comes too.
                let replies = if turn == 0 { replies + 2 } else { replies };
                let activity = json!({
                    "type": "message", "id": format!("{c}-{turn}"), "serviceUrl": fake.service_url(), "channelId": "msteams",
                    "from": {"id": format!("29:{c}"), "name": "bench"},
                    "conversation": {"id": conversation, "conversationType": "personal"},
                    "recipient": {"id": format!("28:{APP_ID}")}, "locale": "ja-JP", "text": text,
                });
                let sent = Instant::now();
                let status = http.post(&url).bearer_auth(&token).json(&activity).send().await.expect("post").status();
                assert_eq!(status.as_u16(), 200);
                expected += replies;
                // The fake counts message posts (not typing indicators).
                fake.wait_count(&conversation, expected).await;
                latencies.push(sent.elapsed());
                turn += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = service.await;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "connector +{delay_ms:>3} ms, C={concurrency:>2}: {:.0} inputs/s, latency p50 {:.2} ms, p99 {:.2} ms ({} inputs, token requests: {})",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        latencies.len(),
        fake.token_calls()
    );
}
