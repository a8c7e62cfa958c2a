//! SQLite [`Store`]: one file, WAL journal, `synchronous = FULL` so a
//! committed input survives a power cut, schema from `migrations/sqlite/`.
//!
//! The pool has a single connection: SQLite serialises writers anyway, and
//! one connection avoids "database is locked" upgrades between deferred
//! transactions. Each commit is one `BEGIN IMMEDIATE … COMMIT` through
//! sqlx's `begin_with`, so a commit future dropped half-way (a client that
//! disconnects) rolls back instead of leaving the only connection inside an
//! open transaction.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use super::store::*;

pub struct SqliteStore {
    pool: SqlitePool,
}

/// Wraps a sqlx error with what the store was doing.
fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
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

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(db("opening the database"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::database(
                    format!(
                        "opening SQLite database {} (check the path and its folder's permissions)",
                        path.display()
                    ),
                    e,
                )
            })?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::database("applying migrations", e))?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<ConversationRecord> {
        let state_json: String = row.get("state");
        let state: serde_json::Value = serde_json::from_str(&state_json)
            .map_err(|e| StoreError::Corrupt(format!("conversation state: {e}")))?;
        Ok(ConversationRecord {
            id: row.get("id"),
            channel: row.get("channel"),
            user_key: row.get("user_key"),
            locale: row.get("locale"),
            state,
            version: row.get("version"),
            created_at: parse_time(row.get("created_at"))?,
            updated_at: parse_time(row.get("updated_at"))?,
            address: row.get("address"),
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("loading a conversation"))?;
        row.as_ref().map(Self::record_from_row).transpose()
    }

    async fn latest_for_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE channel = ? AND user_key = ? ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(channel)
        .bind(user_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("latest for user"))?;
        row.as_ref().map(Self::record_from_row).transpose()
    }

    async fn conversations_of_user(
        &self,
        channel: &str,
        user_key: &str,
    ) -> StoreResult<Vec<ConversationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM conversations WHERE channel = ? AND user_key = ? ORDER BY updated_at DESC",
        )
        .bind(channel)
        .bind(user_key)
        .fetch_all(&self.pool)
        .await
        .map_err(db("conversations of a user"))?;
        rows.iter().map(Self::record_from_row).collect()
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("beginning a commit"))?;
        let result = write_commit(&mut tx, commit).await;
        match &result {
            Ok(CommitOutcome::Committed { .. }) => tx.commit().await.map_err(db("committing"))?,
            _ => tx.rollback().await.map_err(db("rolling back"))?,
        }
        result
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        let rows = sqlx::query(
            "SELECT * FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= ?
             AND (? IS NULL OR conversation_id = ?) ORDER BY due_at, id",
        )
        .bind(time(now))
        .bind(conversation)
        .bind(conversation)
        .fetch_all(&self.pool)
        .await
        .map_err(db("due timers"))?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn next_timer_due(
        &self,
        conversation: Option<&str>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<String> = sqlx::query_scalar(
            "SELECT MIN(due_at) FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL
             AND (? IS NULL OR conversation_id = ?)",
        )
        .bind(conversation)
        .bind(conversation)
        .fetch_one(&self.pool)
        .await
        .map_err(db("next timer due"))?;
        due.as_deref().map(parse_time).transpose()
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT conversation_id FROM outbox WHERE channel = ? AND sent_at IS NULL
             GROUP BY conversation_id ORDER BY MIN(id) LIMIT ?",
        )
        .bind(channel)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("listing conversations with pending messages"))
    }

    async fn rows_after(
        &self,
        conversation: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM outbox WHERE conversation_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(conversation)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading messages to replay"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn pending_outbox(
        &self,
        channel: &str,
        conversation: &str,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT * FROM outbox WHERE channel = ? AND conversation_id = ? AND sent_at IS NULL
             ORDER BY id LIMIT ?",
        )
        .bind(channel)
        .bind(conversation)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db("reading pending messages"))?;
        rows.iter().map(outbox_from_row).collect()
    }

    async fn enqueue(
        &self,
        conversation: &str,
        channel: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO outbox (conversation_id, channel, payload, created_at) VALUES (?, ?, ?, ?)
             RETURNING id",
        )
        .bind(conversation)
        .bind(channel)
        .bind(payload.to_string())
        .bind(time(at))
        .fetch_one(&self.pool)
        .await
        .map_err(db("adding a message to the outbox"))
    }

    async fn enqueue_once(
        &self,
        conversation: &str,
        channel: &str,
        key: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db("beginning an outbox write"))?;
        let seen = sqlx::query(
            "INSERT INTO inbound_seen (conversation_id, inbound_key, seen_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(conversation)
        .bind(key)
        .bind(time(at))
        .execute(&mut *tx)
        .await
        .map_err(db("adding a message to the outbox"))?;
        if seen.rows_affected() == 0 {
            tx.rollback().await.map_err(db("rolling back"))?;
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (conversation_id, channel, payload, created_at) VALUES (?, ?, ?, ?)
             RETURNING id",
        )
        .bind(conversation)
        .bind(channel)
        .bind(payload.to_string())
        .bind(time(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(db("adding a message to the outbox"))?;
        tx.commit().await.map_err(db("committing"))?;
        Ok(Some(id))
    }

    async fn mark_sent(&self, ids: &[i64], at: DateTime<Utc>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let placeholders = vec!["?"; ids.len()].join(", ");
        let sql = format!("UPDATE outbox SET sent_at = ? WHERE id IN ({placeholders})");
        let mut query = sqlx::query(&sql).bind(time(at));
        for id in ids {
            query = query.bind(id);
        }
        query
            .execute(&self.pool)
            .await
            .map_err(db("marking messages sent"))?;
        Ok(())
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        let rows = sqlx::query("SELECT * FROM transcript WHERE conversation_id = ? ORDER BY id")
            .bind(conversation)
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading a transcript"))?;
        rows.iter()
            .map(|row| {
                Ok(TranscriptEntry {
                    at: parse_time(row.get("at"))?,
                    direction: Direction::parse(row.get("direction")),
                    author: row.get("author"),
                    message_id: row.get("message_id"),
                    text: row.get("text"),
                })
            })
            .collect()
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        let rows =
            sqlx::query("SELECT * FROM handoffs WHERE conversation_id = ? ORDER BY created_at")
                .bind(conversation)
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading handoff tickets"))?;
        rows.iter().map(handoff_from_row).collect()
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query("SELECT * FROM handoffs WHERE ticket = ?")
            .bind(ticket)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("reading a handoff ticket"))?;
        row.as_ref().map(handoff_from_row).transpose()
    }

    async fn queue_length(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM handoffs WHERE status = 'queued'")
            .fetch_one(&self.pool)
            .await
            .map_err(db("queue length"))
    }

    async fn queue_position(&self, ticket: &str) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM handoffs WHERE status = 'queued'
             AND created_at <= (SELECT created_at FROM handoffs WHERE ticket = ?)",
        )
        .bind(ticket)
        .fetch_one(&self.pool)
        .await
        .map_err(db("queue position"))
    }

    async fn find_by_address(
        &self,
        channel: &str,
        address: &str,
    ) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query(
            "SELECT * FROM conversations WHERE channel = ? AND address = ? ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(channel)
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("find by address"))?;
        row.as_ref().map(Self::record_from_row).transpose()
    }

    async fn address_of(&self, conversation: &str) -> StoreResult<Option<String>> {
        let address: Option<Option<String>> =
            sqlx::query_scalar("SELECT address FROM conversations WHERE id = ?")
                .bind(conversation)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("address of"))?;
        Ok(address.flatten())
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        sqlx::query("UPDATE handoffs SET agent_address = ? WHERE ticket = ?")
            .bind(address)
            .bind(ticket)
            .execute(&self.pool)
            .await
            .map_err(db("set handoff address"))?;
        Ok(())
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query(
            "SELECT * FROM handoffs WHERE agent_address = ? ORDER BY created_at DESC LIMIT 1",
        )
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("find handoff by address"))?;
        row.as_ref().map(handoff_from_row).transpose()
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT reference FROM channel_references WHERE channel = ? AND address = ?",
        )
        .bind(channel)
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading a conversation reference"))
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        let reason: Option<Option<String>> =
            sqlx::query_scalar("SELECT failed_reason FROM outbox WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading why a message failed"))?;
        Ok(reason.flatten())
    }

    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET sent_at = ?, failed_reason = ? WHERE id = ?")
            .bind(time(at))
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("mark failed"))?;
        Ok(())
    }
}

fn outbox_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<OutboxMessage> {
    let payload: String = row.get("payload");
    Ok(OutboxMessage {
        id: row.get("id"),
        conversation_id: row.get("conversation_id"),
        channel: row.get("channel"),
        // A payload that is not JSON is delivered as `null` and refused by
        // the sender (marked failed), never blocking the rows behind it.
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: parse_time(row.get("created_at"))?,
        attempts: row.get("attempts"),
    })
}

fn handoff_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<HandoffRecord> {
    Ok(HandoffRecord {
        ticket: row.get("ticket"),
        conversation_id: row.get("conversation_id"),
        reason: row.get("reason"),
        summary: row.get("summary"),
        status: row.get("status"),
        created_at: parse_time(row.get("created_at"))?,
        agent_address: row.get("agent_address"),
    })
}

fn timer_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<TimerRow> {
    let payload: String = row.get("payload");
    Ok(TimerRow {
        id: row.get("id"),
        conversation_id: row.get("conversation_id"),
        kind: row.get("kind"),
        due_at: parse_time(row.get("due_at"))?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("timer payload: {e}")))?,
    })
}

async fn write_commit(
    conn: &mut sqlx::SqliteConnection,
    commit: Commit,
) -> StoreResult<CommitOutcome> {
    let record = &commit.conversation;
    let now = time(record.updated_at);
    if let Some(key) = &commit.inbound_key {
        let inserted = sqlx::query(
            "INSERT INTO inbound_seen (conversation_id, inbound_key, seen_at) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(&record.id)
        .bind(key)
        .bind(&now)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
        if inserted.rows_affected() == 0 {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    let state = record.state.to_string();
    let version = match commit.expected_version {
        None => {
            let inserted = sqlx::query(
                "INSERT INTO conversations (id, channel, user_key, locale, state, version, created_at, updated_at, address)
                 VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&record.id)
            .bind(&record.channel)
            .bind(&record.user_key)
            .bind(&record.locale)
            .bind(&state)
            .bind(time(record.created_at))
            .bind(&now)
            .bind(&record.address)
            .execute(&mut *conn)
            .await
            .map_err(db("writing a commit"))?;
            if inserted.rows_affected() == 0 {
                return Ok(CommitOutcome::Conflict);
            }
            1
        }
        Some(expected) => {
            let updated = sqlx::query(
                "UPDATE conversations SET state = ?, locale = ?, version = version + 1, updated_at = ?
                 WHERE id = ? AND version = ?",
            )
            .bind(&state)
            .bind(&record.locale)
            .bind(&now)
            .bind(&record.id)
            .bind(expected)
            .execute(&mut *conn)
            .await
            .map_err(db("writing a commit"))?;
            if updated.rows_affected() == 0 {
                return Ok(CommitOutcome::Conflict);
            }
            expected + 1
        }
    };
    for line in &commit.transcript {
        sqlx::query(
            "INSERT INTO transcript (conversation_id, at, direction, author, message_id, text)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.id)
        .bind(time(line.at))
        .bind(line.direction.as_str())
        .bind(&line.author)
        .bind(&line.message_id)
        .bind(&line.text)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    let mut outbox_ids = Vec::new();
    for (channel, payload) in &commit.outbox {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (conversation_id, channel, payload, created_at) VALUES (?, ?, ?, ?)
             RETURNING id",
        )
        .bind(&record.id)
        .bind(channel)
        .bind(payload.to_string())
        .bind(&now)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
        outbox_ids.push(id);
    }
    for kind in &commit.cancel_timer_kinds {
        sqlx::query(
            "UPDATE timers SET cancelled_at = ? WHERE conversation_id = ? AND kind = ?
             AND fired_at IS NULL AND cancelled_at IS NULL",
        )
        .bind(&now)
        .bind(&record.id)
        .bind(kind)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some(fired) = &commit.fired_timer {
        sqlx::query("UPDATE timers SET fired_at = ? WHERE id = ?")
            .bind(&now)
            .bind(fired)
            .execute(&mut *conn)
            .await
            .map_err(db("writing a commit"))?;
    }
    for timer in &commit.new_timers {
        sqlx::query(
            "INSERT INTO timers (id, conversation_id, kind, due_at, payload) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&timer.id)
        .bind(&timer.conversation_id)
        .bind(&timer.kind)
        .bind(time(timer.due_at))
        .bind(timer.payload.to_string())
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some(reference) = &commit.reference {
        sqlx::query(
            "INSERT INTO channel_references (channel, address, reference, updated_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (channel, address) DO UPDATE SET reference = excluded.reference, updated_at = excluded.updated_at",
        )
        .bind(&reference.channel)
        .bind(&reference.address)
        .bind(&reference.reference)
        .bind(&now)
        .execute(&mut *conn)
        .await
        .map_err(db("saving a conversation reference"))?;
    }
    if let Some(handoff) = &commit.open_handoff {
        sqlx::query(
            "INSERT INTO handoffs (ticket, conversation_id, reason, summary, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&handoff.ticket)
        .bind(&handoff.conversation_id)
        .bind(&handoff.reason)
        .bind(&handoff.summary)
        .bind(&handoff.status)
        .bind(time(handoff.created_at))
        .bind(&now)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some((ticket, status)) = &commit.handoff_status {
        sqlx::query("UPDATE handoffs SET status = ?, updated_at = ? WHERE ticket = ?")
            .bind(status)
            .bind(&now)
            .bind(ticket)
            .execute(&mut *conn)
            .await
            .map_err(db("writing a commit"))?;
    }
    Ok(CommitOutcome::Committed {
        version,
        outbox_ids,
    })
}
