-- Several instances on one database (issue 12).
--
-- Outbox leases: a sender claims a conversation's unsent rows for itself
-- (claimed_by: the sender's holder id, lease_until: until when), renews the
-- lease while it works, and another instance may claim them once the lease
-- ran out (the holder died). Rows of one conversation have one holder at a
-- time, so they still go out in order.
--
-- platform_message_id: the platform's id(s) of what a row became (a Teams
-- activity id, a Discord message id), when the channel reports them.
ALTER TABLE outbox
    ADD COLUMN claimed_by          TEXT,
    ADD COLUMN lease_until         TIMESTAMPTZ,
    ADD COLUMN platform_message_id TEXT;

-- A redelivered first message (the platform's id, before the conversation
-- it opened is known) is found by its key at the same address.
CREATE INDEX inbound_seen_by_key ON inbound_seen (inbound_key);
