# Sign-in error codes (AADSTS…) and the MFA registration guidance.
# Used by flows/mfa-phone.toml: [[signin_errors]] and the register-* nodes.
# Meanings from Microsoft's "Microsoft Entra authentication and authorization error codes":
# https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes

# AADSTS50088: limit on telecom MFA calls reached
signin-error-50088 = Error code AADSTS50088 means the limit on phone calls for multi-factor authentication was reached. Let's start with the lock from too many attempts (A).

# AADSTS500121: authentication failed during the strong authentication request
signin-error-500121 = Error code AADSTS500121 means authentication failed during the multi-factor authentication request. Let's check why the call or SMS isn't reaching you, starting with your phone's settings.

# AADSTS50076 / 50074: MFA is required (not a problem by itself)
signin-error-mfa-required = This error code says that sign-in requires multi-factor authentication; it isn't the cause of the problem by itself. Let's keep checking why the call or SMS isn't reaching you.

# AADSTS50079 / 50072: the user must register for MFA
signin-error-must-register = This error code means you still need to register a multi-factor authentication method.

# AADSTS53003: blocked by Conditional Access
signin-error-53003 = Error code AADSTS53003 means sign-in was blocked by your organization's access policies (Conditional Access). This can't be fixed in your own settings, so I'll connect you with a help desk staff member.

# AADSTS50126: invalid user name or password
signin-error-50126 =
    Error code AADSTS50126 means the user name or password is wrong; it is not a multi-factor authentication (phone/SMS) problem.
    Please check your user name and password. If you forgot your password, we recommend the university's password reset procedure. If you're not sure, type "talk to a person".

# AADSTS50053: account locked after repeated sign-ins with a wrong ID or password
signin-error-50053 =
    Error code AADSTS50053 means the account was locked because of repeated sign-ins with a wrong user name or password (or sign-ins from a suspicious location).
    This is different from the lock caused by too many verification calls or SMS (A). We recommend waiting a while and then signing in once with the correct password. If it continues, type "talk to a person".

# An error code not in the list: only noted ($code: e.g. "AADSTS12345")
signin-error-noted = I've noted error code { $code } for the staff.

## ---------------------------------------------------------------- registration (AADSTS50079 / 50072)

# nodes.register-check (first say)
register-explain =
    Multi-factor authentication methods are registered on the "More information required" screen that appears when you sign in.
    On that first screen, a phone is registered as the "Phone" (authentication phone) method with a mobile number (a landline can't be registered there).

# nodes.register-check (the question)
register-question = Do you have a mobile phone that can receive calls or SMS?

# nodes.register-check buttons
choice-register-has-mobile = Yes, I have a mobile phone
choice-register-no-mobile = No usable phone

# nodes.register-guide (first say)
register-guide =
    Here's how to register:
    • Sign in, and on "More information required" select "Next"
    • If the Microsoft Authenticator app is suggested, choose "I want to set up a different method" and pick "Phone"
    • In the country or region list, select "Japan (+81)", then type the number without its leading 0
    • Enter the code sent by SMS, or follow the instructions of the call

# nodes.register-guide (the question)
register-result-question = Were you able to register?

# nodes.register-guide buttons
choice-register-done = Registered
choice-register-fails = The call/SMS doesn't arrive
