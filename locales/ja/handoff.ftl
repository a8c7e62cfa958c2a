# 担当者への引き継ぎ（チャネル共通）。ご本人向けと担当者向け（agent-note-*）。

handoff-queue-position = 現在、{ $position } 番目にご案内します。担当者から返信があるまで、少しお待ちください。
handoff-after-hours = ただいまヘルプデスクの受付時間外です。{ $opens_at }（日本時間）の受付開始後、順番に返信いたします。
handoff-claimed = ヘルプデスクの担当者（{ $agent }）が対応を引き継ぎました。このままメッセージをお送りください。
handoff-transferred = 担当者が { $agent } に代わりました。引き続きこちらでやり取りできます。
handoff-released = 担当者とのやり取りを終了し、自動案内に戻ります。
agent-message = { $agent }（ヘルプデスク）: { $text }

agent-note-claimed = { $agent } さんがこの相談を担当しています。ここに書いた内容がご本人に届きます。
agent-note-released = { $agent } さんが自動案内に戻しました（再開位置: { $node }）。
agent-note-transferred = { $agent } さんが { $to } さんに担当を引き継ぎました。
agent-note-closed = { $agent } さんが相談を終了しました。ご本人に満足度の質問をしています。
agent-note-not-queued = この相談は現在引き継ぎ待ちではありません（状態: { $status ->
        [bot] 自動案内中
        [closed] 終了
        [queued] 担当者が未確定
       *[other] { $status }
    }）。
agent-note-not-holder = この相談は { $holder } さんが担当しています。担当者だけが操作できます。
agent-note-unknown-node = 「{ $node }」という再開位置はありません。フローのノード名を確認してください。
agent-note-from-person = ご本人: { $text }
handoff-recent-title = 【直近のやり取り】
handoff-transcript-title = 【相談記録 { $ticket }】
handoff-thread-name = 引き継ぎ { $ticket }
handoff-claim-button = 担当する
handoff-close-button = 終了する
agent-command-needs-target = 転送先の担当者を指定してください（例: /transfer @担当者 または transfer <AADオブジェクトID> 名前）。
