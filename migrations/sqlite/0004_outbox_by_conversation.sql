-- The sender delivers per conversation (in order within one, concurrently
-- across them): find conversations with pending rows, then their rows.
CREATE INDEX outbox_pending_by_conversation ON outbox (channel, conversation_id, sent_at, id);
