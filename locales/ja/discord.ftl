# Discord チャネル固有の文言（スラッシュコマンドの説明、スレッド名など）。

discord-command-mfa-description = 多要素認証（電話・SMS）が使えないときの相談をはじめます
discord-command-claim-description = この相談を担当します（担当者のみ）
discord-command-release-description = 自動案内に戻します（担当者のみ）
discord-command-release-step-description = 再開するフローのノード名（省略すると最初から）
discord-command-transfer-description = 担当をほかの担当者に引き継ぎます（担当者のみ）
discord-command-transfer-agent-description = 引き継ぐ相手
discord-command-close-description = 相談を終了し、満足度を伺います（担当者のみ）
discord-thread-name = MFA のご相談
discord-thread-opened = 電話番号などを安全にやり取りできるよう、あなた専用の非公開スレッド { $thread } を作成しました。そちらでご案内します。
discord-mfa-started = ご相談を受け付けました。このあとのメッセージでご案内します。
discord-agent-only = この操作はヘルプデスクの担当者だけが行えます。
discord-not-a-ticket-thread = このコマンドは、引き継ぎ用のスレッドの中で使ってください。
discord-agent-ack = 受け付けました。
discord-unknown-conversation = このボタンの相談が見つかりませんでした。/mfa で新しく相談をはじめてください。
