//! The `madoguchi` command: parses arguments and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use madoguchi::channels::console::{self, ChatOptions};
use madoguchi::clock::{Clock, ManualClock, SystemClock};
use madoguchi::config::Config;
use madoguchi::conversation::memory::MemoryStore;
use madoguchi::conversation::postgres::{self, PostgresStore};
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::Store;
use madoguchi::desk::Desk;

/// mimalloc instead of glibc's malloc: under load `serve` allocates and
/// frees small buffers (JSON values, HTTP bodies, SQL rows) from several
/// threads; glibc's `malloc`/`free`/`malloc_consolidate` were about a fifth
/// of its CPU in `perf` at C=100 on the shared harness (issue 11). Built
/// without transparent huge pages (`no_thp`): with them its arenas were
/// backed by 2 MiB pages and peak RSS at C=1000 was 112 MiB instead of 73.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "madoguchi",
    version,
    about = "Help-desk chat bot for MFA phone-call problems"
)]
struct Cli {
    /// Config file (TOML); without it, defaults and MADOGUCHI__… variables.
    #[arg(long, global = true, env = "MADOGUCHI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Talk to the bot in this terminal.
    Chat {
        /// Machine-readable mode: one JSON object per line in and out.
        #[arg(long)]
        jsonl: bool,
        /// Conversation language (ja or en); Japanese by default.
        #[arg(long, default_value = "ja")]
        lang: String,
        /// SQLite file (or postgres:// URL) to keep the conversation in
        /// (default: in memory).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Resume this stored conversation (needs --db).
        #[arg(long, requires = "db")]
        conversation: Option<String>,
        /// Fix the clock at this RFC 3339 time; scripted lines may then move
        /// it with "at" (for tests and demonstrations of reminders).
        #[arg(long)]
        now: Option<String>,
    },
    /// Run the service: every configured channel (Discord when its token's
    /// environment variable is set) and the reminder timers.
    Serve,
    /// Check every flow and locale; print one line per problem.
    Check {
        /// Flows folder (default: from config).
        #[arg(long)]
        flows: Option<PathBuf>,
        /// Locales folder (default: from config).
        #[arg(long)]
        locales: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service tells the operator what it does (info); the terminal chat
    // keeps stderr quiet unless something is wrong.
    let default_filter = match cli.command {
        Command::Serve => "info,serenity=warn,sqlx=warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("madoguchi: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Check { flows, locales } => {
            let flows = flows.unwrap_or_else(|| config.general.flows_dir.clone());
            let locales = locales.unwrap_or_else(|| config.general.locales_dir.clone());
            let report =
                madoguchi::content::check_all(&flows, &locales, &config.general.default_locale);
            for problem in &report.problems {
                println!("{problem}");
            }
            if report.problems.is_empty() {
                println!(
                    "ok: {} flow(s), {} locale(s), {} messages",
                    report.flows, report.locales, report.messages
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{} problem(s) found", report.problems.len());
                Ok(ExitCode::from(1))
            }
        }
        Command::Serve => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(serve(config))
        }
        Command::Chat {
            jsonl,
            lang,
            db,
            conversation,
            now,
        } => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(chat(config, jsonl, lang, db, conversation, now))
        }
    }
}

async fn chat(
    config: Config,
    jsonl: bool,
    lang: String,
    db: Option<PathBuf>,
    conversation: Option<String>,
    now: Option<String>,
) -> anyhow::Result<ExitCode> {
    let content = load_content(&config)?;
    let persistent = db.is_some();
    let store: Arc<dyn Store> = match &db {
        Some(path) => open_store(path, "--db").await?.store(),
        None => Arc::new(MemoryStore::new()),
    };
    let manual_clock = match now {
        Some(text) => {
            let start = chrono::DateTime::parse_from_rfc3339(&text)
                .with_context(|| format!("--now \"{text}\" is not an RFC 3339 time"))?;
            Some(Arc::new(ManualClock::new(
                start.with_timezone(&chrono::Utc),
            )))
        }
        None => None,
    };
    let clock: Arc<dyn Clock> = match &manual_clock {
        Some(manual) => manual.clone(),
        None => Arc::new(SystemClock),
    };
    let desk = Desk::new(
        content.flow,
        content.catalog,
        store,
        config.engine_settings()?,
        config.general.agent_locale.clone(),
    );
    let options = ChatOptions {
        jsonl,
        locale: lang,
        conversation,
        manual_clock,
        persistent,
    };
    console::run(desk, clock, options).await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let shutdown = shutdown_signal();
    let content = load_content(&config)?;
    let backend = open_store(&config.storage.database, "storage.database").await?;
    let desk = Desk::new(
        content.flow,
        content.catalog,
        backend.store(),
        config.engine_settings()?,
        config.general.agent_locale.clone(),
    )
    .with_business_hours(config.business_hours()?);
    let env = |name: &str| std::env::var(name).ok();
    madoguchi::serve::run(config, desk, Arc::new(SystemClock), &env, shutdown).await?;
    backend.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The store `database` names: a `postgres://` or `postgresql://` URL
/// selects PostgreSQL, anything else is an SQLite file path.
enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Backend {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(store) => store.clone(),
            Backend::Postgres(store) => store.clone(),
        }
    }

    /// Closes the pool (SQLite: checkpoints the WAL).
    async fn close(&self) {
        match self {
            Backend::Sqlite(store) => store.close().await,
            Backend::Postgres(store) => store.close().await,
        }
    }
}

/// Opens the store named by `database`; errors name `setting` (the config
/// key or option) and say what to fix. The password never reaches the log.
async fn open_store(database: &std::path::Path, setting: &str) -> anyhow::Result<Backend> {
    if let Some(url) = database.to_str().filter(|d| postgres::is_postgres_url(d)) {
        let shown = postgres::redact_url(url);
        let store = PostgresStore::open(url).await.with_context(|| {
            format!(
                "{setting} = \"{shown}\": cannot use this PostgreSQL database; fix the URL \
                 (postgres://user:password@host:port/database), or give a file path for SQLite"
            )
        })?;
        tracing::info!(database = %shown, "store: PostgreSQL");
        return Ok(Backend::Postgres(Arc::new(store)));
    }
    let store = SqliteStore::open(database).await.with_context(|| {
        format!(
            "{setting} = \"{}\": cannot open this SQLite file; fix the path or its folder's \
             permissions, or give a postgres:// URL for PostgreSQL",
            database.display()
        )
    })?;
    tracing::info!(database = %database.display(), "store: SQLite");
    Ok(Backend::Sqlite(Arc::new(store)))
}

/// Ctrl-C or SIGTERM. The handlers are installed when this is called (not
/// when the future is first polled), so a signal during start-up is not
/// lost to the default action.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate => {}
        }
    }
}

/// Loads and checks the content; on problems prints each one and refuses.
fn load_content(config: &Config) -> anyhow::Result<madoguchi::content::Content> {
    madoguchi::content::load(config).map_err(|problems| {
        for problem in &problems {
            eprintln!("{problem}");
        }
        anyhow::anyhow!(
            "refusing to start: the flow or locales have {} problem(s); run `madoguchi check`",
            problems.len()
        )
    })
}
