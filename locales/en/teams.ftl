# Microsoft Teams-specific text.

teams-agent-only = Only help desk agents (configured accounts) can do that.
teams-not-a-ticket = No handoff matches this post. Please act in a handoff card's thread.
