# 多要素認証（電話・SMS）トラブルシューティングのフロー文言（日本語）
# 使用箇所: flows/mfa-phone.toml。内容の出典: ヘルプデスク FAQ（A〜F）。
# ボタン文言（choice-*, intent-*）は短く、句点「。」なしで。
# 各 ask ノードの最後のメッセージは、聞き返し（reprompt）で単独でも再表示されます。

## ---------------------------------------------------------------- start

# nodes.start（say 1件目）: あいさつ
greeting =
    こんにちは。大学 IT ヘルプデスクの、多要素認証（電話・SMS）サポート窓口です。
    認証の電話や SMS が届かないときに考えられる原因（A〜F）を、一緒に順番に確認しましょう。
    ・自由に文章で入力しても、ボタンを押しても大丈夫です
    ・「担当者」と入力すると、スタッフにおつなぎします
    ・「最初から」と入力すると、はじめからやり直せます

# nodes.start（say 2件目・質問）
start-question = いまの状況にいちばん近いものを選んでください。

# nodes.start のボタン
choice-start-locked = 何度も試してロックされた
choice-start-no-call = 電話・SMSが届かない
choice-start-changed-carrier = 携帯会社を乗り換えた
choice-start-check-number = 登録した番号を確認したい
choice-start-landline = 固定電話で認証したい
choice-start-unknown = 原因がわからない
choice-start-human = 担当者と話したい

## ---------------------------------------------------------------- 意図（自由入力の候補ボタン）

# [[intents]] のラベル（「次のうち、いちばん近いものは？」のボタンや、担当者ボタンに使用）
intent-human = 担当者と話す
intent-restart = 最初からやり直す
intent-back = ひとつ前に戻る
intent-solved = 解決した
intent-case-a = 何度も試してロックされた
intent-case-b = 電話・SMSが届かない
intent-case-c = 携帯会社を乗り換えた（MNP）
intent-case-d = 電話番号の入力方法
intent-case-e = 転送・海外での利用
intent-case-f = 固定電話・IP電話で認証
intent-checklist = 原因がわからない

## ---------------------------------------------------------------- A. 試行回数の超過・ロック

# nodes.case-a-count（say 1件目）
case-a-intro =
    まず、試行回数を確認します。
    セキュリティのため、認証や設定は「5 分間に 5 回まで」が上限です。うまくいかなかった試行や、認証の電話・SMS が届いたのに応答しなかった場合も含めて、短時間に何度も試すと不正なアクセスとみなされ、アカウントがロックされます。

# nodes.case-a-count（say 2件目・質問）
case-a-ask-count =
    この数分の間に、何回くらい試しましたか？
    （例：「3回」「5回以上」「わからない」）

# nodes.case-a-count のボタン
choice-a-count-few = 4回以下
choice-a-count-many = 5回以上
choice-a-count-unknown = わからない

# nodes.case-a-unlikely（5回未満のとき）
case-a-unlikely =
    回数は上限より少ないので、ロックの可能性は低そうです。
    次に、電話の設定や契約を確認しましょう。

# nodes.case-a-when（質問）
case-a-ask-when =
    最後に試したのは、いつ頃ですか？
    （例：「10分前」「14:30」「昨日」）

# nodes.case-a-when のボタン
choice-a-when-now = たった今
choice-a-when-30m = 30分ほど前
choice-a-when-1h = 1時間ほど前
choice-a-when-3h = 3時間ほど前
choice-a-when-yesterday = 昨日
choice-a-when-unknown = 覚えていない

# nodes.case-a-when-assumed（いつ試したか覚えていないとき）
case-a-when-assumed = 最後に試した時刻がわからないので、念のため「いま」を最後の試行とみなして目安を計算します。

# nodes.case-a-wait（5回以上、または回数不明で、まだ待ち時間中）
# $retry_at, $last_attempt: 「HH:MM」または「MM/DD HH:MM」（日本時間）
case-a-wait =
    短時間に何度も試していると、アカウントが一時的にロックされている可能性があります。
    ・ロックが解除されるまでは、認証も設定もできません。いまは再試行せず、時間を空けてください
    ・解除までの時間は公開されていませんが、当窓口のこれまでの事例では、おおよそ約 30 分から 5 時間以上です
    ・最後に試したのが { $last_attempt } 頃（日本時間）なので、早くても { $retry_at }（日本時間）以降に試すことをおすすめします
    その時刻になったら、この会話でお知らせします。

# nodes.case-a-wait（質問）: いまは試さず、待つ間の選択肢だけ
case-a-wait-question = 待つ間に、ほかの原因も確認しますか？ お知らせが届いてから試した結果は、そのときに教えてください。

# nodes.case-a-waiting（お知らせを待つ）
case-a-waiting =
    わかりました。目安の時刻になったら、この会話でお知らせします。
    お知らせのあとに 1 回だけ試して、その結果をここで教えてください。

# nodes.case-a-retry-now（待ち時間がすでに過ぎている）
case-a-retry-now =
    再試行の目安の時刻（{ $retry_at }、日本時間）は過ぎています。
    落ち着いて、もう一度だけ試してみてください。続けて何度も試すと、またロックされることがあります。

# nodes.case-a-wait / case-a-retry-now（質問）
case-a-after-wait-question = 試してみた結果を、下のボタンで教えてください。

# nodes.case-a-wait / case-a-retry-now のボタン
choice-a-worked = 認証できた
choice-a-check-others = 待つ間にほかの原因を確認
choice-a-wait-later = お知らせを待つ
choice-a-still-failing = 時間を空けてもだめだった

## ---------------------------------------------------------------- B. 電話の設定・契約

# nodes.case-b-check（say 1件目）
case-b-explain =
    次に、電話の設定や契約を確認します。
    認証の電話や SMS は複数の事業者から送られ、海外の事業者からのこともあります。発信元は毎回同じとは限らず、どの事業者からかかってくるかを確認したり指定したりすることはできません。そのため、特定の番号だけを許可しても解決しません。また、「非通知」と表示されることもあります。
    ご契約のプラン、フィルタリング設定、携帯電話本体の設定で、次の受信がすべて許可されているか確認してください。
    ・非通知の電話
    ・海外からの電話・SMS
    また、電話帳に登録した番号以外からの着信を拒否する設定になっていないかも、あわせてご確認ください。

# nodes.case-b-check / case-b-how（質問）
case-b-question = 確認してみて、いかがでしたか？

# nodes.case-b-check / case-b-how のボタン
choice-b-changed-works = 設定を変えたら届いた
choice-b-changed-fails = 設定を変えても届かない
choice-b-not-applicable = 拒否の設定はしていない
choice-b-how = 確認方法を知りたい

# nodes.case-b-how（確認する場所のヒント）
case-b-how =
    確認する場所の例です。
    ・携帯会社のマイページ：契約プランやオプション（迷惑電話ストップ系のサービス、国際電話・国際 SMS の受信など）
    ・スマートフォンの設定：着信拒否、非通知の拒否、「連絡先のみ着信」など
    ・迷惑電話対策やフィルタリングのアプリ
    わからないときは、携帯会社のサポートに「非通知と海外からの電話・SMS を受けられるようにしたい」と伝えると、案内してもらえます。

## ---------------------------------------------------------------- C. MNP（番号そのまま乗り換え）

# nodes.case-c-check（質問）
case-c-question = いまお使いの電話番号は、番号そのままで携帯会社を乗り換えた（MNP）ものですか？

# nodes.case-c-check のボタン
choice-c-yes = はい、乗り換えた
choice-c-no = いいえ、乗り換えていない
choice-c-unsure = わからない

# nodes.case-c-fix（say 1件目）
case-c-explain =
    番号そのままで乗り換えた（MNP）電話番号では、一部の海外の通信事業者からの電話や SMS を受け取れない場合があります。認証の電話や SMS は海外の事業者から届くこともあるため、届かない原因になっている可能性があります。
    その場合は、スマートフォンアプリ「Microsoft Authenticator」での認証をご検討ください。
    詳しくは、ご契約の携帯会社にお問い合わせください。

# nodes.case-c-fix（質問）
case-c-after-question = Authenticator で認証できたら教えてください。電話・SMS のまま続ける場合は、ほかの原因も確認しましょう。

# nodes.case-c-fix のボタン
choice-c-authenticator = Authenticatorで認証できた
choice-c-continue = ほかの原因も確認する

## ---------------------------------------------------------------- D. 電話番号の入力方法

# nodes.case-d-number（say 1件目）
case-d-explain =
    電話番号の登録のしかたを確認します。
    国番号（日本は +81）を付けて登録するときは、先頭の「0」は不要です。0 を付けたままだと、認証が届かなかったり、正しく認証できなかったりすることがあります。
    正しい例：+81 9012345678（090-1234-5678 の場合）

# nodes.case-d-number（質問）
case-d-ask-number =
    登録した（または登録しようとしている）電話番号を入力してください。
    全角数字やハイフン入りでも大丈夫です。番号は形式の確認にだけ使います。

# nodes.case-d-number のボタン
choice-d-skip = 入力せずに次へ

# nodes.case-d-leading-zero（+81 の後に 0 が残っている）
# $display: 登録すべき形（例「+81 9012345678」）、$input: 入力されたそのまま
case-d-leading-zero =
    入力いただいた「{ $input }」は、+81 の後に先頭の 0 が残っています。先頭の 0 を付けたまま登録すると、認証が届かなかったり、正しく認証できなかったりする場合がございます。
    正しい形は「{ $display }」です。

# nodes.case-d-leading-zero / case-d-fix-form（質問）
case-d-fix-question = 登録を直したら、もう一度認証を試してみてください。結果はいかがでしたか？

# nodes.case-d-leading-zero / case-d-fix-form のボタン
choice-d-fixed-works = 直したら届いた
choice-d-fixed-fails = 直しても届かない

# nodes.case-d-missing-country-code（国番号なし、または「+」なし）
case-d-missing-country-code =
    入力いただいた「{ $input }」には、国番号（+81）が付いていません。
    セキュリティ情報のページでは、国番号 +81 を付け、先頭の 0 を除いた「{ $display }」の形で登録する必要があります。

# nodes.case-d-missing-country-code（質問）
case-d-registered-question = セキュリティ情報のページには、どのように登録されていますか？

# nodes.case-d-missing-country-code のボタン
choice-d-registered-like-input = 入力したのと同じ形
choice-d-registered-correctly = +81付きで正しく登録済み

# nodes.case-d-fix-form（直し方）
case-d-fix-form =
    セキュリティ情報のページでの直し方です（Microsoft の案内「電話を確認方法として設定する」に沿っています）。
    ・https://mysignins.microsoft.com/security-info を開く
    ・登録済みの電話番号の横の「変更」を選ぶ（電話がまだ登録されていなければ「サインイン方法の追加」→「電話」）
    ・国または地域の一覧で「日本 (+81)」を選ぶ
    ・電話番号の欄には、先頭の 0 を除いた番号だけを入力する（「+81」は入力しません）
    登録後は「{ $display }」のように表示されます。

# nodes.case-d-looks-right（形式に問題なし）
case-d-looks-right =
    番号の形式に問題はなさそうです。
    セキュリティ情報のページ（https://mysignins.microsoft.com/security-info）には「{ $display }」と登録されているはずです。表示されている番号と見比べてみてください。

# nodes.case-d-looks-right（質問）
case-d-match-question = ページに表示されている番号と一致しましたか？

# nodes.case-d-looks-right のボタン
choice-d-matches = 一致していた
choice-d-differs = 違っていた

# nodes.case-d-landline（携帯電話以外の番号 → F の案内へ）
# $line_type: fixed_line / ip_phone / toll_free（ほかは *[other]）
case-d-landline-detected =
    { $line_type ->
        [fixed_line] 「{ $display }」は固定電話の番号のようです。
        [ip_phone] 「{ $display }」は IP 電話（050）の番号のようです。FAQ にあるとおり一部の光電話などでは認証できない場合があるため、当窓口としては携帯電話の番号での登録をおすすめします。
        [toll_free] 「{ $display }」はフリーダイヤルの番号のようです。
       *[other] 「{ $display }」は携帯電話以外の番号のようです。
    }
    携帯電話以外の番号で認証するときの注意点をご案内します。

# nodes.case-d-can-sign-in / case-f-can-sign-in（say 1件目）: セキュリティ情報のページにはサインインが必要
security-info-needs-sign-in =
    登録を直すには、セキュリティ情報のページ（https://mysignins.microsoft.com/security-info）にサインインする必要があります。
    届かない電話しか登録していない場合は、ページを開けないことがあります。

# nodes.case-d-can-sign-in / case-f-can-sign-in（質問）
security-info-can-sign-in-question = ほかの方法（Microsoft Authenticator アプリ、登録済みの別の電話、ヘルプデスクが発行する一時アクセス パスなど）で、いまサインインできますか？

# nodes.case-d-can-sign-in / case-f-can-sign-in のボタン
choice-can-sign-in-yes = はい、サインインできる
choice-can-sign-in-no = いいえ、できない
choice-can-sign-in-unsure = わからない

## ---------------------------------------------------------------- E. 転送・海外での利用

# nodes.case-e-check（質問）
case-e-question =
    次に、転送や海外での利用を確認します。次のどちらかに当てはまりますか？
    ・電話や SMS を、別の電話や番号に転送している
    ・日本で契約した携帯電話を海外で使っている

# nodes.case-e-check のボタン
choice-e-forwarding = 転送している
choice-e-abroad = 海外で使っている
choice-e-no = どちらでもない

# nodes.case-e-forwarding（say 1件目）
case-e-forwarding =
    認証の電話や SMS が転送されると、正しく届かないことがあります。
    音声通話と SMS の転送設定（別の携帯電話や電話番号への転送）をいったん解除して、認証が届くか試してみてください。

# nodes.case-e-abroad（say 1件目）
case-e-abroad =
    日本で契約した携帯電話を海外で使っていて、国際電話・国際 SMS の扱いになる場合は、転送と同じような動作になり、認証が届かないことがあります。
    転送設定があれば解除したうえで、もう一度試してみてください。海外にいる間に届かない場合は、「Microsoft Authenticator」アプリでの認証もご検討ください。

# nodes.case-e-forwarding / case-e-abroad（質問）
case-e-fix-question = 試してみて、いかがでしたか？

# nodes.case-e-forwarding / case-e-abroad のボタン
choice-e-works = 届いた
choice-e-fails = まだ届かない

## ---------------------------------------------------------------- F. 固定電話

# nodes.case-f-check（質問）
case-f-question = 認証に使おうとしている電話は、固定電話（研究室や自宅の電話、内線、IP 電話など）ですか？

# nodes.case-f-check のボタン
choice-f-landline = はい、固定電話
choice-f-mobile = いいえ、携帯電話

# nodes.case-f-slot（say 1件目）
case-f-explain-slots =
    認証に登録できる電話は 3 種類あります。
    ・認証用電話：携帯電話のみ（SMS と音声通話）
    ・会社電話：音声通話のみ（固定電話も可）
    ・代替の電話：音声通話のみ（固定電話も可）
    固定電話は「代替の電話」か「会社電話」に登録する必要があります。

# nodes.case-f-slot（質問）
case-f-slot-question = 固定電話の番号は、どの種類で登録しましたか？

# nodes.case-f-slot のボタン
choice-f-slot-authentication = 認証用電話（最初の画面）
choice-f-slot-alternate = 代替の電話・会社電話
choice-f-slot-unsure = わからない

# nodes.case-f-wrong-slot（認証用電話に登録した／不明）
case-f-wrong-slot =
    最初のセットアップ画面では「認証用電話」しか登録できず、固定電話はそこでは使えません。
    固定電話は、セキュリティ情報のページで「代替の電話」または「会社電話」として登録する必要があります。

# nodes.case-f-add-alternate（サインインできる場合の登録手順）
case-f-add-alternate =
    登録の手順です。
    ・https://mysignins.microsoft.com/security-info を開く
    ・「サインイン方法の追加」で「代替の電話」または「会社電話」を選ぶ
    ・国または地域の一覧で「日本 (+81)」を選び、先頭の 0 を除いた番号を入力する

# nodes.case-f-landline-limits（say 1件目）
case-f-landline-limits =
    なお、次のような固定電話では、認証の電話がかかってこない、またはかかってきても正しく認証できないことがあります。
    ・PBX などの電話交換機を使っている
    ・光電話を使っている（一部）
    ・別の電話機や番号、内線に転送する設定やサービスを使っている
    ・電話システムを使っている
    ・「#」を押しても「#」として認識されない電話機や回線
    当てはまる場合は、別の電話番号に変えて試してみてください。

# nodes.case-f-landline-limits（質問）
case-f-fix-question = 試してみて、いかがでしたか？

# nodes.case-f-landline-limits のボタン
choice-f-works = 認証できた
choice-f-fails = それでも認証できない

# nodes.method-reset-request（サインインできず、登録を直せない）
method-reset-explain = 登録済みの認証方法のリセットは、ヘルプデスクだけが行えます。担当者がお手伝いしますので、このままお待ちください。

## ---------------------------------------------------------------- 終わり

# nodes.handoff（担当者への引き継ぎ）
handoff-queued =
    ヘルプデスクの担当者におつなぎします。
    ここまでに確認した内容は担当者に伝えてありますので、同じ説明を繰り返す必要はありません。
    返信があるまで、このままここに書き込んでいただいてかまいません。電話番号は一部を伏せて伝えており、番号全体がほかの人に表示されることはありません。

# nodes.csat（say 1件目）
solved-glad = 認証できてよかったです！お疲れさまでした。

# nodes.csat（質問）
csat-question = このチャットはお役に立ちましたか？

# nodes.csat のボタン
choice-csat-yes = はい、役に立った
choice-csat-no = いいえ

# nodes.end-thanks
closing-thanks =
    ご回答ありがとうございました。
    また困ったときは、いつでもここにメッセージを送ってください。新しいご相談として最初からご案内します。
