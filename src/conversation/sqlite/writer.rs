//! Group commit: one thread owns the only writing connection and applies
//! every write that is ready, from any number of conversations, in one
//! `BEGIN IMMEDIATE … COMMIT`, so one fsync covers the whole batch.
//!
//! Callers hand a whole write (a [`Commit`], a batch of ids to mark sent…)
//! over a channel and await its outcome: one hand-over to this thread per
//! write and one wake-up back, never one per statement. Each write runs
//! inside its own `SAVEPOINT`: a write that ends as a duplicate, a
//! conflict or an error is rolled back to it alone and the others of the
//! batch are kept. No caller hears anything before the batch's `COMMIT`
//! returned, so an outcome reported `Committed` is on disk. Writes are
//! applied in the order they arrived, so the writes of one conversation
//! keep their order.
//!
//! Should SQLite itself roll the whole transaction back in the middle of a
//! batch (it may, on I/O errors or a full disk), the write that caused it
//! gets the error and the batch is applied again without it.
//!
//! A write once handed over is applied even if its caller stops waiting (a
//! client that disconnects): the input was received, and its outcome is
//! kept like any other. When every handle is gone the thread applies what
//! is queued and ends.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::cache::Cache;
use super::sql;
use crate::conversation::store::{Commit, CommitOutcome, StoreError, StoreResult};

/// Most writes applied in one transaction: a bound on how long the first
/// of a batch waits for the others.
const MAX_BATCH: usize = 256;

/// One write, with its values already in the form stored.
#[derive(Debug)]
pub enum Write {
    /// A commit and its conversation's state as stored (JSON text, made on
    /// the caller's thread by [`Write::commit`]).
    Commit {
        commit: Box<Commit>,
        state: String,
    },
    Enqueue {
        conversation: String,
        channel: String,
        payload: String,
        at: String,
    },
    EnqueueOnce {
        conversation: String,
        channel: String,
        key: String,
        payload: String,
        at: String,
    },
    MarkSent {
        ids: Vec<i64>,
        at: String,
    },
    MarkFailed {
        id: i64,
        reason: String,
        at: String,
    },
    RecordSentParts {
        id: i64,
        parts: String,
    },
    SetHandoffAddress {
        ticket: String,
        address: String,
    },
}

impl Write {
    pub fn commit(commit: Commit) -> Write {
        Write::Commit {
            state: commit.conversation.state.to_string(),
            commit: Box::new(commit),
        }
    }
}

/// What a write did.
#[derive(Debug, PartialEq)]
pub enum Written {
    Commit(CommitOutcome),
    /// The id of the outbox row added; `None`: the key was seen before.
    Enqueued(Option<i64>),
    Done,
}

impl Written {
    /// Whether the write's changes are kept (released into the batch) or
    /// rolled back to its savepoint.
    fn keeps_changes(&self) -> bool {
        match self {
            Written::Commit(outcome) => matches!(outcome, CommitOutcome::Committed { .. }),
            Written::Enqueued(id) => id.is_some(),
            Written::Done => true,
        }
    }
}

enum Request {
    Write {
        write: Write,
        reply: oneshot::Sender<StoreResult<Written>>,
    },
    /// Apply what came before, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The handle callers write through; cheap to share (the channel's sender
/// is `Sync`).
pub struct Writer {
    requests: mpsc::Sender<Request>,
}

fn closed() -> StoreError {
    StoreError::Unavailable(
        "the SQLite store is closed (serve is shutting down); the write was not made".into(),
    )
}

impl Writer {
    /// Starts the writer thread on `connection`.
    /// Committed conversations are put in `cache` before their callers
    /// hear of them.
    pub fn start(connection: Connection, cache: Arc<Cache>) -> std::io::Result<Writer> {
        let (requests, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(connection, queue, &cache))?;
        Ok(Writer { requests })
    }

    /// Hands `write` to the writer thread; answers once its batch is
    /// committed (or failed).
    pub async fn write(&self, write: Write) -> StoreResult<Written> {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(Request::Write { write, reply })
            .map_err(|_| closed())?;
        outcome.await.map_err(|_| closed())?
    }

    /// Applies what is queued, then closes the connection (the last one
    /// to close checkpoints the WAL). Later writes are refused.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.requests.send(Request::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

/// The writer thread: waits for a write, takes every other one that is
/// ready (up to [`MAX_BATCH`]), applies them together.
fn run(mut connection: Connection, queue: mpsc::Receiver<Request>, cache: &Cache) {
    let mut closing = None;
    while closing.is_none() {
        let Ok(first) = queue.recv() else {
            break;
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Write { write, reply } => batch.push((write, reply)),
                Request::Close(done) => {
                    closing = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = queue.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            apply_batch(&mut connection, batch, cache);
        }
    }
    drop(connection);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// A batch's failure, given to each of its writes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BatchFailed(String);

/// How one try at a batch ended.
enum Attempt {
    /// Committed: every write has its outcome.
    Committed,
    /// SQLite rolled the transaction back because of one write (now failed
    /// in `outcomes`): try the others again.
    Again,
    /// The transaction could not begin or commit: nothing was written.
    Failed(String),
}

fn apply_batch(
    connection: &mut Connection,
    batch: Vec<(Write, oneshot::Sender<StoreResult<Written>>)>,
    cache: &Cache,
) {
    let mut outcomes: Vec<Option<StoreResult<Written>>> = batch.iter().map(|_| None).collect();
    // Writes that failed for good are not tried again.
    let mut failed = vec![false; batch.len()];
    loop {
        match attempt(connection, &batch, &mut outcomes, &mut failed) {
            Attempt::Committed => break,
            Attempt::Again => continue,
            Attempt::Failed(why) => {
                tracing::error!(writes = batch.len(), error = %why, "SQLite: a batch of writes failed; nothing of it was written (check the disk and the database file)");
                for (index, outcome) in outcomes.iter_mut().enumerate() {
                    if !failed[index] {
                        *outcome = Some(Err(StoreError::database(
                            "committing a batch of writes",
                            BatchFailed(why.clone()),
                        )));
                    }
                }
                break;
            }
        }
    }
    // Only outcomes of a committed batch are still `Ok` here. Readers find
    // the whole batch in the cache before any caller hears of it.
    let (writes, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    for (write, outcome) in writes.into_iter().zip(&outcomes) {
        if let (Write::Commit { commit, state }, Some(Ok(Written::Commit(result)))) =
            (write, outcome)
        {
            match result {
                CommitOutcome::Committed { version, .. } => {
                    cache.committed(*commit, state, *version)
                }
                CommitOutcome::Conflict => cache.conflicted(&commit.conversation.id),
                CommitOutcome::Duplicate => {}
            }
        }
    }
    for (reply, outcome) in replies.into_iter().zip(outcomes) {
        let _ = reply.send(outcome.unwrap_or_else(|| Err(closed())));
    }
}

fn attempt(
    connection: &mut Connection,
    batch: &[(Write, oneshot::Sender<StoreResult<Written>>)],
    outcomes: &mut [Option<StoreResult<Written>>],
    failed: &mut [bool],
) -> Attempt {
    if let Err(error) = control(connection, "BEGIN IMMEDIATE") {
        return Attempt::Failed(format!("beginning a transaction: {error}"));
    }
    for (index, (write, _)) in batch.iter().enumerate() {
        if failed[index] {
            continue;
        }
        if let Err(error) = control(connection, "SAVEPOINT write") {
            rollback(connection);
            return Attempt::Failed(format!("starting a savepoint: {error}"));
        }
        let outcome = apply(connection, write);
        if connection.is_autocommit() {
            // SQLite ended the whole transaction: this write is to blame.
            failed[index] = true;
            outcomes[index] = Some(match outcome {
                Err(error) => Err(error),
                Ok(_) => Err(StoreError::database(
                    "writing",
                    BatchFailed("SQLite rolled the transaction back".into()),
                )),
            });
            return Attempt::Again;
        }
        let keep = matches!(&outcome, Ok(written) if written.keeps_changes());
        let ended = if keep {
            control(connection, "RELEASE write")
        } else {
            control(connection, "ROLLBACK TO write")
                .and_then(|()| control(connection, "RELEASE write"))
        };
        if let Err(error) = ended {
            rollback(connection);
            failed[index] = true;
            outcomes[index] = Some(Err(StoreError::database("ending a savepoint", error)));
            return Attempt::Again;
        }
        if outcome.is_err() {
            failed[index] = true;
        }
        outcomes[index] = Some(outcome);
    }
    match control(connection, "COMMIT") {
        Ok(()) => Attempt::Committed,
        Err(error) => {
            rollback(connection);
            Attempt::Failed(format!("committing: {error}"))
        }
    }
}

/// Runs a transaction-control statement (kept prepared, like the others).
fn control(connection: &Connection, statement: &str) -> rusqlite::Result<()> {
    connection
        .prepare_cached(statement)?
        .execute([])
        .map(|_| ())
}

fn rollback(connection: &Connection) {
    if !connection.is_autocommit() {
        if let Err(error) = connection.execute_batch("ROLLBACK") {
            tracing::error!(%error, "SQLite: rolling back a failed batch failed");
        }
    }
}

/// Wraps a rusqlite error with what the writer was doing.
fn db(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::database(context, e)
}

fn apply(connection: &Connection, write: &Write) -> StoreResult<Written> {
    match write {
        Write::Commit { commit, state } => {
            write_commit(connection, commit, state).map(Written::Commit)
        }
        Write::Enqueue {
            conversation,
            channel,
            payload,
            at,
        } => add_outbox_row(connection, conversation, channel, payload, at)
            .map(|id| Written::Enqueued(Some(id)))
            .map_err(db("adding a message to the outbox")),
        Write::EnqueueOnce {
            conversation,
            channel,
            key,
            payload,
            at,
        } => {
            let seen = connection
                .prepare_cached(sql::MARK_INBOUND_SEEN)
                .and_then(|mut s| s.execute(params![conversation, key, at]))
                .map_err(db("adding a message to the outbox"))?;
            if seen == 0 {
                return Ok(Written::Enqueued(None));
            }
            add_outbox_row(connection, conversation, channel, payload, at)
                .map(|id| Written::Enqueued(Some(id)))
                .map_err(db("adding a message to the outbox"))
        }
        Write::MarkSent { ids, at } => {
            let mut statement = connection
                .prepare_cached(sql::MARK_SENT)
                .map_err(db("marking messages sent"))?;
            for id in ids {
                statement
                    .execute(params![at, id])
                    .map_err(db("marking messages sent"))?;
            }
            Ok(Written::Done)
        }
        Write::MarkFailed { id, reason, at } => connection
            .prepare_cached(sql::MARK_FAILED)
            .and_then(|mut s| s.execute(params![at, reason, id]))
            .map(|_| Written::Done)
            .map_err(db("marking a message failed")),
        Write::RecordSentParts { id, parts } => connection
            .prepare_cached(sql::RECORD_SENT_PARTS)
            .and_then(|mut s| s.execute(params![parts, id]))
            .map(|_| Written::Done)
            .map_err(db("recording the parts of a message sent")),
        Write::SetHandoffAddress { ticket, address } => connection
            .prepare_cached(sql::SET_HANDOFF_ADDRESS)
            .and_then(|mut s| s.execute(params![address, ticket]))
            .map(|_| Written::Done)
            .map_err(db("setting a handoff's address")),
    }
}

fn add_outbox_row(
    connection: &Connection,
    conversation: &str,
    channel: &str,
    payload: &str,
    at: &str,
) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(sql::ADD_OUTBOX_ROW)?
        .query_row(params![conversation, channel, payload, at], |row| {
            row.get(0)
        })
}

/// Everything one input produced, inside the batch's transaction (the
/// caller's savepoint undoes it unless it ends `Committed`).
fn write_commit(
    connection: &Connection,
    commit: &Commit,
    state: &str,
) -> StoreResult<CommitOutcome> {
    let record = &commit.conversation;
    let now = super::time(record.updated_at);
    let run = |sql: &str, values: &[&dyn rusqlite::ToSql]| -> StoreResult<usize> {
        connection
            .prepare_cached(sql)
            .and_then(|mut statement| statement.execute(values))
            .map_err(db("writing a commit"))
    };
    if let Some(key) = &commit.inbound_key {
        if run(sql::MARK_INBOUND_SEEN, params![record.id, key, now])? == 0 {
            return Ok(CommitOutcome::Duplicate);
        }
    }
    let version = match commit.expected_version {
        None => {
            let created = run(
                sql::CREATE_CONVERSATION,
                params![
                    record.id,
                    record.channel,
                    record.user_key,
                    record.locale,
                    state,
                    super::time(record.created_at),
                    now,
                    record.address,
                ],
            )?;
            if created == 0 {
                return Ok(CommitOutcome::Conflict);
            }
            1
        }
        Some(expected) => {
            let updated = run(
                sql::UPDATE_CONVERSATION,
                params![state, record.locale, now, record.id, expected],
            )?;
            if updated == 0 {
                return Ok(CommitOutcome::Conflict);
            }
            expected + 1
        }
    };
    for line in &commit.transcript {
        run(
            sql::ADD_TRANSCRIPT_LINE,
            params![
                record.id,
                super::time(line.at),
                line.direction.as_str(),
                line.author,
                line.message_id,
                line.text,
            ],
        )?;
    }
    let mut outbox_ids = Vec::with_capacity(commit.outbox.len());
    for (channel, payload) in &commit.outbox {
        let id = add_outbox_row(connection, &record.id, channel, &payload.to_string(), &now)
            .map_err(db("writing a commit"))?;
        outbox_ids.push(id);
    }
    for kind in &commit.cancel_timer_kinds {
        run(sql::CANCEL_TIMERS_OF_KIND, params![now, record.id, kind])?;
    }
    if let Some(fired) = &commit.fired_timer {
        run(sql::MARK_TIMER_FIRED, params![now, fired])?;
    }
    for timer in &commit.new_timers {
        run(
            sql::ADD_TIMER,
            params![
                timer.id,
                timer.conversation_id,
                timer.kind,
                super::time(timer.due_at),
                timer.payload.to_string(),
            ],
        )?;
    }
    if let Some(reference) = &commit.reference {
        connection
            .prepare_cached(sql::SAVE_REFERENCE)
            .and_then(|mut s| {
                s.execute(params![
                    reference.channel,
                    reference.address,
                    reference.reference,
                    now
                ])
            })
            .map_err(db("saving a conversation reference"))?;
    }
    if let Some(handoff) = &commit.open_handoff {
        run(
            sql::OPEN_HANDOFF,
            params![
                handoff.ticket,
                handoff.conversation_id,
                handoff.reason,
                handoff.summary,
                handoff.status,
                super::time(handoff.created_at),
                now,
            ],
        )?;
    }
    if let Some((ticket, status)) = &commit.handoff_status {
        run(sql::SET_HANDOFF_STATUS, params![status, now, ticket])?;
    }
    Ok(CommitOutcome::Committed {
        version,
        outbox_ids,
    })
}

/// Opens the writing connection: `synchronous = FULL` (a commit is on disk
/// when it returns), foreign keys on, and a busy timeout for another
/// process holding the file. Savepoints journal into memory
/// (`temp_store`), not a temporary file; the WAL is checkpointed every
/// 8,000 pages (32 MB) instead of 1,000, so a page rewritten by many
/// batches (a hot index page) is copied back to the database once per
/// checkpoint, not eight times.
pub fn open_connection(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.set_prepared_statement_cache_capacity(32);
    connection.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 8000;",
    )?;
    // `journal_mode` answers with a row; make sure WAL is what we got.
    let mode: Option<String> = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .optional()?;
    if mode.as_deref() != Some("wal") {
        tracing::warn!(mode = ?mode, "SQLite: the database is not in WAL mode; readers will wait for the writer");
    }
    Ok(connection)
}

#[cfg(test)]
mod tests {
    //! One batch applied directly, so what shares a transaction is known.

    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::conversation::store::{ConversationRecord, TimerRow};

    fn commit(id: &str, expected: Option<i64>, key: &str) -> Commit {
        let now = Utc::now();
        let mut commit = Commit::new(
            ConversationRecord {
                id: id.into(),
                channel: "console".into(),
                user_key: "u".into(),
                locale: "ja".into(),
                state: json!({ "key": key }),
                version: 0,
                created_at: now,
                updated_at: now,
                address: None,
            },
            expected,
        );
        commit.inbound_key = Some(key.into());
        commit
            .outbox
            .push(("console".into(), json!({ "key": key })));
        commit
    }

    fn timer(id: &str, conversation: &str) -> TimerRow {
        TimerRow {
            id: id.into(),
            conversation_id: conversation.into(),
            kind: "lockout".into(),
            due_at: Utc::now(),
            payload: json!({}),
        }
    }

    fn count(connection: &Connection, sql: &str, value: &str) -> i64 {
        connection
            .query_row(sql, [value], |row| row.get(0))
            .expect("count")
    }

    #[tokio::test]
    async fn one_batch_keeps_every_write_but_the_ones_that_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("batch.db");
        super::super::migrate(&path).await.expect("migrate");
        let mut connection = open_connection(&path).expect("open");

        let mut with_timer = commit("b", None, "b-1");
        with_timer.new_timers.push(timer("t-taken", "b"));
        let mut taken_timer = commit("c", None, "c-1");
        taken_timer.new_timers.push(timer("t-taken", "c"));
        let writes = vec![
            Write::commit(commit("a", None, "a-1")),
            Write::commit(with_timer),
            // Fails with an error: the timer id is taken (by the write above,
            // in this same transaction).
            Write::commit(taken_timer),
            Write::commit(commit("a", None, "a-again")),
            Write::commit(commit("a", Some(1), "a-1")),
            // Sees the first write of the batch.
            Write::commit(commit("a", Some(1), "a-2")),
            Write::EnqueueOnce {
                conversation: "a".into(),
                channel: "console".into(),
                key: "a-1".into(),
                payload: "{}".into(),
                at: "2026-01-01T00:00:00Z".into(),
            },
            Write::MarkSent {
                ids: vec![1],
                at: "2026-01-01T00:00:00Z".into(),
            },
        ];
        let mut outcomes = Vec::new();
        let batch = writes
            .into_iter()
            .map(|write| {
                let (reply, outcome) = oneshot::channel();
                outcomes.push(outcome);
                (write, reply)
            })
            .collect();
        let cache = Cache::default();
        apply_batch(&mut connection, batch, &cache);

        let mut results = Vec::new();
        for outcome in outcomes {
            results.push(outcome.await.expect("every write is answered"));
        }
        let committed = |version: i64| move |r: &StoreResult<Written>| matches!(r, Ok(Written::Commit(CommitOutcome::Committed { version: v, .. })) if *v == version);
        assert!(committed(1)(&results[0]), "{:?}", results[0]);
        assert!(committed(1)(&results[1]), "{:?}", results[1]);
        assert!(results[2].is_err(), "{:?}", results[2]);
        assert!(
            matches!(results[3], Ok(Written::Commit(CommitOutcome::Conflict))),
            "{:?}",
            results[3]
        );
        assert!(
            matches!(results[4], Ok(Written::Commit(CommitOutcome::Duplicate))),
            "{:?}",
            results[4]
        );
        assert!(committed(2)(&results[5]), "{:?}", results[5]);
        assert!(
            matches!(results[6], Ok(Written::Enqueued(None))),
            "{:?}",
            results[6]
        );
        assert!(matches!(results[7], Ok(Written::Done)), "{:?}", results[7]);

        // The failed write left nothing, not even its key; the others are
        // all there.
        let c = |sql: &str, value: &str| count(&connection, sql, value);
        assert_eq!(
            c("SELECT COUNT(*) FROM conversations WHERE id = ?1", "c"),
            0
        );
        assert_eq!(
            c(
                "SELECT COUNT(*) FROM outbox WHERE conversation_id = ?1",
                "c"
            ),
            0
        );
        assert_eq!(
            c(
                "SELECT COUNT(*) FROM inbound_seen WHERE conversation_id = ?1",
                "c"
            ),
            0
        );
        assert_eq!(c("SELECT version FROM conversations WHERE id = ?1", "a"), 2);
        assert_eq!(
            c(
                "SELECT COUNT(*) FROM outbox WHERE conversation_id = ?1",
                "a"
            ),
            2
        );
        assert_eq!(
            c(
                "SELECT COUNT(*) FROM timers WHERE conversation_id = ?1",
                "b"
            ),
            1
        );
        assert_eq!(
            c(
                "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND channel = ?1",
                "console"
            ),
            1
        );
        assert!(
            connection.is_autocommit(),
            "the batch's transaction is over"
        );
        // What readers will be given: what was committed, nothing of the
        // failed write, and nothing of "a", whose second creation was a
        // conflict (the next read of it asks the database).
        assert_eq!(cache.conversation("b").map(|r| r.version), Some(1));
        assert_eq!(cache.conversation("c"), None);
        assert_eq!(cache.conversation("a"), None);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_commit_fails_every_write_in_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("locked.db");
        super::super::migrate(&path).await.expect("migrate");
        let mut connection = open_connection(&path).expect("open");
        connection
            .busy_timeout(Duration::from_millis(1))
            .expect("timeout");
        // Another connection holds the write lock: BEGIN IMMEDIATE fails.
        let other = Connection::open(&path).expect("other");
        other.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let (reply, outcome) = oneshot::channel();
        let cache = Cache::default();
        apply_batch(
            &mut connection,
            vec![(Write::commit(commit("x", None, "x-1")), reply)],
            &cache,
        );
        let error = outcome.await.expect("answered").expect_err("not written");
        assert_eq!(
            cache.conversation("x"),
            None,
            "nothing committed is remembered"
        );
        assert!(error.to_string().contains("batch"), "{error}");
        other.execute_batch("ROLLBACK").expect("unlock");
    }
}
