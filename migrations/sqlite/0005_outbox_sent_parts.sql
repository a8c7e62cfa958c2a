-- A row a channel splits into several messages (Teams splits a long
-- reply into several activities) records, while it is unsent, the ids of
-- the parts the platform accepted (a JSON list), so a redelivery after a
-- crash sends only the rest.
ALTER TABLE outbox ADD COLUMN platform_message_id TEXT;
