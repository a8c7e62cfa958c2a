# Engine, validator, agent summary and terminal messages — English.

## ---------------------------------------------------------------- engine ([flow.messages])

# empty_input
input-empty = I didn't receive anything. Please type a message or tap a button.

# too_long ($max: the character limit)
input-too-long = That message is too long. Please keep it within { $max } characters.

# not_understood (the current question is repeated after this)
input-not-understood =
    Sorry, I didn't quite understand. Please choose a button below or try saying it another way.
    Type "talk to a person" to reach a staff member.

# stale_choice: a button from an earlier question, or one already pressed
choice-stale = That button belongs to an earlier question (or was already pressed). Please answer the current question below.

# clarify: offering candidates for free text
clarify-question = Which of these is closest?

# clarify_none: the candidate button (also said as is when pressed)
clarify-none = None of these

# session_expired
session-expired = It's been a while since our last conversation, so let's start again from the beginning.

# queued_ack: a message while waiting for staff
queued-ack = Got your message. A staff member will reply here, so please wait a moment.

# closed_reopen: a message after the conversation ended
closed-reopen = Welcome back! Let's start a new conversation.

# timer_reminder ($retry_at: Japan time)
reminder-lockout-over =
    It's now { $retry_at } (JST), the time we recommended for trying again.
    A lock can last longer than 5 hours, so it may not have lifted yet. Please try signing in (or setting up verification) once, calmly.
    If it still doesn't work, just reply here.

# offer_human (shown with a staff button after repeated misunderstandings)
offer-human = If this isn't working out, I can connect you with a staff member.

# restart_message
restart-ack = OK, let's start over from the beginning.

## ---------------------------------------------------------------- validators

# phone_number ($reason: empty / too_short / too_long / invalid_characters / other)
invalid-phone-number =
    { $reason ->
        [empty] It looks like no phone number was entered.
        [too_short] That number seems to have too few digits.
        [too_long] That number seems to have too many digits.
        [invalid_characters] That number seems to contain letters or symbols.
       *[other] I couldn't read that as a phone number.
    }
    Please type it again, e.g. 090-1234-5678 or +81 90 1234 5678.

# attempt_count ($reason: not_a_count)
invalid-attempt-count =
    { $reason ->
       *[other] I couldn't read a number of attempts.
    }
    Please answer like "3 times", "5 or more" or "I don't know".

# last_attempt ($reason: not_a_time)
invalid-last-attempt =
    { $reason ->
       *[other] I couldn't read a time.
    }
    Please answer like "10 minutes ago", "14:30" or "yesterday".

## ---------------------------------------------------------------- agent summary (agents read it in Japanese; English for completeness)

# first line ($reason: requested / unresolved)
summary-header =
    { "[" }MFA phone verification: handoff] Ticket { $ticket } / Reason: { $reason ->
        [requested] the person asked for staff
        [method_reset] method reset request (the person cannot sign in to fix the registration)
        [blocked] sign-in blocked by a policy
       *[other] not solved by the checklist
    }

# First summary line of a method reset request ($masked: the number to register, partly hidden)
summary-method-reset = ★ Method reset request: the person cannot sign in another way. Number to register: { $masked }
# Sign-in error codes the person pasted (AADSTS…)
summary-signin-errors = • Sign-in error codes: { $codes }

# one line per checked cause ($answer: the pressed button's label, or summary-answer-auto)
summary-finding =
    • { $case } ({ $case ->
        [A] too many attempts / lockout
        [B] phone settings / plan
        [C] ported number (MNP)
        [D] number format
        [E] forwarding / abroad
       *[F] landline
    }): { $verdict ->
        [ruled_in] applies
        [ruled_out] does not apply
        [suspected] may apply
        [fix_failed] fix tried, not solved
        [fixed] solved
       *[unsure] unknown
    } — answer "{ $answer }"

summary-no-findings = • Nothing checked yet

# the answer was judged from what was typed, not a button
summary-answer-auto = judged automatically from the input

# $masked: partly masked number (e.g. "+81 90-****-5678")
summary-phone =
    • Phone number: { $masked } ({ $line_type ->
        [mobile] mobile
        [fixed_line] landline
        [ip_phone] IP phone
        [toll_free] toll-free
        [other] other type
       *[unknown] type unknown
    })

summary-phone-problem =
    • Number issue: { $problem ->
        [leading_zero] leading 0 after +81
        [missing_country_code] no country code
        [missing_plus] no "+"
        [fullwidth_digits] full-width digits
        [hyphen_lookalike] hyphen look-alike such as "ー"
        [invalid_characters] letters or symbols mixed in
        [too_short] too few digits
        [too_long] too many digits
        [empty] nothing entered
       *[other] invalid format
    }

# $attempts: "6", "5+", "many", "unknown", …
summary-attempts =
    • Attempts: { $attempts ->
        [many] many
        [unknown] unknown
       *[other] { $attempts }
    }

summary-lockout = • Last attempt { $last_attempt } / suggested retry { $retry_at } (JST)

# where the conversation was ($node: flow node id)
summary-current-node = • Conversation step: { $node }

## ---------------------------------------------------------------- terminal (madoguchi chat)

console-input-hint = Type the number of a choice, or write freely. Type /quit to leave.

console-summary-title = ── Handoff summary for staff ──

console-bye = Goodbye! The conversation is saved: start again with --conversation { $conversation } to pick it up.

console-bye-unsaved = Goodbye! (This conversation was not saved; start with --db FILE to keep it.)

console-status-queued = (Waiting for a staff member. No staff is connected in this terminal; the handoff summary has been saved.)

# a scripted (JSON Lines) line that is not valid JSON
jsonl-invalid-json = This line is not valid JSON.

# valid JSON, but neither {"text": …} nor {"choice": …}
jsonl-invalid-input = Each line must be { "{" }"text": "…"{ "}" } or { "{" }"choice": "…"{ "}" }.

# Said when an input could not be handled (the store failed); nothing was lost.
desk-try-again = Sorry, we could not handle that just now. Please wait a moment and send it again.

# flow.messages.back_ack / back_nothing: "go back"
back-ack = Going back to the previous question.
back-nothing = There is no earlier question. Please answer the current one.
