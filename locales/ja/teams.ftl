# Microsoft Teams チャネル固有の文言。

teams-agent-only = この操作はヘルプデスクの担当者（設定済みのアカウント）だけが行えます。
teams-not-a-ticket = この投稿に対応する引き継ぎが見つかりません。引き継ぎカードのスレッドで操作してください。
