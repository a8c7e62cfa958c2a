-- madoguchi on PostgreSQL: the same tables as migrations/sqlite/0001–0004
-- in one step (this backend starts with the schema SQLite reached).
--
-- Times are timestamptz (microseconds, as the SQLite store writes them).
-- The engine state, outbox payloads and timer payloads are kept as the JSON
-- text the desk wrote, exactly as in SQLite: the store treats them as opaque,
-- and text keeps them byte for byte (jsonb would reorder keys and refuse
-- "\u0000" in a string). Query them with `state::jsonb ->> 'node'`.
-- Everything written for one input is one transaction.

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    channel     TEXT NOT NULL,
    user_key    TEXT NOT NULL,
    locale      TEXT NOT NULL,
    state       TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    -- Where the person is reached on the channel (a Discord DM channel or
    -- private thread, a Teams conversation), set on creation.
    address     TEXT
);
CREATE INDEX conversations_by_user ON conversations (channel, user_key, updated_at);
CREATE INDEX conversations_by_address ON conversations (channel, address);

-- Inputs already handled (platform message ids, timer ids): never twice.
CREATE TABLE inbound_seen (
    conversation_id TEXT NOT NULL,
    inbound_key     TEXT NOT NULL,
    seen_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (conversation_id, inbound_key)
);

CREATE TABLE transcript (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    direction       TEXT NOT NULL,
    author          TEXT,
    message_id      TEXT,
    text            TEXT NOT NULL
);
CREATE INDEX transcript_by_conversation ON transcript (conversation_id, id);

-- Transactional outbox: a sender per channel delivers in id order per
-- conversation and marks rows sent (or failed, with the reason).
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    not_before      TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    failed_reason   TEXT
);
CREATE INDEX outbox_pending ON outbox (channel, sent_at, id);
CREATE INDEX outbox_pending_by_conversation ON outbox (channel, conversation_id, sent_at, id);

CREATE TABLE timers (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    payload         TEXT NOT NULL,
    fired_at        TIMESTAMPTZ,
    cancelled_at    TIMESTAMPTZ
);
CREATE INDEX timers_due ON timers (fired_at, cancelled_at, due_at);

CREATE TABLE handoffs (
    ticket          TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    reason          TEXT NOT NULL,
    summary         TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    -- Where agents discuss the ticket (a staff thread), once known.
    agent_address   TEXT
);
CREATE INDEX handoffs_by_conversation ON handoffs (conversation_id, created_at);
CREATE INDEX handoffs_by_agent_address ON handoffs (agent_address);

-- Conversation references for proactive messages (Teams: service URL,
-- conversation id, tenant, bot and user accounts), by channel and address.
CREATE TABLE channel_references (
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reference  TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (channel, address)
);
