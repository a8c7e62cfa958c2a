//! The web chat page in a real headless browser: Debian's `chromium`,
//! driven through `chromedriver` (package `chromium-driver`) with
//! fantoccini, against the real `serve` on 127.0.0.1:0.
//!
//! Without chromedriver the test says why it is skipped, and fails when
//! `CI` is set (`.ci/run` installs both packages). WebDriver offers no
//! events, so the page is awaited with bounded waits (`wait().for_element`,
//! or [`eventually`] re-reading the DOM).

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use madoguchi::clock::SystemClock;
use serde_json::{json, Value};
use support::service::Service;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(15);

/// A running chromedriver on a free port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts chromedriver, or says why it cannot (`None`: skip).
async fn chromedriver() -> Option<Driver> {
    let installed = std::process::Command::new("chromedriver")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !installed {
        let why = "chromedriver is not installed (Debian: apt-get install chromium chromium-driver; .ci/run does it)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}; CI must run the browser test");
        }
        eprintln!("web_browser: skipped: {why}");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let stdout = child.stdout.take().expect("stdout");
    // chromedriver says when it listens.
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("chromedriver output") {
            if line.contains("started successfully") {
                return;
            }
        }
        panic!("chromedriver ended before it listened");
    })
    .await
    .expect("chromedriver listens");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A new browser (its own profile: a second device).
async fn browser(driver: &Driver) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=375,667", "--lang=ja", "--accept-lang=ja"],
               "prefs": {"intl.accept_languages": "ja"},
               "mobileEmulation": {"deviceMetrics": {"width": 375, "height": 667, "pixelRatio": 2.0, "touch": true}}}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session (is chromium installed?)")
}

/// Re-reads `script`'s value until `done` holds, within [`WAIT`].
async fn eventually(client: &Client, script: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = client.execute(script, vec![]).await.expect("script");
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page did not get there: {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages' texts in NFKC.
fn folded(messages: &Value) -> Vec<String> {
    use unicode_normalization::UnicodeNormalization;
    messages
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m.as_str().unwrap_or_default().nfkc().collect())
        .collect()
}

/// Reads the shown messages as `class|text` into `m`.
macro_rules! messages_body {
    () => {
        "const m = Array.from(document.querySelectorAll('#log .msg')).map(m => m.className + '|' + m.firstChild.textContent);"
    };
}

const MESSAGES: &str = concat!(messages_body!(), " return m;");

#[tokio::test]
async fn the_page_works_in_a_real_browser() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        support::config(),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let chat = format!("{}/chat", service.url);
    let page = browser(&driver).await;
    page.goto(&chat).await.expect("page");

    // The greeting, in Japanese, and a button pressed.
    let lang = page
        .execute("return document.documentElement.lang", vec![])
        .await
        .expect("lang");
    assert_eq!(lang, "ja");
    let locked = page
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("button[data-choice='start-locked']"))
        .await
        .expect("the greeting's buttons");
    locked.click().await.expect("press");
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("button[data-choice='a-count-many']"))
        .await
        .expect("the next question");
    let status = page
        .find(Locator::Id("status"))
        .await
        .expect("status")
        .attr("class")
        .await
        .expect("class");
    assert_eq!(status.as_deref(), Some("online"));

    // Enter while the IME composes sends nothing; after it ends it sends.
    let composed = page
        .execute(
            r#"
            const i = document.getElementById('input');
            const count = () => document.querySelectorAll('#log .msg.me').length;
            const before = count();
            i.focus();
            i.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true}));
            i.value = 'ろっかい';
            i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 229, isComposing: true, bubbles: true, cancelable: true}));
            i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 13, bubbles: true, cancelable: true}));
            const during = count() - before, kept = i.value;
            i.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: '６回'}));
            i.value = '６回';
            i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', code: 'Enter', keyCode: 13, bubbles: true, cancelable: true}));
            return [during, kept, count() - before, i.value];
            "#,
            vec![],
        )
        .await
        .expect("composition");
    assert_eq!(composed, json!([0, "ろっかい", 1, ""]));
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("button[data-choice='a-when-30m']"))
        .await
        .expect("the answer to ６回");

    // Markup typed shows literally and runs nothing.
    let markup = "<script>alert(1)</script>";
    let input = page.find(Locator::Id("input")).await.expect("input");
    input
        .send_keys(&format!("{markup}\u{E007}"))
        .await
        .expect("type");
    let shown = eventually(
        &page,
        "const m = document.querySelectorAll('#log .msg.me'); return [m[m.length-1].textContent, document.querySelectorAll('#log script, #log *[onerror]').length];",
        |v| v[0] == markup,
    )
    .await;
    assert_eq!(shown[1], 0, "{shown}");
    assert!(page.get_alert_text().await.is_err(), "an alert opened");
    // The bot's answer to it (rendered after it, as text).
    let mine = format!("msg me|{markup}");
    let all = eventually(&page, MESSAGES, |v| {
        v.as_array().is_some_and(|m| {
            m.last()
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with("msg bot"))
                && m.iter().any(|x| x.as_str() == Some(mine.as_str()))
                && m.iter()
                    .rev()
                    .take_while(|x| x.as_str() != Some(mine.as_str()))
                    .count()
                    > 0
        })
    })
    .await;

    // The socket drops right after a press (the page's own reconnect on
    // `online`): the reply comes once, from the replay or the push.
    let before = all.as_array().map(Vec::len).unwrap_or(0);
    page.execute(
        "document.querySelector('#log .msg.bot:last-child button[data-choice=\"a-when-30m\"]').click(); window.dispatchEvent(new Event('online'));",
        vec![],
    )
    .await
    .expect("press and drop");
    let all = eventually(
        &page,
        concat!(
            messages_body!(),
            " return [document.getElementById('status').className, m];"
        ),
        |v| {
            v[0] == "online"
                && v[1].as_array().is_some_and(|m| {
                    m.len() > before + 1
                        && m.last()
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.starts_with("msg bot"))
                })
        },
    )
    .await[1]
        .clone();

    // Reload: the same history, each message once (what the person typed
    // comes back from the transcript, which keeps it NFKC-normalised:
    // ６回 shows as 6回).
    let all = folded(&all);
    page.refresh().await.expect("reload");
    let again = eventually(&page, MESSAGES, |v| folded(v) == all).await;
    assert_eq!(folded(&again), all);

    // The resume link, in a second browser (its own cookies).
    page.find(Locator::Id("resume"))
        .await
        .expect("resume")
        .click()
        .await
        .expect("press");
    let link = eventually(
        &page,
        "return document.getElementById('resume-url').value",
        |v| v.as_str().is_some_and(|s| s.contains("#resume=")),
    )
    .await;
    let second = browser(&driver).await;
    second
        .goto(link.as_str().expect("link"))
        .await
        .expect("second device");
    let there = eventually(&second, MESSAGES, |v| folded(v) == all).await;
    assert_eq!(folded(&there), all);
    let url = second.current_url().await.expect("url");
    assert!(
        url.fragment().is_none(),
        "the token left the address bar: {url}"
    );
    second.close().await.expect("close");

    // For people to look at (not compared): the viewport is a phone's
    // 375×667 (mobile emulation; a desktop window cannot be that narrow).
    let viewport = page
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await
        .expect("viewport");
    assert_eq!(viewport, json!([375, 667]));
    let png = page.screenshot().await.expect("screenshot");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| support::repo().join("target"));
    std::fs::create_dir_all(&target).expect("target dir");
    std::fs::write(target.join("web-chat-375x667.png"), png).expect("save the screenshot");
    page.close().await.expect("close");
    service.stop().await;
    drop(driver);
}

/// `page`'s bot messages (their text) contain `needle`, within [`WAIT`].
async fn shows(page: &Client, needle: &str) {
    let script = format!(
        "return Array.from(document.querySelectorAll('#log .msg.bot')).some(m => m.firstChild.textContent.includes({}));",
        json!(needle)
    );
    eventually(page, &script, |v| v == &json!(true)).await;
}

/// Types `text` into the page's input and presses Enter.
async fn type_and_send(page: &Client, text: &str) {
    let input = page.find(Locator::Id("input")).await.expect("input");
    input
        .send_keys(&format!("{text}\u{E007}"))
        .await
        .expect("type");
}

/// Case A: the reminder that the lock is over reaches the page while it
/// is open, without a reload. The service's timer loop fires it three
/// hours later; here the desk is stepped to that time by the test (the
/// clock injected into the firing), so nothing waits three hours.
#[tokio::test]
async fn the_case_a_reminder_appears_on_the_open_page() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        support::config(),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    let page = browser(&driver).await;
    page.goto(&format!("{}/chat", service.url))
        .await
        .expect("page");
    for choice in ["start-locked", "a-count-many", "a-when-30m"] {
        page.wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&format!("button[data-choice='{choice}']")))
            .await
            .unwrap_or_else(|e| panic!("button {choice}: {e}"))
            .click()
            .await
            .expect("press");
    }
    // The last press was answered: the page is waiting for the lock.
    let count = concat!(messages_body!(), " return m.length;");
    let before = eventually(&page, count, |v| v.as_u64().is_some_and(|n| n >= 4)).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(4);
    let fired = service
        .desk
        .fire_due_timers(None, later)
        .await
        .expect("timers");
    assert_eq!(fired.len(), 1, "the reminder was scheduled");
    let reminder: Vec<String> = fired[0].replies().into_iter().map(|r| r.text).collect();
    assert!(!reminder.is_empty());
    for text in &reminder {
        shows(&page, text).await;
    }
    let after = page.execute(count, vec![]).await.expect("count");
    assert!(
        after.as_u64() > before.as_u64(),
        "{before} → {after}: shown as new messages"
    );
    page.close().await.expect("close");
    service.stop().await;
    drop(driver);
}

/// A page on another origin (another port of this machine) opens a
/// WebSocket to the chat: the handshake is refused (the browser only sees
/// the socket close without opening, code 1006). The same script from
/// the chat's own page opens it, so the origin is what was refused.
#[tokio::test]
async fn a_page_on_a_foreign_origin_cannot_open_the_socket() {
    let Some(driver) = chromedriver().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        support::config(),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[],
    )
    .await;
    // The foreign site: one plain page on another port.
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let foreign_url = format!("http://{}/", foreign.local_addr().expect("addr"));
    let site = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>elsewhere</title><p>elsewhere</p>")
        }),
    );
    let site = tokio::spawn(async move {
        let _ = axum::serve(foreign, site).await;
    });
    let socket = format!("{}/chat/ws", service.url.replacen("http://", "ws://", 1));
    let open_socket = r#"
        const [url, done] = arguments;
        const ws = new WebSocket(url);
        ws.onopen = () => { done('open'); ws.close(); };
        ws.onclose = (e) => done('closed ' + e.code);
    "#;
    let page = browser(&driver).await;
    page.goto(&foreign_url).await.expect("foreign page");
    let from_foreign = page
        .execute_async(open_socket, vec![json!(socket)])
        .await
        .expect("script");
    assert_eq!(from_foreign, json!("closed 1006"));
    page.goto(&format!("{}/chat", service.url))
        .await
        .expect("chat page");
    let from_own = page
        .execute_async(open_socket, vec![json!(socket)])
        .await
        .expect("script");
    assert_eq!(from_own, json!("open"));
    page.close().await.expect("close");
    site.abort();
    service.stop().await;
    drop(driver);
}

/// The person in the page, the agent in Discord (the fake Discord,
/// `desk.agents = "discord"`): the handoff opens a staff thread, the
/// agent's claim and text appear in the page (markup as text), and what
/// the person types reaches the thread with the number masked.
#[tokio::test]
async fn handoff_to_an_agent_in_discord() {
    use support::fake_discord::FakeDiscord;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        fake.agents_config(support::config()),
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[("MADOGUCHI_DISCORD_TOKEN", "test-token")],
    )
    .await;
    fake.wait_ready().await;
    let page = browser(&driver).await;
    page.goto(&format!("{}/chat", service.url))
        .await
        .expect("page");
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("button[data-choice='start-locked']"))
        .await
        .expect("the greeting");
    type_and_send(&page, "担当者と話したいです").await;
    let (thread, _) = fake.new_staff_thread(&[]).await;

    fake.agent_command(thread, "claim", json!([])).await;
    shows(&page, FakeDiscord::AGENT_NAME).await;
    let said = "<b>佐藤</b>です。<img src=x onerror=alert(1)>番号を教えてください";
    fake.agent_says(thread, said).await;
    shows(&page, said).await;
    let markup = page
        .execute(
            "return document.querySelectorAll('#log b, #log img, #log script').length",
            vec![],
        )
        .await
        .expect("markup");
    assert_eq!(markup, json!(0));
    assert!(page.get_alert_text().await.is_err(), "an alert opened");

    type_and_send(&page, "０９０ー１２３４ー５６７８ です").await;
    let relayed = fake.posted_containing(thread, "****").await;
    let relayed = relayed.body["content"].as_str().unwrap_or_default();
    assert!(
        !relayed.contains("1234") && !relayed.contains("１２３４"),
        "{relayed}"
    );
    page.close().await.expect("close");
    service.stop().await;
    drop(driver);
}

/// An activity of the Teams agent ([`support::TEAMS_AGENT_AAD`], 佐藤) in
/// `thread` of the agents' channel, as Teams delivers it.
fn teams_agent_activity(
    fake: &support::fake_botframework::FakeBotFramework,
    id: &str,
    thread: &str,
) -> Value {
    json!({
        "type": "message",
        "id": id,
        "timestamp": "2026-11-25T01:00:00Z",
        "serviceUrl": fake.service_url(),
        "channelId": "msteams",
        "from": {"id": "29:agent", "name": "佐藤", "aadObjectId": support::TEAMS_AGENT_AAD},
        "conversation": {"id": thread, "conversationType": "channel", "tenantId": "tenant-1"},
        "recipient": {"id": format!("28:{}", support::fake_botframework::APP_ID), "name": "madoguchi"},
        "locale": "ja-JP",
        "channelData": {"tenant": {"id": "tenant-1"}},
    })
}

/// `text` after an @mention of the bot (in a channel Teams delivers only
/// those).
fn mentioning_the_bot(mut activity: Value, text: &str) -> Value {
    let bot = activity["recipient"]["id"].clone();
    activity["text"] = json!(format!("<at>madoguchi</at> {text}"));
    activity["entities"] = json!([{
        "type": "mention",
        "mentioned": {"id": bot, "name": "madoguchi"},
        "text": "<at>madoguchi</at>",
    }]);
    activity
}

/// Posts `activity` to the service's `/api/messages` as Teams would (a
/// signed token); asserts Teams would deliver it and that it is accepted.
async fn from_teams(
    service: &Service,
    fake: &support::fake_botframework::FakeBotFramework,
    activity: &Value,
) {
    assert!(
        fake.delivers(activity),
        "Teams would not deliver {activity}"
    );
    let token = fake.token(&fake.key(), &fake.service_url(), |_| {});
    let status = reqwest::Client::new()
        .post(format!("{}/api/messages", service.url))
        .bearer_auth(token)
        .json(activity)
        .send()
        .await
        .expect("post")
        .status();
    assert_eq!(status.as_u16(), 200, "{activity}");
}

/// The person in the page, the agent in the Teams agents' channel (the
/// fake Bot Framework, `desk.agents = "teams"`): the handoff posts a card
/// there, the agent claims with its button (the page shows the name), the
/// agent's text with markup appears literally in the page (no element, no
/// alert), the full-width number the person types reaches the card's
/// thread masked, and `@madoguchi close` asks the satisfaction question
/// in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_to_an_agent_in_teams() {
    use support::fake_botframework::FakeBotFramework;
    use support::service::text;
    use support::TEAMS_AGENTS_CONVERSATION;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let fake = FakeBotFramework::start().await;
    let mut config = support::teams_config(&fake);
    config.desk.agents = "teams".into();
    let dir = tempfile::tempdir().expect("dir");
    let service = Service::start(
        config,
        &dir.path().join("web.db"),
        Arc::new(SystemClock),
        &[("MADOGUCHI_TEAMS_APP_SECRET", "s3cret")],
    )
    .await;
    let page = browser(&driver).await;
    page.goto(&format!("{}/chat", service.url))
        .await
        .expect("page");
    page.wait()
        .at_most(WAIT)
        .for_element(Locator::Css("button[data-choice='start-locked']"))
        .await
        .expect("the greeting");
    type_and_send(&page, "担当者と話したいです").await;
    let card = fake
        .wait_for("the handoff card", |p| {
            p.conversation == TEAMS_AGENTS_CONVERSATION && p.body["attachments"].is_array()
        })
        .await;
    let thread = format!("{TEAMS_AGENTS_CONVERSATION};messageid={}", card.id);

    // The card's Claim button (an Action.Submit: the press carries its data).
    let mut claim = teams_agent_activity(&fake, "claim-1", &thread);
    claim["value"] = card.actions()[0]["data"].clone();
    from_teams(&service, &fake, &claim).await;
    shows(&page, "佐藤").await;

    let said =
        "佐藤です。<script>alert(1)</script><img src=x onerror=alert(1)>番号を教えてください";
    let say = mentioning_the_bot(teams_agent_activity(&fake, "say-1", &thread), said);
    from_teams(&service, &fake, &say).await;
    shows(&page, said).await;
    let markup = page
        .execute(
            "return document.querySelectorAll('#log img, #log script, #log [onerror]').length",
            vec![],
        )
        .await
        .expect("markup");
    assert_eq!(markup, json!(0));
    assert!(page.get_alert_text().await.is_err(), "an alert opened");

    type_and_send(&page, "０９０ー１２３４ー５６７８ です").await;
    let relayed = {
        let thread = thread.clone();
        fake.wait_for("the person's text in the card's thread", move |p| {
            p.conversation == thread && p.text().contains("****")
        })
        .await
    };
    let relayed = relayed.text();
    assert!(
        !relayed.contains("1234") && !relayed.contains("１２３４"),
        "{relayed}"
    );
    assert!(relayed.contains("です"), "{relayed}");

    let close = mentioning_the_bot(teams_agent_activity(&fake, "close-1", &thread), "close");
    from_teams(&service, &fake, &close).await;
    let question = text("csat-question", &[]);
    shows(&page, &question).await;
    let choices = page
        .execute(
            "return Array.from(document.querySelectorAll('#log .msg.bot')).filter(m => m.firstChild.textContent.includes(arguments[0])).flatMap(m => Array.from(m.querySelectorAll('button')).map(b => b.dataset.choice));",
            vec![json!(question)],
        )
        .await
        .expect("choices");
    assert_eq!(choices, json!(["csat-yes", "csat-no"]));
    // An alert opened by anything shown earlier would still be open here.
    assert!(page.get_alert_text().await.is_err(), "an alert opened");
    page.close().await.expect("close");
    service.stop().await;
    drop(driver);
}
