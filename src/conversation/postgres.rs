//! PostgreSQL [`Store`]: selected by `storage.database = "postgres://…"`,
//! schema from `migrations/postgres/` (applied at open, under sqlx's
//! migration lock, so several instances may start at once).
//!
//! Same semantics as the SQLite store, checked by the same contract test
//! (`tests/store_contract.rs`). Each commit is one transaction (READ
//! COMMITTED): the inbound key is claimed with `INSERT … ON CONFLICT DO
//! NOTHING` (a concurrent commit with the same key waits for the first and
//! then sees it), and the optimistic version check is an `UPDATE … WHERE
//! version = $n` (a concurrent commit waits for the row lock and then finds
//! the version moved: a conflict). A commit future dropped half-way rolls
//! back when sqlx returns the connection to the pool.
//!
//! Several instances may share one database (issue 12):
//!
//! - **One input at a time per conversation, across instances**:
//!   [`Store::hold_conversation`] takes `pg_advisory_xact_lock` on the
//!   conversation in a transaction of its own, on a separate small pool
//!   (so holders waiting for a lock never starve the connections that load
//!   and commit). PostgreSQL grants waiters in the order they asked, and
//!   releases the lock when the holder's connection dies. The optimistic
//!   version check stays underneath as the last word.
//! - **A redelivered first message opens nothing**: a commit that creates
//!   a conversation at an address takes an advisory lock on the address
//!   and answers `Duplicate` when its inbound key was already handled by a
//!   conversation at that address (two instances receiving the same first
//!   activity).
//! - **Outbox leases**: a sender claims a conversation's unsent rows
//!   (`claimed_by`, `lease_until`) with `FOR UPDATE SKIP LOCKED`, under a
//!   `pg_try_advisory_xact_lock` on (channel, conversation) so two claims
//!   never split one conversation's rows; it renews the lease while it
//!   works, and a dead holder's rows are claimable once the lease ran out.
//! - **Timers fire once**: firing is a commit with the inbound key
//!   `timer:<id>`, so the second instance to fire a timer gets `Duplicate`
//!   in the same transaction that would have written its effects.
//!
//! - **Announcements** ([`Store::announce`], [`Store::listen`]): `NOTIFY`
//!   and `LISTEN` on a connection of its own, for what must reach another
//!   instance at once (a reply for a web page whose socket is there).
//!
//! Times are `timestamptz`. The engine state and the outbox and timer
//! payloads are kept as the JSON text the desk wrote (`text` columns), as in
//! SQLite: the store treats them as opaque, and `jsonb` would reorder keys
//! and refuse `\u0000` inside a string. Cast to `jsonb` to query them.
//! PostgreSQL refuses a NUL character in any `text` column; what people type
//! has its control characters removed before it reaches the store.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use super::store::*;

/// Whether `storage.database` names a PostgreSQL database
/// (`postgres://…` or `postgresql://…`) rather than an SQLite file.
pub fn is_postgres_url(database: &str) -> bool {
    let lower = database.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// The URL with its password replaced by `***` (in the user part and in a
/// `password=` query parameter), for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = url[..rest_start].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let query = &tail[q + 1..];
            let (query, fragment) = match query.find('#') {
                Some(h) => (&query[..h], &query[h..]),
                None => (query, ""),
            };
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    out
}

pub struct PostgresStore {
    pool: PgPool,
    /// Connections that only hold advisory locks for conversations being
    /// worked on ([`Store::hold_conversation`]); apart from `pool` so a
    /// holder never waits for a connection that another holder keeps.
    holds: PgPool,
}

/// Connections for conversation holds: inputs worked on at once by this
/// instance (more wait for a connection, in order).
const HOLD_CONNECTIONS: u32 = 16;

/// How often senders look for rows other instances left (their commits
/// wake nobody here); also bounds how late a dead holder's rows are seen
/// once its lease ran out.
const SHARED_POLL: Duration = Duration::from_secs(1);

/// How often a leader checks the connection holding its role
/// ([`Store::try_lead`]); a failure means the lock may be gone.
const LEADER_CHECK: Duration = Duration::from_secs(2);

/// Aborts the task (dropping the connection it owns) when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wraps a sqlx error with what the store was doing.
fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| StoreError::database(context, e)
}

fn json(text: &str, what: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`)
    /// and applies the migrations. Errors name the URL without its password.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let shown = redact_url(url);
        let options = PgConnectOptions::from_str(url.trim()).map_err(|e| {
            StoreError::database(
                format!(
                    "reading the PostgreSQL URL {shown} \
                     (expected postgres://user:password@host:port/database)"
                ),
                e,
            )
        })?;
        let unreachable = |e| {
            StoreError::database(
                format!(
                    "connecting to PostgreSQL at {shown} (check that the server runs, \
                     the database exists, and the user and password are right)"
                ),
                e,
            )
        };
        // One connection first: a wrong host, password or database fails at
        // once with the server's own reason (the pool would retry until its
        // acquire timeout).
        options
            .connect()
            .await
            .map_err(unreachable)?
            .close()
            .await
            .ok();
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        Self::with_pool(pool).await
    }

    /// Uses an existing pool and applies the migrations.
    pub async fn with_pool(pool: PgPool) -> StoreResult<PostgresStore> {
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::database("applying PostgreSQL migrations", e))?;
        let holds = PgPoolOptions::new()
            .max_connections(HOLD_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with((*pool.connect_options()).clone());
        Ok(PostgresStore { pool, holds })
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.holds.close().await;
        self.pool.close().await;
    }

    fn record_from_row(row: &PgRow) -> StoreResult<ConversationRecord> {
        let get = |e| StoreError::database("reading a conversation", e);
        let state: String = row.try_get("state").map_err(get)?;
        Ok(ConversationRecord {
            id: row.try_get("id").map_err(get)?,
            channel: row.try_get("channel").map_err(get)?,
            user_key: row.try_get("user_key").map_err(get)?,
            locale: row.try_get("locale").map_err(get)?,
            state: json(&state, "conversation state")?,
            version: row.try_get("version").map_err(get)?,
            created_at: row.try_get("created_at").map_err(get)?,
            updated_at: row.try_get("updated_at").map_err(get)?,
            address: row.try_get("address").map_err(get)?,
        })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn load(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        let row = sqlx::query("SELECT * FROM conversations WHERE id = $1")
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
            "SELECT * FROM conversations WHERE channel = $1 AND user_key = $2
             ORDER BY updated_at DESC LIMIT 1",
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
            "SELECT * FROM conversations WHERE channel = $1 AND user_key = $2
             ORDER BY updated_at DESC",
        )
        .bind(channel)
        .bind(user_key)
        .fetch_all(&self.pool)
        .await
        .map_err(db("conversations of a user"))?;
        rows.iter().map(Self::record_from_row).collect()
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        let mut tx = self.pool.begin().await.map_err(db("beginning a commit"))?;
        match write_commit(&mut tx, commit).await {
            Ok(outcome @ CommitOutcome::Committed { .. }) => {
                tx.commit().await.map_err(db("committing"))?;
                Ok(outcome)
            }
            Ok(outcome) => {
                tx.rollback().await.map_err(db("rolling back"))?;
                Ok(outcome)
            }
            Err(e) => {
                // The statement's error is the one worth reporting; dropping
                // the transaction rolls back if this cannot.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn due_timers(
        &self,
        now: DateTime<Utc>,
        conversation: Option<&str>,
    ) -> StoreResult<Vec<TimerRow>> {
        let rows = sqlx::query(
            "SELECT * FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= $1
             AND ($2::text IS NULL OR conversation_id = $2) ORDER BY due_at, id",
        )
        .bind(now)
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
        sqlx::query_scalar(
            "SELECT MIN(due_at) FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL
             AND ($1::text IS NULL OR conversation_id = $1)",
        )
        .bind(conversation)
        .fetch_one(&self.pool)
        .await
        .map_err(db("next timer due"))
    }

    async fn pending_conversations(&self, channel: &str, limit: i64) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT conversation_id FROM outbox WHERE channel = $1 AND sent_at IS NULL
             GROUP BY conversation_id ORDER BY MIN(id) LIMIT $2",
        )
        .bind(channel)
        .bind(limit.max(0))
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
            "SELECT * FROM outbox WHERE conversation_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(conversation)
        .bind(after)
        .bind(limit.max(0))
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
            "SELECT * FROM outbox WHERE channel = $1 AND conversation_id = $2 AND sent_at IS NULL
             ORDER BY id LIMIT $3",
        )
        .bind(channel)
        .bind(conversation)
        .bind(limit.max(0))
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
            "INSERT INTO outbox (conversation_id, channel, payload, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(conversation)
        .bind(channel)
        .bind(payload.to_string())
        .bind(at)
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
            .begin()
            .await
            .map_err(db("beginning an outbox write"))?;
        let seen = sqlx::query(
            "INSERT INTO inbound_seen (conversation_id, inbound_key, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(conversation)
        .bind(key)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db("adding a message to the outbox"))?;
        if seen.rows_affected() == 0 {
            tx.rollback().await.map_err(db("rolling back"))?;
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO outbox (conversation_id, channel, payload, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(conversation)
        .bind(channel)
        .bind(payload.to_string())
        .bind(at)
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
        sqlx::query("UPDATE outbox SET sent_at = $1 WHERE id = ANY($2)")
            .bind(at)
            .bind(ids)
            .execute(&self.pool)
            .await
            .map_err(db("marking messages sent"))?;
        Ok(())
    }

    async fn transcript(&self, conversation: &str) -> StoreResult<Vec<TranscriptEntry>> {
        let rows = sqlx::query("SELECT * FROM transcript WHERE conversation_id = $1 ORDER BY id")
            .bind(conversation)
            .fetch_all(&self.pool)
            .await
            .map_err(db("reading a transcript"))?;
        rows.iter()
            .map(|row| {
                let get = |e| StoreError::database("reading a transcript", e);
                let direction: String = row.try_get("direction").map_err(get)?;
                Ok(TranscriptEntry {
                    at: row.try_get("at").map_err(get)?,
                    direction: Direction::parse(&direction),
                    author: row.try_get("author").map_err(get)?,
                    message_id: row.try_get("message_id").map_err(get)?,
                    text: row.try_get("text").map_err(get)?,
                })
            })
            .collect()
    }

    async fn handoffs(&self, conversation: &str) -> StoreResult<Vec<HandoffRecord>> {
        let rows =
            sqlx::query("SELECT * FROM handoffs WHERE conversation_id = $1 ORDER BY created_at")
                .bind(conversation)
                .fetch_all(&self.pool)
                .await
                .map_err(db("reading handoff tickets"))?;
        rows.iter().map(handoff_from_row).collect()
    }

    async fn handoff(&self, ticket: &str) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query("SELECT * FROM handoffs WHERE ticket = $1")
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
             AND created_at <= (SELECT created_at FROM handoffs WHERE ticket = $1)",
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
            "SELECT * FROM conversations WHERE channel = $1 AND address = $2
             ORDER BY updated_at DESC LIMIT 1",
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
            sqlx::query_scalar("SELECT address FROM conversations WHERE id = $1")
                .bind(conversation)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("address of"))?;
        Ok(address.flatten())
    }

    async fn set_handoff_address(&self, ticket: &str, address: &str) -> StoreResult<()> {
        sqlx::query("UPDATE handoffs SET agent_address = $1 WHERE ticket = $2")
            .bind(address)
            .bind(ticket)
            .execute(&self.pool)
            .await
            .map_err(db("set handoff address"))?;
        Ok(())
    }

    async fn find_handoff_by_address(&self, address: &str) -> StoreResult<Option<HandoffRecord>> {
        let row = sqlx::query(
            "SELECT * FROM handoffs WHERE agent_address = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("find handoff by address"))?;
        row.as_ref().map(handoff_from_row).transpose()
    }

    async fn reference(&self, channel: &str, address: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT reference FROM channel_references WHERE channel = $1 AND address = $2",
        )
        .bind(channel)
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading a conversation reference"))
    }

    async fn failed_reason(&self, id: i64) -> StoreResult<Option<String>> {
        let reason: Option<Option<String>> =
            sqlx::query_scalar("SELECT failed_reason FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading why a message failed"))?;
        Ok(reason.flatten())
    }

    async fn mark_failed(&self, id: i64, reason: &str, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET sent_at = $1, failed_reason = $2 WHERE id = $3")
            .bind(at)
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("mark failed"))?;
        Ok(())
    }

    async fn hold_conversation(&self, conversation: &str) -> StoreResult<ConversationHold> {
        let mut tx = self
            .holds
            .begin()
            .await
            .map_err(db("holding a conversation across instances"))?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('conversation:' || $1, 0))")
            .bind(conversation)
            .execute(&mut *tx)
            .await
            .map_err(db("holding a conversation across instances"))?;
        // Dropping the transaction rolls it back (when sqlx returns the
        // connection to the pool), which releases the lock.
        Ok(ConversationHold::new(tx))
    }

    fn shared_poll_interval(&self) -> Option<Duration> {
        Some(SHARED_POLL)
    }

    async fn claimable_conversations(
        &self,
        channel: &str,
        holder: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT conversation_id FROM outbox WHERE channel = $1 AND sent_at IS NULL
             GROUP BY conversation_id
             HAVING NOT bool_or(claimed_by IS NOT NULL AND claimed_by <> $2 AND lease_until > $3)
             ORDER BY MIN(id) LIMIT $4",
        )
        .bind(channel)
        .bind(holder)
        .bind(now)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(db("listing conversations with messages to claim"))
    }

    async fn claim_outbox(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let context = "claiming outbox rows";
        let mut tx = self.pool.begin().await.map_err(db(context))?;
        // Another sender claiming this conversation right now: leave it to
        // that one (the advisory "skip locked").
        let ours: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_xact_lock(hashtextextended('outbox:' || $1 || ':' || $2, 0))",
        )
        .bind(channel)
        .bind(conversation)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(context))?;
        if !ours {
            tx.rollback().await.map_err(db(context))?;
            return Ok(Vec::new());
        }
        let held_elsewhere: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE channel = $1 AND conversation_id = $2
               AND sent_at IS NULL AND claimed_by <> $3 AND lease_until > $4)",
        )
        .bind(channel)
        .bind(conversation)
        .bind(holder)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(db(context))?;
        if held_elsewhere {
            tx.rollback().await.map_err(db(context))?;
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "UPDATE outbox SET claimed_by = $3, lease_until = $4
             WHERE id IN (SELECT id FROM outbox
                          WHERE channel = $1 AND conversation_id = $2 AND sent_at IS NULL
                          ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(channel)
        .bind(conversation)
        .bind(holder)
        .bind(lease_until)
        .bind(limit.max(0))
        .fetch_all(&mut *tx)
        .await
        .map_err(db(context))?;
        tx.commit().await.map_err(db(context))?;
        let mut claimed = rows
            .iter()
            .map(outbox_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|row| row.id);
        Ok(claimed)
    }

    async fn renew_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET lease_until = $4 WHERE channel = $1 AND conversation_id = $2
             AND claimed_by = $3 AND sent_at IS NULL",
        )
        .bind(channel)
        .bind(conversation)
        .bind(holder)
        .bind(lease_until)
        .execute(&self.pool)
        .await
        .map_err(db("renewing an outbox lease"))?;
        Ok(())
    }

    async fn release_outbox_lease(
        &self,
        channel: &str,
        conversation: &str,
        holder: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, lease_until = NULL
             WHERE channel = $1 AND conversation_id = $2 AND claimed_by = $3 AND sent_at IS NULL",
        )
        .bind(channel)
        .bind(conversation)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(db("releasing an outbox lease"))?;
        Ok(())
    }

    async fn mark_sent_with_receipt(
        &self,
        id: i64,
        platform_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET sent_at = $1, platform_message_id = COALESCE($2, platform_message_id)
             WHERE id = $3",
        )
        .bind(at)
        .bind(platform_id)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db("marking a message sent"))?;
        Ok(())
    }

    async fn platform_id(&self, id: i64) -> StoreResult<Option<String>> {
        let platform_id: Option<Option<String>> =
            sqlx::query_scalar("SELECT platform_message_id FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading a message's platform id"))?;
        Ok(platform_id.flatten())
    }

    async fn announce(&self, topic: &str, payload: &str) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(topic)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(db("announcing to the other instances"))?;
        Ok(())
    }

    async fn listen(
        &self,
        topic: &str,
    ) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Heard>>> {
        let context = "listening to the other instances";
        // Its own connection (LISTEN lives as long as the session); sqlx
        // makes it again when it is lost, and says so (`try_recv` → None).
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool)
            .await
            .map_err(db(context))?;
        listener.listen(topic).await.map_err(db(context))?;
        let (heard, receiver) = tokio::sync::mpsc::unbounded_channel();
        let topic = topic.to_string();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    next = listener.try_recv() => next,
                    _ = heard.closed() => return,
                };
                let said = match next {
                    Ok(Some(notification)) => Heard::Said(notification.payload().to_string()),
                    Ok(None) => {
                        tracing::warn!(topic, "PostgreSQL: the listening connection was lost; listening again (what was announced meanwhile is caught up)");
                        Heard::MayHaveMissed
                    }
                    Err(e) => {
                        tracing::error!(topic, error = %e, "PostgreSQL: listening failed; trying again in a second");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Heard::MayHaveMissed
                    }
                };
                if heard.send(said).is_err() {
                    return;
                }
            }
        });
        Ok(Some(receiver))
    }

    async fn try_lead(&self, role: &str) -> StoreResult<Option<Leadership>> {
        let context = "taking a role among instances";
        // A connection of its own, outside the pools: the session advisory
        // lock lives as long as it does, and a dead process's connection
        // (hence its lock) is ended by the server.
        let mut connection = (*self.pool.connect_options())
            .clone()
            .connect()
            .await
            .map_err(db(context))?;
        let ours: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended('leader:' || $1, 0))")
                .bind(role)
                .fetch_one(&mut connection)
                .await
                .map_err(db(context))?;
        if !ours {
            connection.close().await.ok();
            return Ok(None);
        }
        let (lost, lost_rx) = tokio::sync::watch::channel(false);
        let role = role.to_string();
        let keeper = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(LEADER_CHECK) => {}
                    _ = lost.closed() => break,
                }
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut connection).await {
                    tracing::error!(role, error = %e, "PostgreSQL: the connection holding this instance's role failed; giving the role up");
                    let _ = lost.send(true);
                    return;
                }
            }
            connection.close().await.ok();
        });
        Ok(Some(Leadership::new(AbortOnDrop(keeper), lost_rx)))
    }

    async fn record_sent_parts(&self, id: i64, parts: &[Option<String>]) -> StoreResult<()> {
        sqlx::query("UPDATE outbox SET platform_message_id = $1 WHERE id = $2 AND sent_at IS NULL")
            .bind(sent_parts_to_text(parts))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("recording the parts of a message sent"))?;
        Ok(())
    }

    async fn sent_parts(&self, id: i64) -> StoreResult<Vec<Option<String>>> {
        let text: Option<Option<String>> = sqlx::query_scalar(
            "SELECT platform_message_id FROM outbox WHERE id = $1 AND sent_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("reading the parts of a message sent"))?;
        Ok(sent_parts_from_text(text.flatten().as_deref()))
    }
}

fn outbox_from_row(row: &PgRow) -> StoreResult<OutboxMessage> {
    let get = |e| StoreError::database("reading outbox rows", e);
    let payload: String = row.try_get("payload").map_err(get)?;
    Ok(OutboxMessage {
        id: row.try_get("id").map_err(get)?,
        conversation_id: row.try_get("conversation_id").map_err(get)?,
        channel: row.try_get("channel").map_err(get)?,
        // As in SQLite: a payload that is not JSON is delivered as `null`
        // and refused by the sender (marked failed), never blocking the rows
        // behind it.
        payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
        created_at: row.try_get("created_at").map_err(get)?,
        attempts: row.try_get("attempts").map_err(get)?,
    })
}

fn handoff_from_row(row: &PgRow) -> StoreResult<HandoffRecord> {
    let get = |e| StoreError::database("reading a handoff ticket", e);
    Ok(HandoffRecord {
        ticket: row.try_get("ticket").map_err(get)?,
        conversation_id: row.try_get("conversation_id").map_err(get)?,
        reason: row.try_get("reason").map_err(get)?,
        summary: row.try_get("summary").map_err(get)?,
        status: row.try_get("status").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        agent_address: row.try_get("agent_address").map_err(get)?,
    })
}

fn timer_from_row(row: &PgRow) -> StoreResult<TimerRow> {
    let get = |e| StoreError::database("reading a timer", e);
    let payload: String = row.try_get("payload").map_err(get)?;
    Ok(TimerRow {
        id: row.try_get("id").map_err(get)?,
        conversation_id: row.try_get("conversation_id").map_err(get)?,
        kind: row.try_get("kind").map_err(get)?,
        due_at: row.try_get("due_at").map_err(get)?,
        payload: json(&payload, "timer payload")?,
    })
}

/// Everything of one commit, inside the caller's transaction. Any outcome
/// but `Committed` is rolled back by the caller.
async fn write_commit(conn: &mut sqlx::PgConnection, commit: Commit) -> StoreResult<CommitOutcome> {
    let record = &commit.conversation;
    let now = record.updated_at;
    if let (None, Some(key), Some(address)) = (
        commit.expected_version,
        &commit.inbound_key,
        &record.address,
    ) {
        // A first message opens a conversation under a fresh id, so the
        // per-conversation key check below cannot see that another instance
        // already opened one for the same message: look at the address.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('address:' || $1 || ':' || $2, 0))",
        )
        .bind(&record.channel)
        .bind(address)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
        let seen: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM inbound_seen s JOIN conversations c
               ON c.id = s.conversation_id
             WHERE s.inbound_key = $3 AND c.channel = $1 AND c.address = $2)",
        )
        .bind(&record.channel)
        .bind(address)
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
        if seen {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    if let Some(key) = &commit.inbound_key {
        let inserted = sqlx::query(
            "INSERT INTO inbound_seen (conversation_id, inbound_key, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&record.id)
        .bind(key)
        .bind(now)
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
                "INSERT INTO conversations
                   (id, channel, user_key, locale, state, version, created_at, updated_at, address)
                 VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&record.id)
            .bind(&record.channel)
            .bind(&record.user_key)
            .bind(&record.locale)
            .bind(&state)
            .bind(record.created_at)
            .bind(now)
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
                "UPDATE conversations SET state = $1, locale = $2, version = version + 1,
                   updated_at = $3
                 WHERE id = $4 AND version = $5",
            )
            .bind(&state)
            .bind(&record.locale)
            .bind(now)
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
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&record.id)
        .bind(line.at)
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
            "INSERT INTO outbox (conversation_id, channel, payload, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(&record.id)
        .bind(channel)
        .bind(payload.to_string())
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
        outbox_ids.push(id);
    }
    if !commit.cancel_timer_kinds.is_empty() {
        sqlx::query(
            "UPDATE timers SET cancelled_at = $1 WHERE conversation_id = $2 AND kind = ANY($3)
             AND fired_at IS NULL AND cancelled_at IS NULL",
        )
        .bind(now)
        .bind(&record.id)
        .bind(&commit.cancel_timer_kinds)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some(fired) = &commit.fired_timer {
        sqlx::query("UPDATE timers SET fired_at = $1 WHERE id = $2")
            .bind(now)
            .bind(fired)
            .execute(&mut *conn)
            .await
            .map_err(db("writing a commit"))?;
    }
    for timer in &commit.new_timers {
        sqlx::query(
            "INSERT INTO timers (id, conversation_id, kind, due_at, payload)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&timer.id)
        .bind(&timer.conversation_id)
        .bind(&timer.kind)
        .bind(timer.due_at)
        .bind(timer.payload.to_string())
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some(reference) = &commit.reference {
        sqlx::query(
            "INSERT INTO channel_references (channel, address, reference, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (channel, address)
             DO UPDATE SET reference = excluded.reference, updated_at = excluded.updated_at",
        )
        .bind(&reference.channel)
        .bind(&reference.address)
        .bind(&reference.reference)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db("saving a conversation reference"))?;
    }
    if let Some(handoff) = &commit.open_handoff {
        sqlx::query(
            "INSERT INTO handoffs
               (ticket, conversation_id, reason, summary, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&handoff.ticket)
        .bind(&handoff.conversation_id)
        .bind(&handoff.reason)
        .bind(&handoff.summary)
        .bind(&handoff.status)
        .bind(handoff.created_at)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(db("writing a commit"))?;
    }
    if let Some((ticket, status)) = &commit.handoff_status {
        sqlx::query("UPDATE handoffs SET status = $1, updated_at = $2 WHERE ticket = $3")
            .bind(status)
            .bind(now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_told_from_file_paths() {
        assert!(is_postgres_url("postgres://u@localhost/db"));
        assert!(is_postgres_url(
            "postgresql://u:p@db.example:5432/madoguchi"
        ));
        assert!(is_postgres_url("PostgreSQL://host/db"));
        assert!(!is_postgres_url("madoguchi.db"));
        assert!(!is_postgres_url("/var/lib/madoguchi/postgres.db"));
        assert!(!is_postgres_url("sqlite://madoguchi.db"));
    }

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("postgres://madoguchi:s3cr%40t@db:5432/desk?sslmode=require"),
            "postgres://madoguchi:***@db:5432/desk?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/desk?user=m&password=hunter2&sslmode=disable"),
            "postgresql://db/desk?user=m&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://m@localhost/desk"),
            "postgres://m@localhost/desk"
        );
        assert_eq!(
            redact_url("postgres://m:p@ss@localhost/desk"),
            "postgres://m:***@localhost/desk"
        );
        assert_eq!(redact_url("postgres://localhost"), "postgres://localhost");
    }
}
