-- The senders look for conversations with unsent rows after every commit;
-- a partial index keeps that proportional to the queue, not the history.
CREATE INDEX outbox_unsent ON outbox (channel, id, conversation_id) WHERE sent_at IS NULL;
