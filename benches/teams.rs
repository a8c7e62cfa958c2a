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
//! replies of different conversations must go out concurrently. Those rows
//! pace posts to Teams' per-thread limits, so they show the pacing as much
//! as the bot.
//!
//! Then the same loop in emulator mode with typing indicators off (no JWT,
//! no pacing: the desk, the SQLite group commit and the outbox are what is
//! measured) at C = 1, 16, 100, with the context switches and CPU time of
//! the whole process (client and fake included) per input. Last, the cost
//! of checking a bearer token: the same token again (the verdict cache)
//! and a new token each time (the RSA signature).
//!
//! Run with `cargo bench --bench teams`.

#[path = "../tests/support/fake_botframework.rs"]
mod fake_botframework;
#[path = "../tests/support/wait.rs"]
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_botframework::{FakeBotFramework, APP_ID, ISSUER};
use madoguchi::channels::teams::auth::{AuthSettings, Authenticator};
use madoguchi::clock::SystemClock;
use madoguchi::config::Config;
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::desk::Desk;
use serde_json::json;

const RUN: Duration = Duration::from_secs(5);

/// How the endpoint is run.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// As with Teams: every request's JWT checked, posts paced.
    Checked,
    /// `teams.emulator` with typing indicators off.
    Emulator,
}

fn config(fake: &FakeBotFramework, mode: Mode) -> Config {
    let mut config = Config::default();
    config.general.flows_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/flows").into();
    config.general.locales_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/locales").into();
    config.teams.app_id = APP_ID.into();
    config.teams.openid_metadata_url = fake.openid_url();
    config.teams.token_url = fake.token_url();
    if mode == Mode::Emulator {
        config.teams.emulator = true;
        config.teams.typing_indicators = false;
    }
    config
}

/// Context switches of every live thread of this process.
fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// CPU time of this process so far (user + system, every thread).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // Linux reports clock ticks of 1/100 s.
    Duration::from_millis(ticks * 10)
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
        println!("JWT checked on every request, posts paced to Teams' per-thread limits:");
        for delay_ms in [0u64, 100] {
            for concurrency in [1usize, 16] {
                run(Mode::Checked, concurrency, delay_ms).await;
            }
        }
        println!("emulator mode, typing indicators off (no JWT, no pacing):");
        for concurrency in [1usize, 16, 100] {
            run(Mode::Emulator, concurrency, 0).await;
        }
        jwt().await;
    });
}

async fn run(mode: Mode, concurrency: usize, delay_ms: u64) {
    let fake = FakeBotFramework::start().await;
    fake.set_delay_ms(delay_ms);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(&fake, mode);
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
    let (switches_before, cpu_before) = (context_switches(), cpu_time());
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
                let mut post = http.post(&url).json(&activity);
                if mode == Mode::Checked {
                    post = post.bearer_auth(&token);
                }
                let status = post.send().await.expect("post").status();
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
    let switches = context_switches().saturating_sub(switches_before);
    let cpu = cpu_time().saturating_sub(cpu_before);
    let _ = stop.send(());
    let _ = service.await;
    latencies.sort();
    let pct =
        |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1000.0;
    let inputs = latencies.len() as f64;
    println!(
        "  connector +{delay_ms:>3} ms, C={concurrency:>3}: {:.0} inputs/s, latency p50 {:.2} ms, p99 {:.2} ms ({} inputs, token requests: {}); per input (whole process): {:.0} context switches, {:.0} µs CPU",
        inputs / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        latencies.len(),
        fake.token_calls(),
        switches as f64 / inputs,
        cpu.as_secs_f64() * 1e6 / inputs,
    );
}

/// The cost of [`Authenticator::verify`]: the connector's one token again
/// and again, then a new token every time.
async fn jwt() {
    const SAME: u32 = 20_000;
    const NEW: u32 = 300;
    let fake = FakeBotFramework::start().await;
    let auth = Authenticator::new(
        AuthSettings {
            app_id: APP_ID.into(),
            openid_metadata_url: fake.openid_url(),
            issuer: ISSUER.into(),
            skew: Duration::from_secs(300),
            min_refresh: Duration::from_secs(60),
        },
        reqwest::Client::new(),
    );
    let key = fake.key();
    let service_url = fake.service_url();
    let bearer = |n: u32| {
        let token = fake.token(&key, &service_url, |claims| claims["jti"] = json!(n));
        format!("Bearer {token}")
    };
    let same = bearer(0);
    // Fetches the key set.
    auth.verify(Some(&same), &service_url, "msteams")
        .await
        .expect("valid token");
    let started = Instant::now();
    for _ in 0..SAME {
        auth.verify(Some(&same), &service_url, "msteams")
            .await
            .expect("valid token");
    }
    let cached = started.elapsed() / SAME;
    let tokens: Vec<String> = (1..=NEW).map(bearer).collect();
    let checked_before = auth.signatures_checked();
    let started = Instant::now();
    for token in &tokens {
        auth.verify(Some(token), &service_url, "msteams")
            .await
            .expect("valid token");
    }
    let fresh = started.elapsed() / NEW;
    println!("bearer token check (Authenticator::verify):");
    println!(
        "  same token again: {:.2} µs; a new token: {:.1} µs ({} signatures checked for {NEW} new tokens, 1 for {SAME} repeats)",
        cached.as_secs_f64() * 1e6,
        fresh.as_secs_f64() * 1e6,
        auth.signatures_checked() - checked_before,
    );
}
