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
discord-unknown-conversation = I could not find the conversation for this button (it has ended, or the message is old). To start a new one, send me a direct message.
discord-unknown-command = I don't know that command. Use /mfa to get help.
discord-mfa-not-here = I cannot open a private thread here. Please use /mfa in an ordinary text channel, or send me a direct message.
discord-mfa-no-permission = I'm not allowed to create private threads in this channel, so I could not start. Please send me a direct message, or tell the server's administrators.
discord-dm-fallback-intro = Your direct messages are closed to me, so I am writing here instead.
discord-dm-undeliverable-note = This person's direct messages are closed to the bot, so the bot's messages are not reaching them. Please contact them another way if needed.
