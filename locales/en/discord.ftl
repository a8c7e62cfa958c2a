# Discord-specific text (slash command descriptions, thread names, …).

discord-command-mfa-description = Get help when MFA by phone call or SMS does not work
discord-command-claim-description = Take this conversation (agents only)
discord-command-release-description = Hand the conversation back to the bot (agents only)
discord-command-release-step-description = Flow node to resume at (default: the start)
discord-command-transfer-description = Hand the conversation to another agent (agents only)
discord-command-transfer-agent-description = The agent to hand it to
discord-command-close-description = Close the conversation and ask for feedback (agents only)
discord-thread-name = MFA help
discord-thread-opened = I opened a private thread just for you, { $thread }, so that your phone number stays private. Let's continue there.
discord-mfa-started = Got it. I'll guide you in the next messages.
discord-agent-only = Only help desk agents can do that.
discord-not-a-ticket-thread = Please use this command inside a handoff thread.
discord-agent-ack = Done.
discord-unknown-conversation = I could not find the conversation for this button. Please start again with /mfa.
