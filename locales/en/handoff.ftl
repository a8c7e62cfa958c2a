# Handoff to a person (all channels). Person-facing and agent-facing (agent-note-*).

handoff-queue-position = You are number { $position } in line. Please wait a moment for a staff member to reply.
handoff-after-hours = The help desk is closed right now. We will reply in order after it opens at { $opens_at } (Japan time).
handoff-claimed = A help desk staff member ({ $agent }) has joined. Please keep writing here.
handoff-transferred = Your conversation is now with { $agent }. You can keep writing here.
handoff-released = The staff member has finished; the automatic guide takes over again.
agent-message = { $agent } (help desk): { $text }

agent-note-claimed = { $agent } is handling this conversation. What you write here reaches the person.
agent-note-released = { $agent } handed the conversation back to the bot (at { $node }).
agent-note-transferred = { $agent } transferred the conversation to { $to }.
agent-note-closed = { $agent } closed the conversation. The person is being asked the satisfaction question.
agent-note-not-queued = This conversation is not waiting for an agent (status: { $status ->
        [bot] with the bot
        [closed] closed
        [queued] not yet claimed
       *[other] { $status }
    }).
agent-note-not-holder = { $holder } is handling this conversation; only they can do that.
agent-note-unknown-node = There is no flow node "{ $node }". Check the node name in the flow.
agent-note-from-person = Person: { $text }
handoff-recent-title = [Recent messages]
handoff-transcript-title = [Transcript { $ticket }]
handoff-thread-name = Handoff { $ticket }
handoff-claim-button = Claim
handoff-close-button = Close
agent-command-needs-target = Please name the agent to transfer to (e.g. /transfer @agent, or transfer <AAD object id> name).
