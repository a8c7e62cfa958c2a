//! Core performance figures of madoguchi: (1) start-up, i.e. loading and
//! checking the repository's flow and locales (`content::load`); (2) pure
//! engine steps per second on one core, each followed by the Fluent
//! rendering of every reply and button label (what a real reply costs), for
//! a choice-driven script, a free-text script and both mixed; (3) inputs per
//! second through the whole desk (engine, rendering, transcript, outbox, one
//! transaction per input) over the SQLite store with durable commits (WAL,
//! `synchronous = FULL`), one conversation after another and with 8
//! concurrent conversations, and over the memory store for comparison.
//!
//! Run with `cargo bench --bench core` (release build; plain `fn main`, no
//! harness). It runs for about 15 seconds; the SQLite figures depend mostly on
//! how fast the disk under the temp directory completes an fsync.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};

#[path = "../tests/understanding/report.rs"]
mod understanding;
use madoguchi::config::Config;
use madoguchi::content::{self, Content};
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::Store;
use madoguchi::desk::Desk;
use madoguchi::flow::engine::{self, EngineSettings, Input};
use madoguchi::flow::state::State;

/// Locale the engine benchmark renders in.
const LOCALE: &str = "ja";
/// Start-up: number of timed loads.
const LOAD_RUNS: usize = 20;
/// Engine: how long each mix runs.
const ENGINE_RUN: Duration = Duration::from_secs(2);
/// Desk over SQLite: at most this many inputs, or this long, per measurement.
const SQLITE_MAX_INPUTS: usize = 2_000;
const SQLITE_MAX_TIME: Duration = Duration::from_secs(5);
/// Desk over memory: at most this many inputs, or this long, per measurement.
const MEMORY_MAX_INPUTS: usize = 1_000_000;
const MEMORY_MAX_TIME: Duration = Duration::from_secs(1);
/// Desk: concurrent conversations in the concurrent measurement.
const CONCURRENCY: usize = 8;

/// One scripted turn: the input and the node the conversation must be at
/// afterwards (checked once before timing, so the script stays realistic).
type Script = &'static [(Turn, &'static str)];

#[derive(Clone, Copy)]
enum Turn {
    Start,
    Choice(&'static str),
    Text(&'static str),
}

impl Turn {
    fn input(self) -> Input {
        match self {
            Turn::Start => Input::Start,
            Turn::Choice(id) => Input::Choice(id.to_string()),
            Turn::Text(text) => Input::Text(text.to_string()),
        }
    }
}

/// Buttons through the whole A–F checklist (one typed phone number) to a
/// handoff.
const CHECKLIST: Script = &[
    (Turn::Start, "start"),
    (Turn::Choice("start-unknown"), "case-a-count"),
    (Turn::Choice("a-count-few"), "case-b-check"),
    (Turn::Choice("b-not-applicable"), "case-c-check"),
    (Turn::Choice("c-no"), "case-d-number"),
    (Turn::Text("+81 90 1234 5678"), "case-d-looks-right"),
    (Turn::Choice("d-matches"), "case-e-check"),
    (Turn::Choice("e-no"), "case-f-check"),
    (Turn::Choice("f-mobile"), "handoff"),
];

/// Buttons only: call never arrives, fixed by case B, satisfaction survey.
const SOLVED_BY_BUTTONS: Script = &[
    (Turn::Start, "start"),
    (Turn::Choice("start-no-call"), "case-a-count"),
    (Turn::Choice("a-count-few"), "case-b-check"),
    (Turn::Choice("b-changed-works"), "csat"),
    (Turn::Choice("csat-yes"), "end-thanks"),
];

/// Mostly typed Japanese: intents picked from free text, typed answers.
const FREE_TEXT: Script = &[
    (Turn::Start, "start"),
    (Turn::Text("MNPで携帯会社を変えたばかりです"), "case-c-fix"),
    (
        Turn::Text("非通知の電話を拒否する設定にしています"),
        "case-b-check",
    ),
    (Turn::Text("設定を変えたら電話が来ました！"), "csat"),
    (Turn::Choice("csat-yes"), "end-thanks"),
];

/// Typed lockout story with counts and times in full-width digits, then a
/// full-width phone number.
const FREE_TEXT_NUMBERS: Script = &[
    (Turn::Start, "start"),
    (
        Turn::Text("６回くらい試していたらロックされてしまいました"),
        "case-a-when",
    ),
    (Turn::Text("１０分前"), "case-a-wait"),
    (
        Turn::Text("電話番号の入力方法が合っているか確認したいです"),
        "case-d-number",
    ),
    (
        Turn::Text("０９０ー１２３４ー５６７８"),
        "case-d-missing-country-code",
    ),
    (
        Turn::Choice("d-registered-like-input"),
        "case-d-can-sign-in",
    ),
    (Turn::Choice("d-can-sign-in"), "case-d-fix-form"),
];

fn config() -> Config {
    let mut config = Config::default();
    config.general.flows_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/flows"));
    config.general.locales_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/locales"));
    config
}

fn load(config: &Config) -> Content {
    content::load(config).unwrap_or_else(|problems| {
        panic!("repository content is invalid:\n{}", problems.join("\n"))
    })
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 5, 0, 0).unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_second(count: usize, elapsed: Duration) -> u64 {
    (count as f64 / elapsed.as_secs_f64()).round() as u64
}

// ------------------------------------------------------------ start-up

fn bench_startup(config: &Config) {
    // One untimed load warms the file cache.
    black_box(load(config));
    let mut times: Vec<Duration> = (0..LOAD_RUNS)
        .map(|_| {
            let started = Instant::now();
            black_box(load(config));
            started.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "start-up content::load, ms over {LOAD_RUNS} runs (goal <= 100): min {:.1}, median {:.1}, max {:.1}",
        ms(times[0]),
        ms(times[LOAD_RUNS / 2]),
        ms(times[LOAD_RUNS - 1]),
    );
}

// ------------------------------------------------------------ engine

/// Runs `script` once through the engine, rendering every reply and label;
/// returns the number of steps. With `check`, asserts the node after each.
fn run_script(
    content: &Content,
    settings: &EngineSettings,
    script: Script,
    now: DateTime<Utc>,
    check: bool,
) -> usize {
    let flow = &content.flow;
    let catalog = &content.catalog;
    let no_args = BTreeMap::new();
    let mut state = State::fresh("bench", &flow.flow.flow.start, now);
    for (turn, expected) in script {
        let step = engine::step(flow, state, turn.input(), now, settings);
        for reply in &step.replies {
            black_box(catalog.format(LOCALE, &reply.message_id, &reply.args));
            for choice in &reply.choices {
                black_box(catalog.format(LOCALE, &choice.label, &no_args));
            }
        }
        black_box(&step.effects);
        if check {
            assert_eq!(
                step.state.node,
                *expected,
                "script diverged after {:?}",
                turn.input()
            );
        }
        state = step.state;
    }
    black_box(&state);
    script.len()
}

/// Steps per second over `scripts` (run in turn, repeatedly) for `ENGINE_RUN`.
fn engine_rate(content: &Content, settings: &EngineSettings, scripts: &[Script]) -> u64 {
    let now = now();
    let mut steps = 0;
    let started = Instant::now();
    loop {
        for script in scripts {
            steps += run_script(content, settings, script, now, false);
        }
        let elapsed = started.elapsed();
        if elapsed >= ENGINE_RUN {
            return per_second(steps, elapsed);
        }
    }
}

fn bench_engine(content: &Content, settings: &EngineSettings) {
    let choice: &[Script] = &[CHECKLIST, SOLVED_BY_BUTTONS];
    let text: &[Script] = &[FREE_TEXT, FREE_TEXT_NUMBERS];
    let all: &[Script] = &[CHECKLIST, FREE_TEXT, SOLVED_BY_BUTTONS, FREE_TEXT_NUMBERS];
    for script in all {
        run_script(content, settings, script, now(), true);
    }
    // Warm-up (allocator, caches).
    for _ in 0..200 {
        for script in all {
            run_script(content, settings, script, now(), false);
        }
    }
    println!(
        "engine steps/s (1 core, with Fluent rendering), choice mix (goal >= 200000): {}",
        engine_rate(content, settings, choice)
    );
    println!(
        "engine steps/s (1 core, with Fluent rendering), free-text mix (goal >= 200000): {}",
        engine_rate(content, settings, text)
    );
    println!(
        "engine steps/s (1 core, with Fluent rendering), combined (goal >= 200000): {}",
        engine_rate(content, settings, all)
    );
}

// ------------------------------------------------------------ desk + store

/// Drives one new conversation through the checklist; returns inputs made
/// (the greeting counts: it is a commit too).
async fn drive_conversation(desk: &Desk, user: usize, now: DateTime<Utc>) -> usize {
    let greeted = desk
        .start("bench", &format!("user-{user}"), LOCALE, now)
        .await
        .expect("start conversation");
    let id = greeted.conversation_id;
    let mut inputs = 1;
    for (index, (turn, expected)) in CHECKLIST.iter().enumerate().skip(1) {
        let key = format!("{id}-{index}");
        let outcome = desk
            .handle(&id, turn.input(), Some(key), now)
            .await
            .expect("handle input");
        debug_assert!(!outcome.duplicate);
        assert_eq!(outcome.state.node, *expected, "desk script diverged");
        black_box(&outcome.rows);
        inputs += 1;
    }
    inputs
}

/// Inputs per second with `workers` conversations in flight at a time,
/// until about `max_inputs` inputs or `max_time` have passed.
async fn desk_rate(
    desk: &Desk,
    workers: usize,
    max_inputs: usize,
    max_time: Duration,
) -> (usize, u64) {
    let done = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let desk = desk.clone();
        let done = done.clone();
        let users = users.clone();
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < max_inputs && started.elapsed() < max_time {
                let user = users.fetch_add(1, Ordering::Relaxed);
                let inputs = drive_conversation(&desk, user, now()).await;
                done.fetch_add(inputs, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker task");
    }
    let elapsed = started.elapsed();
    let inputs = done.load(Ordering::Relaxed);
    (inputs, per_second(inputs, elapsed))
}

fn desk_over(config: &Config, store: Arc<dyn Store>) -> Desk {
    let content = load(config);
    Desk::new(
        content.flow,
        content.catalog,
        store,
        config.engine_settings().expect("engine settings"),
        config.general.agent_locale.clone(),
    )
}

fn bench_desk(config: &Config) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    for (label, workers) in [("sequential", 1), ("8 concurrent", CONCURRENCY)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let (inputs, rate) = runtime.block_on(async {
            let store = Arc::new(
                SqliteStore::open(&dir.path().join("bench.db"))
                    .await
                    .expect("open SQLite store"),
            );
            let desk = desk_over(config, store.clone());
            // One untimed conversation: migrations done, pages cached.
            drive_conversation(&desk, usize::MAX, now()).await;
            let result = desk_rate(&desk, workers, SQLITE_MAX_INPUTS, SQLITE_MAX_TIME).await;
            store.close().await;
            result
        });
        println!("desk inputs/s, SQLite durable commits, {label} ({inputs} inputs): {rate}");
    }
    for (label, workers) in [("sequential", 1), ("8 concurrent", CONCURRENCY)] {
        let (inputs, rate) = runtime.block_on(async {
            let desk = desk_over(config, Arc::new(MemoryStore::new()));
            drive_conversation(&desk, usize::MAX, now()).await;
            desk_rate(&desk, workers, MEMORY_MAX_INPUTS, MEMORY_MAX_TIME).await
        });
        println!("desk inputs/s, memory store, {label} ({inputs} inputs): {rate}");
    }
}

fn main() {
    println!("madoguchi core benchmark (benches/core.rs)");
    println!("  start-up: content::load (read + check flow and ja/en locales)");
    println!(
        "  engine: engine::step + Fluent rendering of every reply and button label, locale ja;"
    );
    println!("          choice mix = checklist A-F to handoff + solved by buttons; free-text mix = typed intents and answers");
    println!(
        "  desk: Desk::start/handle through the A-F checklist (9 inputs per conversation, each one transaction);"
    );
    println!(
        "        SQLite = WAL + synchronous=FULL in a temp dir; bounded to {SQLITE_MAX_INPUTS} inputs or {}s per line",
        SQLITE_MAX_TIME.as_secs()
    );
    println!();

    let config = config();
    bench_startup(&config);
    let content = load(&config);
    let settings = config.engine_settings().expect("engine settings");
    bench_engine(&content, &settings);
    bench_desk(&config);
    report_understanding(&config);
}

/// The understanding tables of both held-out sets (issue 10), as
/// `cargo test --test understanding -- --nocapture` prints them.
fn report_understanding(config: &Config) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for (name, file) in [
        ("held-out set", "heldout.toml"),
        ("blind set", "blind.toml"),
    ] {
        let set = understanding::phrases(&root, file);
        let desk = desk_over(config, Arc::new(MemoryStore::new()));
        println!();
        runtime.block_on(understanding::evaluate(&desk, name, &set));
    }
}
