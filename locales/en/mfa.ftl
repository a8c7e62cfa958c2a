# Flow messages for MFA (phone call / SMS) troubleshooting — English.
# Used by flows/mfa-phone.toml. Content source: the help desk FAQ (causes A–F).
# Button texts (choice-*, intent-*) are short, without a final period.
# The last message of each ask node is repeated on its own when re-asking.

## ---------------------------------------------------------------- start

# nodes.start (first say): greeting
greeting =
    Hello! I'm the university IT Help Desk assistant for multi-factor authentication (MFA) by phone call or text message (SMS).
    If the verification call or SMS isn't reaching you, let's go through the known causes (A–F) together, one by one.
    • Type freely or tap the buttons, whichever is easier
    • Type "talk to a person" to reach a staff member
    • Type "start over" to begin again

# nodes.start (second say: the question)
start-question = Which of these is closest to your situation?

# nodes.start buttons
choice-start-locked = I tried many times and got locked
choice-start-no-call = The call or SMS doesn't arrive
choice-start-changed-carrier = I switched mobile carriers
choice-start-check-number = Check my registered number
choice-start-landline = I want to use a landline
choice-start-unknown = I don't know the cause
choice-start-human = Talk to a staff member

## ---------------------------------------------------------------- intents (suggestion buttons for free text)

# [[intents]] labels (buttons of "which is closest?", and the staff button)
intent-human = Talk to a staff member
intent-restart = Start over
intent-back = Go back one step
intent-solved = It's solved
intent-case-a = I tried many times and got locked
intent-case-b = The call or SMS doesn't arrive
intent-case-c = I switched carriers (kept my number)
intent-case-d = How to enter my phone number
intent-case-e = Call forwarding / using it abroad
intent-case-f = Using a landline or IP phone
intent-checklist = I don't know the cause

## ---------------------------------------------------------------- A. too many attempts / lockout

# nodes.case-a-count (first say)
case-a-intro =
    First, let's check how many times you tried.
    For security, sign-in verification and setup are limited to 5 attempts in 5 minutes. Tries that failed, and calls or SMS that arrived but were not answered, count too: trying many times in a short period is treated as unauthorized access, and the account is locked.

# nodes.case-a-count (second say: the question)
case-a-ask-count =
    About how many times did you try in the last few minutes?
    (e.g. "3 times", "5 or more", "I don't know")

# nodes.case-a-count buttons
choice-a-count-few = 4 times or fewer
choice-a-count-many = 5 times or more
choice-a-count-unknown = I don't know

# nodes.case-a-unlikely (fewer than 5 attempts)
case-a-unlikely =
    That's below the limit, so a lockout is unlikely.
    Next, let's check your phone's settings and plan.

# nodes.case-a-when (the question)
case-a-ask-when =
    When did you last try?
    (e.g. "10 minutes ago", "14:30", "yesterday")

# nodes.case-a-when buttons
choice-a-when-now = Just now
choice-a-when-30m = About 30 minutes ago
choice-a-when-1h = About 1 hour ago
choice-a-when-3h = About 3 hours ago
choice-a-when-yesterday = Yesterday
choice-a-when-unknown = I don't remember

# nodes.case-a-when-assumed (the person doesn't remember when)
case-a-when-assumed = As you don't remember when you last tried, I'll count from now, to be safe.

# nodes.case-a-wait (5+ attempts or unknown, still within the waiting time)
# $retry_at, $last_attempt: "HH:MM" or "MM/DD HH:MM", Japan time
case-a-wait =
    If you tried several times in a short period, your account may be temporarily locked.
    • Until the lock lifts, neither verification nor setup works: please don't try again now, give it time
    • How long a lock lasts is not published; in our help desk's experience it is roughly 30 minutes to 5 hours or more
    • Your last try was around { $last_attempt } (JST), so we recommend trying again no earlier than { $retry_at } (JST)
    I'll send you a reminder here in this chat at that time.

# nodes.case-a-wait (the question): nothing to try now, only what to do while waiting
case-a-wait-question = Would you like to check the other causes while you wait? When the reminder comes and you have tried again, tell me how it went.

# nodes.case-a-waiting (waiting for the reminder)
case-a-waiting =
    All right. I'll let you know here in this chat at that time.
    After the reminder, try once and tell me here how it went.

# nodes.case-a-retry-now (the waiting time is already over)
case-a-retry-now =
    The suggested waiting time is already over (since { $retry_at } JST).
    Please take a breath and try once more, just once. Trying many times in a row can lock the account again.

# nodes.case-a-wait / case-a-retry-now (the question)
case-a-after-wait-question = Please tell me how it went with the buttons below.

# nodes.case-a-wait / case-a-retry-now buttons
choice-a-worked = It worked
choice-a-check-others = Check other causes while I wait
choice-a-wait-later = I'll wait for the reminder
choice-a-still-failing = Waited, still doesn't work

## ---------------------------------------------------------------- B. phone settings and plan

# nodes.case-b-check (first say)
case-b-explain =
    Next, let's check your phone's settings and plan.
    Verification calls and SMS are sent by several providers, sometimes from overseas. The sender isn't always the same, and it can't be checked or chosen, so allowing one particular number does not fix it. The call may also show up as "No Caller ID" (anonymous).
    Please check that your mobile plan, filtering settings and phone settings allow all of these:
    • Anonymous calls (no caller ID)
    • Calls and SMS from overseas
    Also make sure your phone isn't set to accept calls only from numbers in your contacts.

# nodes.case-b-check / case-b-how (the question)
case-b-question = How did it go after checking?

# nodes.case-b-check / case-b-how buttons
choice-b-changed-works = Changed a setting, now it works
choice-b-changed-fails = Changed settings, still nothing
choice-b-not-applicable = I don't block any calls
choice-b-how = Where do I check this?

# nodes.case-b-how (where to look)
case-b-how =
    Here is where to look:
    • Your carrier's account page (My page): plan options such as nuisance-call blocking services, and receiving international calls / SMS
    • Your phone's settings: call blocking, blocking anonymous or unknown callers, "contacts only" settings
    • Any call-blocking or filtering apps
    If you're unsure, your carrier's support can help: tell them you want to receive anonymous calls and calls / SMS from overseas.

## ---------------------------------------------------------------- C. ported number (MNP)

# nodes.case-c-check (the question)
case-c-question = Did you switch to your current mobile carrier while keeping the same number (number portability)?

# nodes.case-c-check buttons
choice-c-yes = Yes, I switched
choice-c-no = No, I didn't
choice-c-unsure = I'm not sure

# nodes.case-c-fix (first say)
case-c-explain =
    A number moved to another carrier (ported) sometimes can't receive calls or SMS from some overseas carriers. Since verification calls and SMS may come from overseas providers, this may be why they don't arrive.
    If so, please consider using the Microsoft Authenticator app instead.
    For details, please ask your mobile carrier.

# nodes.case-c-fix (the question)
case-c-after-question = Let me know if Authenticator works for you. If you'd like to keep using calls / SMS, let's check the other causes.

# nodes.case-c-fix buttons
choice-c-authenticator = Authenticator worked
choice-c-continue = Check other causes

## ---------------------------------------------------------------- D. how the number was entered

# nodes.case-d-number (first say)
case-d-explain =
    Let's check how your phone number was registered.
    When you use a country code (Japan is +81), leave out the leading "0". If the 0 is kept, the verification may not arrive or may not work properly.
    Correct example: +81 9012345678 (for 090-1234-5678)

# nodes.case-d-number (the question)
case-d-ask-number =
    Please type the phone number you registered (or are trying to register).
    Full-width digits and hyphens are fine. I only use it to check the format.

# nodes.case-d-number buttons
choice-d-skip = Skip this step

# nodes.case-d-leading-zero (0 kept after +81)
# $display: the correct form (e.g. "+81 9012345678"); $input: what was typed
case-d-leading-zero =
    In "{ $input }", the leading 0 is still there after +81. A number registered with the leading 0 may not receive verification, or verification may not work properly.
    The correct form is "{ $display }".

# nodes.case-d-leading-zero / case-d-fix-form (the question)
case-d-fix-question = After fixing it, please try the verification again. How did it go?

# nodes.case-d-leading-zero / case-d-fix-form buttons
choice-d-fixed-works = Fixed it, now it works
choice-d-fixed-fails = Fixed it, still doesn't work

# nodes.case-d-missing-country-code (no country code, or no "+")
case-d-missing-country-code =
    "{ $input }" has no country code (+81).
    On the Security info page, the number must be entered with the country code +81 and without the leading 0, like this: "{ $display }".

# nodes.case-d-missing-country-code (the question)
case-d-registered-question = How is it registered on the Security info page?

# nodes.case-d-missing-country-code buttons
choice-d-registered-like-input = Same as I just typed
choice-d-registered-correctly = Correctly, with +81

# nodes.case-d-fix-form (how to fix)
case-d-fix-form =
    Here's how to fix it on the Security info page (following Microsoft's guide "Set up a phone as your verification method"):
    • Open https://mysignins.microsoft.com/security-info
    • Select "Change" next to the registered phone number (if no phone is registered yet: "Add sign-in method" → "Phone")
    • In the country or region list, select "Japan (+81)"
    • In the phone number box, type only the number without its leading 0 (do not type "+81")
    Once saved, it shows as "{ $display }".

# nodes.case-d-looks-right (format is fine)
case-d-looks-right =
    The number format looks fine.
    On the Security info page (https://mysignins.microsoft.com/security-info) it should read "{ $display }". Please compare it with what the page shows.

# nodes.case-d-looks-right (the question)
case-d-match-question = Does it match the number shown on the page?

# nodes.case-d-looks-right buttons
choice-d-matches = Yes, it matches
choice-d-differs = No, it's different

# nodes.case-d-landline (not a mobile number → case F guidance)
# $line_type: fixed_line / ip_phone / toll_free (anything else: *[other])
case-d-landline-detected =
    { $line_type ->
        [fixed_line] "{ $display }" looks like a landline number.
        [ip_phone] "{ $display }" looks like an IP phone number (050). As the FAQ notes, some fibre (IP) phone lines may not work for verification, so our help desk recommends registering a mobile number.
        [toll_free] "{ $display }" looks like a toll-free number.
       *[other] "{ $display }" doesn't look like a mobile number.
    }
    Here is what to know when using a number that isn't a mobile phone.

# nodes.case-d-can-sign-in / case-f-can-sign-in (first say): the Security info page needs a sign-in
security-info-needs-sign-in =
    To fix the registration you need to sign in to the Security info page (https://mysignins.microsoft.com/security-info).
    If the phone that doesn't receive verification is your only method, you may not be able to open the page.

# nodes.case-d-can-sign-in / case-f-can-sign-in (the question)
security-info-can-sign-in-question = Can you sign in right now another way (the Microsoft Authenticator app, another registered phone, or a Temporary Access Pass from the help desk)?

# nodes.case-d-can-sign-in / case-f-can-sign-in buttons
choice-can-sign-in-yes = Yes, I can sign in
choice-can-sign-in-no = No, I can't
choice-can-sign-in-unsure = Not sure

## ---------------------------------------------------------------- E. forwarding / abroad

# nodes.case-e-check (the question)
case-e-question =
    Next, forwarding and use abroad. Does either of these apply to you?
    • Your calls or SMS are forwarded to another phone or number
    • You're using a phone contracted in Japan while abroad

# nodes.case-e-check buttons
choice-e-forwarding = Yes, calls/SMS are forwarded
choice-e-abroad = Yes, I'm abroad
choice-e-no = Neither

# nodes.case-e-forwarding (first say)
case-e-forwarding =
    When verification calls or SMS are forwarded, they may not arrive properly.
    Please turn off call and SMS forwarding (to another mobile or number) for now, and try the verification again.

# nodes.case-e-abroad (first say)
case-e-abroad =
    When a phone contracted in Japan is used abroad and the call or SMS becomes international, it can behave like forwarding, and the verification may not arrive.
    Turn off any forwarding and try again. If it still doesn't arrive while you're abroad, please consider the Microsoft Authenticator app.

# nodes.case-e-forwarding / case-e-abroad (the question)
case-e-fix-question = How did it go?

# nodes.case-e-forwarding / case-e-abroad buttons
choice-e-works = It arrived
choice-e-fails = Still doesn't arrive

## ---------------------------------------------------------------- F. landline

# nodes.case-f-check (the question)
case-f-question = Is the phone you want to use a landline (a lab or home phone, an extension, an IP phone, etc.)?

# nodes.case-f-check buttons
choice-f-landline = Yes, a landline
choice-f-mobile = No, a mobile phone

# nodes.case-f-slot (first say)
case-f-explain-slots =
    There are 3 types of phone methods:
    • Phone (authentication phone): mobile only (SMS and voice call)
    • Office phone: voice call only (landlines OK)
    • Alternate phone: voice call only (landlines OK)
    A landline has to be registered as "Alternate phone" or "Office phone".

# nodes.case-f-slot (the question)
case-f-slot-question = Which type did you register the landline number as?

# nodes.case-f-slot buttons
choice-f-slot-authentication = Phone (in the first setup)
choice-f-slot-alternate = Alternate or Office phone
choice-f-slot-unsure = I'm not sure

# nodes.case-f-wrong-slot (registered as authentication phone, or unsure)
case-f-wrong-slot =
    The first setup screen only offers "Phone" (the authentication phone), which can't be a landline.
    A landline has to be registered as "Alternate phone" or "Office phone" on the Security info page.

# nodes.case-f-add-alternate (registration steps, when the person can sign in)
case-f-add-alternate =
    Here's how to add it:
    • Open https://mysignins.microsoft.com/security-info
    • Under "Add sign-in method", choose "Alternate phone" or "Office phone"
    • In the country or region list, select "Japan (+81)", then type the number without its leading 0

# nodes.case-f-landline-limits (first say)
case-f-landline-limits =
    Note that with some landlines the verification call may not come, or may not work even if it comes:
    • Lines behind a PBX (private branch exchange)
    • Some fiber-optic (hikari) phone services
    • Settings or services that forward calls to another phone, number or extension
    • Business phone systems
    • Phones or lines where pressing "#" is not recognised as "#"
    If any of these apply, please try a different phone number.

# nodes.case-f-landline-limits (the question)
case-f-fix-question = How did it go?

# nodes.case-f-landline-limits buttons
choice-f-works = It worked
choice-f-fails = Still doesn't work

# nodes.method-reset-request (cannot sign in to fix the methods)
method-reset-explain = Only the help desk can reset registered sign-in methods. A staff member will help you with that; please wait here.

## ---------------------------------------------------------------- endings

# nodes.handoff (queued for a staff member)
handoff-queued =
    I'll connect you with a help desk staff member.
    A summary of what we've checked has been passed on, so you won't need to repeat yourself.
    Feel free to keep writing here while you wait. Your phone number is shared only partly masked, never in full.

# nodes.csat (first say)
solved-glad = I'm so glad it works now!

# nodes.csat (the question)
csat-question = Was this chat helpful?

# nodes.csat buttons
choice-csat-yes = Yes, it helped
choice-csat-no = Not really

# nodes.end-thanks
closing-thanks =
    Thank you for your feedback.
    If you need help again, just send a message here anytime and we'll start a new conversation.
