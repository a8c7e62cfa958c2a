-- The sender looks for conversations with unsent rows after every commit.
-- Unsent rows are few; every row ever written is many: a partial index keeps
-- that search proportional to the queue, not to the history (measured at
-- 66k conversations: 88 % of serve's CPU went to the full-history scan).
-- The query names it (INDEXED BY): without ANALYZE statistics SQLite's
-- planner prefers the wider per-conversation index.
CREATE INDEX outbox_unsent ON outbox (channel, id, conversation_id) WHERE sent_at IS NULL;
