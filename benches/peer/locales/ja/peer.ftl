# The benchmark peer's dialog (benches/peer/flows/peer.toml), in the words
# of the Bot Framework SDK peer (botbuilder-bot/index.js).

peer-welcome = ようこそ！サインインのトラブル診断を始めるには「診断」と入力してください。
peer-start = 診断
peer-quit = 終了
peer-yes = はい
peer-no = いいえ
peer-q1 = Q1. 5分間に5回以上試しましたか？
peer-q2 = Q2. 最近パスワードを変更しましたか？
peer-q3 = Q3. 別の端末でもサインインできませんか？
peer-q4 = Q4. VPNに接続していますか？
peer-q5 = Q5. エラーメッセージが表示されましたか？
peer-q6 = Q6. 管理者に連絡しましたか？
peer-not-understood = もう一度「はい」か「いいえ」でお答えください。

# $count: 何回目の診断か; $a1…$a6: 各質問の答え（yes / no）
peer-result = 診断結果({ $count }回目): { $a1 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    },{ $a2 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    },{ $a3 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    },{ $a4 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    },{ $a5 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    },{ $a6 ->
        [yes] はい
        [no] いいえ
       *[other] ?
    }
peer-handoff = 担当者におつなぎします。少しお待ちください。
peer-bye = ご利用ありがとうございました。
