# ウェブチャット（/chat）の画面の文言。

web-title = 多要素認証（電話・SMS）サポート窓口
web-input-label = メッセージを入力
web-send = 送信
web-status-online = 接続中
web-status-connecting = 接続しています…
web-status-offline = 接続が切れました。再接続します…
web-typing = 入力中…
web-resume-link = 別の端末で続けるためのリンク
web-resume-copied = リンクをコピーしました（ほかの人には教えないでください）
web-resume-invalid = このリンクでは会話を再開できませんでした。新しい会話として続けます。
web-slow-down = 送信が続いています。少し待ってからもう一度お送りください。
