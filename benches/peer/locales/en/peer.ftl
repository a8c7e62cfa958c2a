# The benchmark peer's dialog (benches/peer/flows/peer.toml).

peer-welcome = Welcome! Type "diagnose" to start the sign-in trouble check.
peer-start = diagnose
peer-quit = quit
peer-yes = Yes
peer-no = No
peer-q1 = Q1. Did you try five or more times within five minutes?
peer-q2 = Q2. Did you change your password recently?
peer-q3 = Q3. Does signing in fail on other devices too?
peer-q4 = Q4. Are you connected to a VPN?
peer-q5 = Q5. Was an error message shown?
peer-q6 = Q6. Did you contact your administrator?
peer-not-understood = Please answer "Yes" or "No" once more.

# $count: which round this is; $a1…$a6: the answers (yes / no)
peer-result = Diagnosis (round { $count }): { $a1 ->
        [yes] Yes
        [no] No
       *[other] ?
    },{ $a2 ->
        [yes] Yes
        [no] No
       *[other] ?
    },{ $a3 ->
        [yes] Yes
        [no] No
       *[other] ?
    },{ $a4 ->
        [yes] Yes
        [no] No
       *[other] ?
    },{ $a5 ->
        [yes] Yes
        [no] No
       *[other] ?
    },{ $a6 ->
        [yes] Yes
        [no] No
       *[other] ?
    }
peer-handoff = I will connect you with a member of staff. Please wait a moment.
peer-bye = Thank you for using the help desk.
