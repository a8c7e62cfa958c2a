-- madoguchi: conversations, their transcript, outgoing messages, timers and
-- handoff tickets. One row per conversation holds the engine state as JSON;
-- everything written for one input is one transaction.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    user_key    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    state       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX conversations_by_user ON conversations (channel, user_key, updated_at);

-- Inputs already handled (platform message ids, timer ids): never twice.
CREATE TABLE inbound_seen (
    conversation_id TEXT NOT NULL,
    inbound_key     TEXT NOT NULL,
    seen_at         TEXT NOT NULL,
    PRIMARY KEY (conversation_id, inbound_key)
);

CREATE TABLE transcript (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    at              TEXT NOT NULL,
    direction       TEXT NOT NULL,
    author          TEXT,
    message_id      TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id);

-- Transactional outbox: a sender per channel delivers in id order per
-- conversation and marks rows sent.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      TEXT,
    sent_at         TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, sent_at, id);

CREATE TABLE timers (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    fired_at        TEXT,
    cancelled_at    TEXT
);
CREATE INDEX timers_due ON timers (fired_at, cancelled_at, due_at);

CREATE TABLE handoffs (
    ticket          TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    reason          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX handoffs_by_conversation ON handoffs (conversation_id, created_at);
