//! The real service for end-to-end tests: `madoguchi::serve` with its HTTP
//! endpoint on 127.0.0.1:0, a SQLite file, a manual clock and the
//! environment a test gives; stopped gracefully (outbox flushed).

use std::path::Path;
use std::sync::Arc;

use madoguchi::clock::Clock;
use madoguchi::config::Config;
use madoguchi::conversation::sqlite::SqliteStore;
use madoguchi::conversation::store::Store;
use madoguchi::desk::Desk;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running `serve`.
pub struct Service {
    /// `http://127.0.0.1:PORT` of its HTTP endpoint.
    pub url: String,
    pub desk: Desk,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    /// `None` for a service on another store ([`Service::start_on`]).
    store: Option<Arc<SqliteStore>>,
}

impl Service {
    /// Starts `serve` with `config` on a SQLite file at `db`; `env` is the
    /// environment it sees (tokens, secrets).
    pub async fn start(
        config: Config,
        db: &Path,
        clock: Arc<dyn Clock>,
        env: &[(&str, &str)],
    ) -> Service {
        let store = Arc::new(SqliteStore::open(db).await.expect("sqlite"));
        Service::start_with_store(config, store.clone(), store, clock, env).await
    }

    /// [`Service::start`] on any store (PostgreSQL, for several instances).
    #[allow(dead_code)]
    pub async fn start_on(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        env: &[(&str, &str)],
    ) -> Service {
        Service::start_desk(config, None, store, clock, env).await
    }

    /// [`Service::start`] with the desk on `desk_store` (a test may wrap
    /// the SQLite store to inject failures).
    pub async fn start_with_store(
        config: Config,
        sqlite: Arc<SqliteStore>,
        desk_store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        env: &[(&str, &str)],
    ) -> Service {
        Service::start_desk(config, Some(sqlite), desk_store, clock, env).await
    }

    async fn start_desk(
        config: Config,
        sqlite: Option<Arc<SqliteStore>>,
        desk_store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        env: &[(&str, &str)],
    ) -> Service {
        let content = madoguchi::content::load(&config).expect("content");
        let desk = Desk::new(
            content.flow,
            content.catalog,
            desk_store,
            config.engine_settings().expect("settings"),
            "ja".into(),
        )
        .with_business_hours(config.business_hours().expect("hours"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_desk = desk.clone();
        let task = tokio::spawn(async move {
            let env = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let shutdown = async {
                let _ = stopped.await;
            };
            madoguchi::serve::run_with_listener(
                config,
                serve_desk,
                clock,
                &env,
                Some(listener),
                shutdown,
            )
            .await
            .expect("serve");
        });
        Service {
            url,
            desk,
            stop: Some(stop),
            task,
            store: sqlite,
        }
    }

    /// The SQLite store, for checks while the service runs.
    pub fn store(&self) -> &Arc<SqliteStore> {
        self.store.as_ref().expect("a service on SQLite")
    }

    /// Graceful shutdown: waits until the outbox is flushed and every
    /// channel stopped; returns the store for checks.
    pub async fn stop(mut self) -> Arc<SqliteStore> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("serve task");
        self.store.expect("a service on SQLite")
    }

    /// Graceful shutdown of a service on any store.
    #[allow(dead_code)]
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.expect("serve task");
    }
}

/// Message `id` of the repository's Japanese locale, rendered with `args`.
pub fn text(id: &str, args: &[(&str, &str)]) -> String {
    let config = super::config();
    let (catalog, _) = madoguchi::i18n::Catalog::load(&config.general.locales_dir, "ja");
    let args = args
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    catalog.expect("catalog").format("ja", id, &args)
}
