//! SQLite [`Store`]: one file, WAL journal, `synchronous = FULL` so a
//! committed input survives a power cut, schema from `migrations/sqlite/`
//! (applied by sqlx at open, so files made by earlier versions open as
//! they are).
//!
//! Writes go to one writer thread that owns the only writing connection
//! and commits whatever is ready in one transaction ([`writer`]): group
//! commit, one fsync for a batch of inputs, one hand-over per input.
//!
//! Reads run on the caller's thread, on a connection of a small pool of
//! reader connections: every read is one short indexed query, WAL readers
//! never wait for the writer, and a query costs less than the hand-over
//! to another thread would. A read started after a write's outcome was
//! reported sees that write.
//!
//! The reads every input makes (the conversation at an address, its
//! record, its channel reference) are first answered from what the writer
//! committed ([`cache`]), kept there before any caller hears of the
//! commit; the database is asked only when that does not know.

mod cache;
mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, Row};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::Connection as _;

use super::store::*;
use cache::Cache;
use writer::{Write, Writer, Written};

/// Idle reader connections kept; more are opened when more threads read
/// at once, and closed after.
const IDLE_READERS: usize = 4;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    /// Idle reader connections; `None` once closed. A blocking mutex held
    /// only to take or put back a connection, never while a query runs.
    readers: Mutex<Option<Vec<Connection>>>,
    /// Committed conversations, addresses and references ([`cache`]).
    cache: Arc<Cache>,
}

/// Wraps a rusqlite error with what the store was doing.
fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::database(context, e)
}

fn parse_time(text: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp \"{text}\": {e}")))
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store is closed (serve is shutting down)".into())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies migrations
    /// and starts the writer thread.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let unusable = |e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!(
                "opening SQLite database {}: {e} (check the path and its folder's permissions)",
                path.display()
            ))
        };
        migrate(path).await?;
        let connection = writer::open_connection(path).map_err(|e| unusable(&e))?;
        let cache = Arc::new(Cache::default());
        let writer = Writer::start(connection, cache.clone()).map_err(|e| unusable(&e))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            readers: Mutex::new(Some(Vec::new())),
            cache,
        })
    }

    /// Applies the writes already made, then closes every connection (the
    /// last one checkpoints the WAL). Later calls answer `Unavailable`.
    pub async fn close(&self) {
        drop(self.lock_readers().take());
        self.writer.close().await;
        self.cache.clear();
    }

    fn lock_readers(&self) -> std::sync::MutexGuard<'_, Option<Vec<Connection>>> {
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `query` on a reader connection of this thread's own for the
    /// time of the query.
    fn read<T>(&self, query: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let idle = self.lock_readers().as_mut().ok_or_else(closed)?.pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_reader(&self.path)?,
        };
        let result = query(&connection);
        if let Some(idle) = self.lock_readers().as_mut() {
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
        }
        result
    }

    /// One row of `sql` mapped by `map`, if there is one.
    fn read_one<T>(
        &self,
        context: &'static str,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
        map: impl FnOnce(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(db(context))?;
            let mut rows = statement.query(values).map_err(db(context))?;
            match rows.next().map_err(db(context))? {
                Some(row) => map(row).map(Some),
                None => Ok(None),
            }
        })
    }

    /// Every row of `sql` mapped by `map`.
    fn read_all<T>(
        &self,
        context: &'static str,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
        map: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(db(context))?;
            let mut rows = statement.query(values).map_err(db(context))?;
            let mut found = Vec::new();
            while let Some(row) = rows.next().map_err(db(context))? {
                found.push(map(row)?);
            }
            Ok(found)
        })
    }

    async fn write(&self, write: Write) -> StoreResult<Written> {
        self.writer.write(write).await
    }
}

/// Applies `migrations/sqlite/` with sqlx, as every version before did
/// (its `_sqlx_migrations` table says what is applied), on a connection
/// of its own that is closed before the store starts.
async fn migrate(path: &Path) -> StoreResult<()> {
    let failed = |e: sqlx::Error| {
        StoreError::database(
            format!(
                "opening SQLite database {} (check the path and its folder's permissions)",
                path.display()
            ),
            e,
        )
    };
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(failed)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .map_err(failed)?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&mut connection)
        .await
        .map_err(|e| StoreError::database("applying migrations", e))?;
    connection.close().await.map_err(failed)
}

fn open_reader(path: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(path).map_err(db("opening a reader connection"))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(db("opening a reader connection"))?;
    connection.set_prepared_statement_cache_capacity(32);
    // Most reads are answered by the cache now: a small page cache each
    // (512 KiB instead of SQLite's 2 MiB) keeps idle readers cheap.
    connection
        .execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -512")
        .map_err(db("opening a reader connection"))?;
    Ok(connection)
}

fn column<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> StoreResult<T> {
    row.get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

fn record_from_row(row: &Row<'_>) -> StoreResult<ConversationRecord> {
    let state_json: String = column(row, "state")?;
    let state: serde_json::Value = serde_json::from_str(&state_json)
        .map_err(|e| StoreError::Corrupt(format!("conversation state: {e}")))?;
    Ok(ConversationRecord {
        id: column(row, "id")?,
        channel: column(row, "channel")?,
        user_key: column(row, "user_key")?,
        locale: column(row, "locale")?,
        state,
        version: column(row, "version")?,
        created_at: parse_time(&column::<String>(row, "created_at")?)?,
        updated_at: parse_time(&column::<String>(row, "updated_at")?)?,
        address: column(row, "address")?,
    })
}

fn outbox_from_row(row: &Row<'_>) -> StoreResult<OutboxMessage> {
    let payload: String = column(row, "payload")?;
    Ok(OutboxMessage {
        id: column(row, "id")?,
        conversation_id: column(row, "conversation_id")?,
        channel: column(row, "channel")?,
        // A payload that is not JSON is delivered as `null` and refused by
        // the sender (marked failed), never blocking the rows behind it.
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: parse_time(&column::<String>(row, "created_at")?)?,
        attempts: column(row, "attempts")?,
    })
}

fn handoff_from_row(row: &Row<'_>) -> StoreResult<HandoffRecord> {
    Ok(HandoffRecord {
        ticket: column(row, "ticket")?,
        conversation_id: column(row, "conversation_id")?,
        reason: column(row, "reason")?,
        summary: column(row, "summary")?,
        status: column(row, "status")?,
        created_at: parse_time(&column::<String>(row, "created_at")?)?,
        agent_address: column(row, "agent_address")?,
    })
}

fn timer_from_row(row: &Row<'_>) -> StoreResult<TimerRow> {
    let payload: String = column(row, "payload")?;
    Ok(TimerRow {
        id: column(row, "id")?,
        conversation_id: column(row, "conversation_id")?,
        kind: column(row, "kind")?,
        due_at: parse_time(&column::<String>(row, "due_at")?)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("timer payload: {e}")))?,
    })
}

fn transcript_from_row(row: &Row<'_>) -> StoreResult<TranscriptEntry> {
    Ok(TranscriptEntry {
        at: parse_time(&column::<String>(row, "at")?)?,
        direction: Direction::parse(&column::<String>(row, "direction")?),
        author: column(row, "author")?,
        message_id: column(row, "message_id")?,
        text: column(row, "text")?,
    })
}

/// The first column of a row.
fn first<T: rusqlite::types::FromSql>(row: &Row<'_>) -> StoreResult<T> {
    row.get(0)
        .map_err(|e| StoreError::Corrupt(format!("first column: {e}")))
}

fn unexpected(written: Written) -> StoreError {
    StoreError::Unavailable(format!(
        "the SQLite writer answered {written:?} to a different write (a bug in madoguchi)"
    ))
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        if let Some(record) = self.cache.conversation(id) {
            return Ok(Some(record));
        }
        let since = self.cache.epoch();
        let found = self.read_one(
            "loading a conversation",
            sql::LOAD_CONVERSATION,
            params![id],
            record_from_row,
        )?;
        if let Some(record) = &found {
            self.cache.keep_read(since, record, false);
        }
        Ok(found)
    }

    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.read_one(
            "latest for user",
            sql::LATEST_FOR_USER,
            params![channel, user_key],
            record_from_row,
        )
    }

    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>> {
        self.read_all(
            "conversations of a user",
            sql::CONVERSATIONS_OF_USER,
            params![channel, user_key],
            record_from_row,
        )
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        match self.write(Write::commit(commit)).await? {
            Written::Commit(outcome) => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        self.read_all(
            "due timers",
            sql::DUE_TIMERS,
            params![time(now), conversation],
            timer_from_row,
        )
    }

    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<Option<String>> = self.read_one(
            "next timer due",
            sql::NEXT_TIMER_DUE,
            params![conversation],
            first,
        )?;
        due.flatten().as_deref().map(parse_time).transpose()
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        self.read_all(
            "listing conversations with pending messages",
            sql::PENDING_CONVERSATIONS,
            params![channel, limit],
            first,
        )
    }

    async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.read_all(
            "reading messages to replay",
            sql::ROWS_AFTER,
            params![conversation, after, limit],
            outbox_from_row,
        )
    }

    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        self.read_all(
            "reading pending messages",
            sql::PENDING_OUTBOX,
            params![channel, conversation, limit],
            outbox_from_row,
        )
    }

    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let write = Write::Enqueue {
            conversation: conversation.into(),
            channel: channel.into(),
            payload: payload.to_string(),
            at: time(at),
        };
        match self.write(write).await? {
            Written::Enqueued(Some(id)) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn enqueue_once(
        &self,
        conversation: &str,
        channel: &str,
        key: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let write = Write::EnqueueOnce {
            conversation: conversation.into(),
            channel: channel.into(),
            key: key.into(),
            payload: payload.to_string(),
            at: time(at),
        };
        match self.write(write).await? {
            Written::Enqueued(id) => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let write = Write::MarkSent {
            ids: ids.to_vec(),
            at: time(at),
        };
        self.write(write).await.map(|_| ())
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        self.read_all(
            "reading a transcript",
            sql::TRANSCRIPT,
            params![conversation],
            transcript_from_row,
        )
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        self.read_all(
            "reading handoff tickets",
            sql::HANDOFFS_OF_CONVERSATION,
            params![conversation],
            handoff_from_row,
        )
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        self.read_one(
            "reading a handoff ticket",
            sql::HANDOFF,
            params![ticket],
            handoff_from_row,
        )
    }

    async fn queue_length(&self) -> StoreResult<i64> {
        let count = self.read_one("queue length", sql::QUEUE_LENGTH, params![], first)?;
        Ok(count.unwrap_or(0))
    }

    async fn queue_position(&self, ticket: &str) -> StoreResult<i64> {
        let count = self.read_one(
            "queue position",
            sql::QUEUE_POSITION,
            params![ticket],
            first,
        )?;
        Ok(count.unwrap_or(0))
    }

    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        if let Some(record) = self
            .cache
            .at_address(channel, address)
            .and_then(|id| self.cache.conversation(&id))
        {
            return Ok(Some(record));
        }
        let since = self.cache.epoch();
        let found = self.read_one(
            "find by address",
            sql::FIND_BY_ADDRESS,
            params![channel, address],
            record_from_row,
        )?;
        if let Some(record) = &found {
            self.cache.keep_read(since, record, true);
        }
        Ok(found)
    }

    async fn conversation_at(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        if let Some(id) = self.cache.at_address(channel, address) {
            return Ok(Some(id));
        }
        Ok(self
            .find_by_address(channel, address)
            .await?
            .map(|record| record.id))
    }

    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>> {
        if let Some(address) = self.cache.address_of(conversation) {
            return Ok(address);
        }
        let address: Option<Option<String>> =
            self.read_one("address of", sql::ADDRESS_OF, params![conversation], first)?;
        Ok(address.flatten())
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        let write = Write::SetHandoffAddress {
            ticket: ticket.into(),
            address: address.into(),
        };
        self.write(write).await.map(|_| ())
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        self.read_one(
            "find handoff by address",
            sql::FIND_HANDOFF_BY_ADDRESS,
            params![address],
            handoff_from_row,
        )
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        if let Some(reference) = self.cache.reference(channel, address) {
            return Ok(Some(reference));
        }
        let since = self.cache.epoch();
        let found: Option<String> = self.read_one(
            "reading a conversation reference",
            sql::REFERENCE,
            params![channel, address],
            first,
        )?;
        if let Some(reference) = &found {
            self.cache
                .keep_reference(since, channel, address, reference);
        }
        Ok(found)
    }

    async fn record_sent_parts(&self, id: i64, parts: &[Option<String>]) -> StoreResult<()> {
        let write = Write::RecordSentParts {
            id,
            parts: sent_parts_to_text(parts),
        };
        self.write(write).await.map(|_| ())
    }

    async fn sent_parts(&self, id: i64) -> StoreResult<Vec<Option<String>>> {
        let text: Option<Option<String>> = self.read_one(
            "reading the parts of a message sent",
            sql::SENT_PARTS,
            params![id],
            first,
        )?;
        Ok(sent_parts_from_text(text.flatten().as_deref()))
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        let reason: Option<Option<String>> = self.read_one(
            "reading why a message failed",
            sql::FAILED_REASON,
            params![id],
            first,
        )?;
        Ok(reason.flatten())
    }

    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let write = Write::MarkFailed {
            id,
            reason: reason.into(),
            at: time(at),
        };
        self.write(write).await.map(|_| ())
    }
}
