-- Where a conversation is reached on its channel (a Discord DM channel or
-- private thread, a Teams conversation reference) and where its handoff
-- ticket is discussed by agents (a staff thread), plus failed deliveries.

ALTER TABLE conversations ADD COLUMN address TEXT;
CREATE INDEX conversations_by_address ON conversations (channel, address);

ALTER TABLE handoffs ADD COLUMN agent_address TEXT;
CREATE INDEX handoffs_by_agent_address ON handoffs (agent_address);

ALTER TABLE outbox ADD COLUMN failed_reason TEXT;
