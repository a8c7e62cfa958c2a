-- Conversation references for proactive messages (Teams: service URL,
-- conversation id, tenant, bot and user accounts), by channel and address.
CREATE TABLE channel_references (
    channel    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reference  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, address)
);
