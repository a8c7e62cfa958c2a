//! Every statement the SQLite store runs, in one place, named for what it
//! does. The schema they run against is `migrations/sqlite/`; each is
//! prepared once per connection and kept in its statement cache.

// ----- writes (the writer thread) --------------------------------------

/// Records an input; changes no row when the key was seen before.
pub const MARK_INBOUND_SEEN: &str =
    "INSERT INTO inbound_seen (conversation_id, inbound_key, seen_at) VALUES (?1, ?2, ?3)
     ON CONFLICT DO NOTHING";

/// Creates a conversation at version 1; changes no row when it exists.
pub const CREATE_CONVERSATION: &str =
    "INSERT INTO conversations (id, channel, user_key, locale, state, version, created_at, updated_at, address)
     VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8) ON CONFLICT DO NOTHING";

/// Moves a conversation on from the version the input read.
pub const UPDATE_CONVERSATION: &str =
    "UPDATE conversations SET state = ?1, locale = ?2, version = version + 1, updated_at = ?3
     WHERE id = ?4 AND version = ?5";

pub const ADD_TRANSCRIPT_LINE: &str =
    "INSERT INTO transcript (conversation_id, at, direction, author, message_id, text)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub const ADD_OUTBOX_ROW: &str =
    "INSERT INTO outbox (conversation_id, channel, payload, created_at) VALUES (?1, ?2, ?3, ?4)
     RETURNING id";

pub const CANCEL_TIMERS_OF_KIND: &str =
    "UPDATE timers SET cancelled_at = ?1 WHERE conversation_id = ?2 AND kind = ?3
     AND fired_at IS NULL AND cancelled_at IS NULL";

pub const MARK_TIMER_FIRED: &str = "UPDATE timers SET fired_at = ?1 WHERE id = ?2";

pub const ADD_TIMER: &str =
    "INSERT INTO timers (id, conversation_id, kind, due_at, payload) VALUES (?1, ?2, ?3, ?4, ?5)";

pub const SAVE_REFERENCE: &str =
    "INSERT INTO channel_references (channel, address, reference, updated_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (channel, address) DO UPDATE SET reference = excluded.reference, updated_at = excluded.updated_at";

pub const OPEN_HANDOFF: &str =
    "INSERT INTO handoffs (ticket, conversation_id, reason, summary, status, created_at, updated_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

pub const SET_HANDOFF_STATUS: &str =
    "UPDATE handoffs SET status = ?1, updated_at = ?2 WHERE ticket = ?3";

pub const SET_HANDOFF_ADDRESS: &str = "UPDATE handoffs SET agent_address = ?1 WHERE ticket = ?2";

pub const MARK_SENT: &str = "UPDATE outbox SET sent_at = ?1 WHERE id = ?2";

pub const MARK_FAILED: &str = "UPDATE outbox SET sent_at = ?1, failed_reason = ?2 WHERE id = ?3";

pub const RECORD_SENT_PARTS: &str =
    "UPDATE outbox SET platform_message_id = ?1 WHERE id = ?2 AND sent_at IS NULL";

// ----- reads (any thread, a reader connection) --------------------------

pub const SENT_PARTS: &str =
    "SELECT platform_message_id FROM outbox WHERE id = ?1 AND sent_at IS NULL";

pub const LOAD_CONVERSATION: &str = "SELECT * FROM conversations WHERE id = ?1";

pub const LATEST_FOR_USER: &str =
    "SELECT * FROM conversations WHERE channel = ?1 AND user_key = ?2 ORDER BY updated_at DESC LIMIT 1";

pub const CONVERSATIONS_OF_USER: &str =
    "SELECT * FROM conversations WHERE channel = ?1 AND user_key = ?2 ORDER BY updated_at DESC";

pub const DUE_TIMERS: &str =
    "SELECT * FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= ?1
     AND (?2 IS NULL OR conversation_id = ?2) ORDER BY due_at, id";

pub const NEXT_TIMER_DUE: &str =
    "SELECT MIN(due_at) FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL
     AND (?1 IS NULL OR conversation_id = ?1)";

pub const PENDING_CONVERSATIONS: &str =
    "SELECT conversation_id FROM outbox INDEXED BY outbox_unsent
     WHERE channel = ?1 AND sent_at IS NULL
     GROUP BY conversation_id ORDER BY MIN(id) LIMIT ?2";

pub const ROWS_AFTER: &str =
    "SELECT * FROM outbox WHERE conversation_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

pub const PENDING_OUTBOX: &str =
    "SELECT * FROM outbox WHERE channel = ?1 AND conversation_id = ?2 AND sent_at IS NULL
     ORDER BY id LIMIT ?3";

pub const TRANSCRIPT: &str = "SELECT * FROM transcript WHERE conversation_id = ?1 ORDER BY id";

pub const HANDOFFS_OF_CONVERSATION: &str =
    "SELECT * FROM handoffs WHERE conversation_id = ?1 ORDER BY created_at";

pub const HANDOFF: &str = "SELECT * FROM handoffs WHERE ticket = ?1";

pub const QUEUE_LENGTH: &str = "SELECT COUNT(*) FROM handoffs WHERE status = 'queued'";

pub const QUEUE_POSITION: &str = "SELECT COUNT(*) FROM handoffs WHERE status = 'queued'
     AND created_at <= (SELECT created_at FROM handoffs WHERE ticket = ?1)";

pub const FIND_BY_ADDRESS: &str =
    "SELECT * FROM conversations WHERE channel = ?1 AND address = ?2 ORDER BY updated_at DESC LIMIT 1";

pub const ADDRESS_OF: &str = "SELECT address FROM conversations WHERE id = ?1";

pub const FIND_HANDOFF_BY_ADDRESS: &str =
    "SELECT * FROM handoffs WHERE agent_address = ?1 ORDER BY created_at DESC LIMIT 1";

pub const REFERENCE: &str =
    "SELECT reference FROM channel_references WHERE channel = ?1 AND address = ?2";

pub const FAILED_REASON: &str = "SELECT failed_reason FROM outbox WHERE id = ?1";
