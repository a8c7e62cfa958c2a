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
discord-unknown-conversation = このボタンの相談は見つかりませんでした（終了したか、古いメッセージです）。新しく相談するときは、ボットに DM を送ってください。
discord-unknown-command = このコマンドには対応していません。相談は /mfa ではじめられます。
discord-mfa-not-here = ここでは相談用の非公開スレッドを作れません。通常のテキストチャンネルで /mfa を使うか、ボットに DM を送ってください。
discord-mfa-no-permission = このチャンネルではボットに非公開スレッドを作る権限がないため、相談をはじめられませんでした。ボットに DM を送ってご相談いただくか、サーバーの管理者にお知らせください。
discord-dm-fallback-intro = DM をお届けできなかったため、こちらのスレッドにお送りします。
discord-dm-undeliverable-note = この方には DM が届きません（DM を受け付けない設定になっています）。ボットからの案内が届いていないため、必要に応じてこちらから連絡してください。
