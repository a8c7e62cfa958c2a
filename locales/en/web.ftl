# The web chat page (/chat).

web-title = MFA (phone call / SMS) help desk
web-input-label = Type a message
web-send = Send
web-status-online = Connected
web-status-connecting = Connecting…
web-status-offline = Disconnected. Reconnecting…
web-typing = Typing…
web-resume-link = Link to continue on another device
web-resume-copied = Link copied (do not share it with anyone)
web-resume-invalid = This link could not resume a conversation; continuing as a new one.
web-slow-down = That was a lot of messages at once. Please wait a moment and send it again.
