# エンジン・入力チェック・担当者向け要約・ターミナルの文言（日本語）

## ---------------------------------------------------------------- エンジン（[flow.messages]）

# empty_input: 空のメッセージ
input-empty = メッセージが届いていないようです。文章を入力するか、ボタンを押してください。

# too_long: 長すぎるメッセージ（$max: 上限の文字数）
input-too-long = メッセージが長すぎるようです。{ $max } 文字以内でお送りください。

# not_understood: 読み取れなかったとき（このあと質問を再表示）
input-not-understood =
    すみません、うまく読み取れませんでした。下のボタンから選ぶか、別の言葉で書いてみてください。
    「担当者」と入力すると、スタッフにおつなぎします。

# stale_choice: 前の質問のボタン、または押下済みのボタン
choice-stale = そのボタンは前の質問のもの（または押したあと）です。下のいまの質問にお答えください。

# clarify: 自由入力の候補を出すとき
clarify-question = 次のうち、いちばん近いものはどれですか？

# clarify_none: 候補のボタン（押したときはこの文言もそのまま表示されます）
clarify-none = どれも当てはまらない

# session_expired: 長く間が空いたとき
session-expired = 前回の会話から時間が空いたため、最初からご案内します。

# queued_ack: 担当者待ちの間に届いたメッセージ
queued-ack = メッセージを受け付けました。担当者がここで返信しますので、少々お待ちください。

# closed_reopen: 終了した会話に再度メッセージが来たとき
closed-reopen = またのご連絡ありがとうございます。新しいご相談として最初からご案内します。

# timer_reminder: ロック解除の目安の時刻になったときのお知らせ（$retry_at: 日本時間）
reminder-lockout-over =
    { $retry_at }（日本時間）になりました。再試行をおすすめしていた時刻です。
    ロックは 5 時間以上続くこともあるため、まだ解除されていない場合もあります。落ち着いて、サインイン（または認証の設定）を 1 回だけ試してみてください。
    まだうまくいかない場合は、ここに返信してください。

# offer_human: 何度か読み取れなかったとき（担当者ボタンと一緒に表示）
offer-human = うまく進まない場合は、担当者におつなぎすることもできます。

# restart_message: 「最初から」
restart-ack = 承知しました。最初からご案内します。

## ---------------------------------------------------------------- 入力チェック（validators）

# phone_number（$reason: empty / too_short / too_long / invalid_characters / ほか）
invalid-phone-number =
    { $reason ->
        [empty] 電話番号が入力されていないようです。
        [too_short] 電話番号の桁数が足りないようです。
        [too_long] 電話番号の桁数が多すぎるようです。
        [invalid_characters] 電話番号に文字や記号が混ざっているようです。
       *[other] 電話番号として読み取れませんでした。
    }
    もう一度、「090-1234-5678」や「+81 90 1234 5678」のように入力してください。

# attempt_count（$reason: not_a_count）
invalid-attempt-count =
    { $reason ->
       *[other] 回数を読み取れませんでした。
    }
    「3回」「5回以上」「わからない」のように入力してください。

# last_attempt（$reason: not_a_time）
invalid-last-attempt =
    { $reason ->
       *[other] 時刻を読み取れませんでした。
    }
    「10分前」「14:30」「昨日」のように入力してください。

## ---------------------------------------------------------------- 担当者向けの要約（担当者の言語＝日本語で表示）

# 1行目（$reason: requested / unresolved）
summary-header =
    【MFA電話認証・引き継ぎ】受付 { $ticket } ／ 理由: { $reason ->
        [requested] ご本人が担当者を希望
        [method_reset] 認証方法のリセット依頼（ご本人はサインインできず、登録を直せません）
        [blocked] サインインがポリシーでブロック
       *[other] チェックリストで解決せず
    }

# 理由が認証方法のリセット依頼のとき、要約の1行目（$masked: 登録すべき番号、一部伏せ字）
summary-method-reset = ★認証方法のリセット依頼：ご本人はほかの方法でサインインできません。登録すべき番号: { $masked }
# ご本人が貼り付けたサインインのエラーコード（AADSTS…）
summary-signin-errors = ・サインイン画面のエラーコード: { $codes }

# 確認した項目ごとに1行（$answer: 押されたボタンの文言、または summary-answer-auto）
summary-finding =
    ・{ $case }（{ $case ->
        [A] 試行回数超過・ロック
        [B] 電話の設定・契約
        [C] MNP
        [D] 番号の入力方法
        [E] 転送・海外利用
       *[F] 固定電話
    }）: { $verdict ->
        [ruled_in] 該当
        [ruled_out] 該当なし
        [suspected] 該当の可能性
        [fix_failed] 対処したが解決せず
        [fixed] 解決
       *[unsure] 不明
    } — 回答「{ $answer }」

summary-no-findings = ・まだどの項目も確認していません

# 回答がボタンではなく、入力内容からの自動判定のとき
summary-answer-auto = 入力内容から自動判定

# $masked: 一部を伏せた番号（例「+81 90-****-5678」）
summary-phone =
    ・電話番号: { $masked }（{ $line_type ->
        [mobile] 携帯電話
        [fixed_line] 固定電話
        [ip_phone] IP電話
        [toll_free] フリーダイヤル
        [other] その他の種別
       *[unknown] 種別不明
    }）

summary-phone-problem =
    ・番号の指摘: { $problem ->
        [leading_zero] +81 の後に先頭の 0
        [missing_country_code] 国番号なし
        [missing_plus] 「+」なし
        [fullwidth_digits] 全角数字
        [hyphen_lookalike] 「ー」などのハイフン代用
        [invalid_characters] 文字・記号の混入
        [too_short] 桁数不足
        [too_long] 桁数過多
        [empty] 未入力
       *[other] 形式不正
    }

# $attempts: "6"、"5+"、"many"、"unknown" など
summary-attempts =
    ・試行回数: { $attempts ->
        [many] 何度も
        [unknown] 不明
       *[other] { $attempts }回
    }

summary-lockout = ・最終試行 { $last_attempt }／再試行の目安 { $retry_at }（日本時間）

# 会話がどの段階にあったか（$node: フローのノード id）
summary-current-node = ・会話の位置: { $node }

## ---------------------------------------------------------------- ターミナル（madoguchi chat）

console-input-hint = 選択肢の番号を入力するか、自由に文章を入力してください。終了するには /quit と入力します。

console-summary-title = ── 担当者への引き継ぎ内容 ──

console-bye = 終了します。会話は保存されています。続きから再開するには --conversation { $conversation } を付けて起動してください。

console-bye-unsaved = 終了します。（この会話は保存していません。保存するには --db ファイル名 を付けて起動してください。）

console-status-queued = （担当者の対応待ちです。このターミナルには担当者はつながっていません。引き継ぎ内容は保存されました。）

# スクリプト入力（JSON Lines）の行が JSON として読めないとき
jsonl-invalid-json = この行は JSON として読み取れませんでした。

# JSON だが {"text": …} でも {"choice": …} でもないとき
jsonl-invalid-input = この行は { "{" }"text": "…"{ "}" } または { "{" }"choice": "…"{ "}" } の形にしてください。

# Said when an input could not be handled (the store failed); nothing was lost.
desk-try-again = 申し訳ありません、ただいま処理できませんでした。少し時間をおいて、もう一度送ってください。

# flow.messages.back_ack / back_nothing: 「ひとつ戻る」
back-ack = ひとつ前の質問に戻ります。
back-nothing = これより前の質問はありません。いまの質問にお答えください。
