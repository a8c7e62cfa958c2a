//! Several instances on one PostgreSQL (issue 12): each "instance" here is
//! a desk over its own `PostgresStore` (its own connection pools, as a
//! separate process would have), all on one scratch database.
//!
//! - inputs of one conversation from two instances are serialised (none
//!   lost, none forked, in the order they reached the lock);
//! - outbox rows are claimed by one sender at a time, and a dead holder's
//!   rows are claimed again once its lease ran out;
//! - two senders on one outbox deliver every row exactly once, in order
//!   per conversation;
//! - a due timer fired by two instances at once fires once;
//! - a redelivered activity (same id) is a no-op on any instance, also
//!   when it opened the conversation;
//! - two different first messages of one person on two instances at once
//!   open one conversation, not two;
//! - a web page open on one instance gets the replies another instance
//!   delivered, at once (two real `serve`s, LISTEN/NOTIFY).
//!
//! Needs `MADOGUCHI_TEST_PG` (a role that may create databases; `.ci/run`
//! starts a throwaway cluster and sets it). Unset, each test says why it
//! is skipped and passes, except under CI (`CI` set), where it fails.

#[path = "support/gated_store.rs"]
mod gated_store;
#[path = "support/hooked_store.rs"]
mod hooked_store;
mod support;
#[path = "support/web_client.rs"]
mod web_client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use madoguchi::clock::Clock;
use madoguchi::conversation::postgres::PostgresStore;
use madoguchi::conversation::store::*;
use madoguchi::desk::{Desk, Inbound};
use madoguchi::flow::engine::Input;
use madoguchi::outbox::{Deliver, DeliveryError, OutboxItem, OutboxRow, SenderSettings};
use serde_json::json;
use support::jst;
use tokio::sync::{watch, Notify};

// ----- a scratch database per test ------------------------------------

/// Runs `test` with `instances` stores on one scratch database; drops the
/// database also when the test fails.
async fn with_instances<F, Fut>(name: &str, instances: usize, test: F)
where
    F: FnOnce(Vec<Arc<PostgresStore>>, String) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = support::postgres::admin_url(name, "instance") else {
        return;
    };
    let scratch = support::postgres::ScratchDatabase::create(&admin_url, name).await;
    let mut stores = Vec::new();
    for _ in 0..instances {
        stores.push(Arc::new(
            PostgresStore::open(&scratch.url).await.expect("open"),
        ));
    }
    let url = scratch.url.clone();
    let outcome = tokio::spawn(test(stores.clone(), url)).await;
    for store in stores {
        store.close().await;
    }
    scratch.drop().await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

fn desks(stores: &[Arc<PostgresStore>]) -> Vec<Desk> {
    stores
        .iter()
        .map(|store| support::desk(store.clone() as Arc<dyn Store>))
        .collect()
}

fn person_lines(transcript: &[TranscriptEntry]) -> Vec<String> {
    transcript
        .iter()
        .filter(|line| line.direction == Direction::Person)
        .map(|line| line.text.clone())
        .collect()
}

/// Advisory locks waited for right now (inputs queued behind a holder).
async fn advisory_waiters(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let waiting = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
    )
    .fetch_one(&mut conn)
    .await
    .expect("pg_locks");
    conn.close().await.ok();
    waiting
}

/// Polls until `n` inputs wait for an advisory lock (PostgreSQL does not
/// announce a waiter; its lock table is the only witness).
async fn until_waiters(url: &str, n: i64) {
    for _ in 0..500 {
        if advisory_waiters(url).await >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} inputs never queued behind the held conversation");
}

// ----- serialisation --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inputs_of_one_conversation_from_two_instances_are_serialised() {
    with_instances("serialise", 2, |stores, _| async move {
        let desks = desks(&stores);
        let now = jst(10, 0);
        let started = desks[0]
            .start("teams", "u1", "ja", now)
            .await
            .expect("start");
        let id = started.conversation_id.clone();
        const PER_INSTANCE: usize = 12;
        let mut tasks = Vec::new();
        for (n, desk) in desks.iter().enumerate() {
            for i in 0..PER_INSTANCE {
                let (desk, id) = (desk.clone(), id.clone());
                tasks.push(tokio::spawn(async move {
                    desk.handle(
                        &id,
                        Input::Text(format!("instance {n} message {i}")),
                        Some(format!("act-{n}-{i}")),
                        now,
                    )
                    .await
                }));
            }
        }
        for task in tasks {
            let outcome = task.await.expect("task").expect("handled, never gave up");
            assert!(!outcome.duplicate);
        }
        let record = stores[0].load(&id).await.expect("load").expect("exists");
        assert_eq!(
            record.version,
            1 + 2 * PER_INSTANCE as i64,
            "every input committed once, one after another"
        );
        let lines = person_lines(&stores[1].transcript(&id).await.expect("transcript"));
        assert_eq!(lines.len(), 2 * PER_INSTANCE, "{lines:?}");
        // Within one instance the desk's own lock keeps arrival order; the
        // shared hold never reorders them.
        for n in 0..2 {
            let mine: Vec<&String> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("instance {n} ")))
                .collect();
            assert_eq!(mine.len(), PER_INSTANCE);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inputs_queued_behind_another_instance_go_in_arrival_order() {
    with_instances("arrival", 3, |stores, url| async move {
        let desks = desks(&stores);
        let now = jst(10, 0);
        let id = desks[0]
            .start("teams", "u1", "ja", now)
            .await
            .expect("start")
            .conversation_id;
        // Instance 0 holds the conversation (an input in progress).
        let held = stores[0].hold_conversation(&id).await.expect("hold");
        let first = {
            let (desk, id) = (desks[1].clone(), id.clone());
            tokio::spawn(async move {
                desk.handle(&id, Input::Text("first".into()), Some("a1".into()), now)
                    .await
            })
        };
        until_waiters(&url, 1).await;
        let second = {
            let (desk, id) = (desks[2].clone(), id.clone());
            tokio::spawn(async move {
                desk.handle(&id, Input::Text("second".into()), Some("a2".into()), now)
                    .await
            })
        };
        until_waiters(&url, 2).await;
        assert_eq!(
            stores[0]
                .load(&id)
                .await
                .expect("load")
                .expect("exists")
                .version,
            1,
            "nothing committed while the conversation is held"
        );
        drop(held);
        first.await.expect("task").expect("first");
        second.await.expect("task").expect("second");
        let lines = person_lines(&stores[0].transcript(&id).await.expect("transcript"));
        assert_eq!(lines, ["first", "second"]);
    })
    .await;
}

// ----- outbox leases --------------------------------------------------

fn relay(text: &str) -> serde_json::Value {
    OutboxRow::Relay {
        ticket: "t".into(),
        text: text.into(),
    }
    .to_payload()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_rows_have_one_holder_until_its_lease_runs_out() {
    with_instances("lease", 2, |stores, _| async move {
        let (a, b) = (&stores[0], &stores[1]);
        let t0 = Utc::now();
        let secs = chrono::Duration::seconds;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                a.enqueue("c1", "teams", relay(&format!("r{n}")), t0)
                    .await
                    .expect("enqueue"),
            );
        }
        // Eight senders claim at once: one gets every row, in order.
        let claims: Vec<_> = (0..8)
            .map(|n| {
                let store = stores[n % 2].clone();
                tokio::spawn(async move {
                    let holder = format!("holder-{n}");
                    let rows = store
                        .claim_outbox("teams", "c1", &holder, t0, t0 + secs(10), 50)
                        .await
                        .expect("claim");
                    (holder, rows)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for claim in claims {
            let (holder, rows) = claim.await.expect("claim task");
            if !rows.is_empty() {
                winners.push((holder, rows.iter().map(|r| r.id).collect::<Vec<_>>()));
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let (holder, claimed) = winners.remove(0);
        assert_eq!(claimed, ids);

        // Held: nobody else may claim or even list the conversation.
        let other = "someone-else";
        assert!(b
            .claimable_conversations("teams", other, t0 + secs(5), 10)
            .await
            .expect("claimable")
            .is_empty());
        assert!(b
            .claim_outbox("teams", "c1", other, t0 + secs(5), t0 + secs(15), 50)
            .await
            .expect("claim")
            .is_empty());
        // The holder delivers the first row (the platform's id is kept),
        // renews, then dies.
        a.mark_sent_with_receipt(ids[0], Some("1700000000001"), t0 + secs(1))
            .await
            .expect("sent");
        assert_eq!(
            b.platform_id(ids[0]).await.expect("platform id").as_deref(),
            Some("1700000000001")
        );
        a.renew_outbox_lease("teams", "c1", &holder, t0 + secs(20))
            .await
            .expect("renew");
        assert!(b
            .claim_outbox("teams", "c1", other, t0 + secs(15), t0 + secs(25), 50)
            .await
            .expect("claim")
            .is_empty());
        // After the lease: the rest is claimable again, in order.
        assert_eq!(
            b.claimable_conversations("teams", other, t0 + secs(21), 10)
                .await
                .expect("claimable"),
            ["c1"]
        );
        let taken = b
            .claim_outbox("teams", "c1", other, t0 + secs(21), t0 + secs(31), 50)
            .await
            .expect("claim");
        assert_eq!(
            taken.iter().map(|r| r.id).collect::<Vec<_>>(),
            ids[1..].to_vec()
        );
        // A holder that stops early releases: claimable at once.
        b.release_outbox_lease("teams", "c1", other)
            .await
            .expect("release");
        assert_eq!(
            a.claim_outbox("teams", "c1", &holder, t0 + secs(22), t0 + secs(32), 50)
                .await
                .expect("claim")
                .len(),
            2
        );
    })
    .await;
}

/// Records every delivery; says when `expected` rows went out.
struct Recorder {
    delivered: Mutex<Vec<(String, i64, String)>>,
    expected: usize,
    all: Notify,
    name: String,
}

#[async_trait]
impl Deliver for Recorder {
    fn channel(&self) -> &str {
        "teams"
    }

    async fn deliver(&self, _item: &OutboxItem) -> Result<(), DeliveryError> {
        unreachable!("the sender asks for a receipt")
    }

    async fn deliver_with_receipt(
        &self,
        item: &OutboxItem,
    ) -> Result<Option<String>, DeliveryError> {
        // A little platform latency, so both senders are busy at once.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let mut delivered = self.delivered.lock().expect("delivered");
        delivered.push((item.conversation_id.clone(), item.id, self.name.clone()));
        if delivered.len() >= self.expected {
            self.all.notify_one();
        }
        Ok(Some(format!("{}-{}", self.name, item.id)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_senders_deliver_every_row_once_in_order() {
    with_instances("senders", 2, |stores, _| async move {
        const CONVERSATIONS: usize = 40;
        const ROWS: usize = 5;
        let desks = desks(&stores);
        let at = Utc::now();
        let mut expected: HashMap<String, Vec<i64>> = HashMap::new();
        for c in 0..CONVERSATIONS {
            let conversation = format!("conv-{c}");
            for r in 0..ROWS {
                let id = stores[c % 2]
                    .enqueue(&conversation, "teams", relay(&format!("{r}")), at)
                    .await
                    .expect("enqueue");
                expected.entry(conversation.clone()).or_default().push(id);
            }
        }
        let shared = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopping) = watch::channel(false);
        let mut senders = Vec::new();
        let mut recorders = Vec::new();
        for (n, desk) in desks.iter().enumerate() {
            let recorder = Arc::new(Recorder {
                delivered: Mutex::new(Vec::new()),
                expected: CONVERSATIONS * ROWS,
                all: Notify::new(),
                name: format!("sender{n}"),
            });
            recorders.push(recorder.clone());
            senders.push(tokio::spawn(madoguchi::outbox::run_sender(
                desk.outbox_queue(),
                recorder,
                SenderSettings::default(),
                Arc::new(madoguchi::clock::SystemClock),
                stopping.clone(),
            )));
        }
        // Done when no row is pending any more.
        loop {
            if stores[0]
                .pending_conversations("teams", 10)
                .await
                .expect("pending")
                .is_empty()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).expect("stop");
        for sender in senders {
            sender.await.expect("sender");
        }
        for recorder in &recorders {
            shared
                .lock()
                .expect("shared")
                .extend(recorder.delivered.lock().expect("delivered").clone());
        }
        let delivered = shared.lock().expect("shared").clone();
        assert_eq!(
            delivered.len(),
            CONVERSATIONS * ROWS,
            "every row exactly once"
        );
        let mut by_conversation: HashMap<String, Vec<i64>> = HashMap::new();
        for (conversation, id, _) in &delivered {
            by_conversation
                .entry(conversation.clone())
                .or_default()
                .push(*id);
        }
        assert_eq!(by_conversation, expected, "in order within a conversation");
        let senders_used: std::collections::HashSet<&String> =
            delivered.iter().map(|(_, _, name)| name).collect();
        assert_eq!(senders_used.len(), 2, "both instances took part");
        let (_, id, name) = &delivered[0];
        assert_eq!(
            stores[1].platform_id(*id).await.expect("platform id"),
            Some(format!("{name}-{id}")),
            "the platform's id is kept on the row"
        );
    })
    .await;
}

// ----- timers -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_timer_fired_by_two_instances_fires_once() {
    with_instances("timers", 2, |stores, _| async move {
        const CONVERSATIONS: usize = 6;
        let desks = desks(&stores);
        let now = jst(14, 0);
        let mut ids = Vec::new();
        for c in 0..CONVERSATIONS {
            let desk = &desks[c % 2];
            let id = desk
                .start("console", &format!("u{c}"), "ja", now)
                .await
                .expect("start")
                .conversation_id;
            for choice in ["start-locked", "a-count-many"] {
                desk.handle(&id, Input::Choice(choice.into()), None, now)
                    .await
                    .expect("step");
            }
            let advice = desk
                .handle(&id, Input::Text("１０分前".into()), None, now)
                .await
                .expect("step");
            assert_eq!(advice.state.node, "case-a-wait");
            ids.push(id);
        }
        let later = jst(19, 0);
        let firing: Vec<_> = (0..4)
            .map(|n| {
                let desk = desks[n % 2].clone();
                tokio::spawn(async move { desk.fire_due_timers(None, later).await })
            })
            .collect();
        let mut fired = 0;
        for task in firing {
            fired += task.await.expect("task").expect("fire").len();
        }
        assert_eq!(fired, CONVERSATIONS, "one firing per timer in all");
        for id in &ids {
            let reminders = stores[0]
                .rows_after(id, 0, 100)
                .await
                .expect("rows")
                .into_iter()
                .filter(|row| row.payload.to_string().contains("reminder-lockout-over"))
                .count();
            assert_eq!(reminders, 1, "conversation {id}");
            assert_eq!(stores[1].next_timer_due(Some(id)).await.expect("due"), None);
        }
    })
    .await;
}

/// An idle instance's timer loop fires a timer another instance set and
/// never fired (it died): the loop also looks every shared poll interval,
/// since the other instance's commit woke nobody here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_instance_fires_a_timer_set_by_another() {
    with_instances("idle_timer", 2, |stores, _| async move {
        let desks = desks(&stores);
        let clock = Arc::new(madoguchi::clock::ManualClock::new(jst(14, 0)));
        let (stop, stopping) = watch::channel(false);
        // Instance B idles: nothing pending, its next look an hour away
        // without the shared poll.
        let loop_b = tokio::spawn(madoguchi::serve::timer_loop(
            desks[1].clone(),
            clock.clone(),
            stopping,
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a = &desks[0];
        let now = jst(14, 0);
        let id = a
            .start("console", "u-idle", "ja", now)
            .await
            .expect("start")
            .conversation_id;
        for choice in ["start-locked", "a-count-many"] {
            a.handle(&id, Input::Choice(choice.into()), None, now)
                .await
                .expect("step");
        }
        a.handle(&id, Input::Text("１０分前".into()), None, now)
            .await
            .expect("step");
        // Instance A dies before the timer is due; B's clock reaches it.
        clock.set(jst(19, 0));
        let fired = async {
            loop {
                if stores[1]
                    .next_timer_due(Some(&id))
                    .await
                    .expect("due")
                    .is_none()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let in_time = tokio::time::timeout(Duration::from_secs(10), fired).await;
        let _ = stop.send(true);
        let _ = loop_b.await;
        assert!(in_time.is_ok(), "the idle instance did not fire the timer");
        let reminders = stores[0]
            .rows_after(&id, 0, 100)
            .await
            .expect("rows")
            .into_iter()
            .filter(|row| row.payload.to_string().contains("reminder-lockout-over"))
            .count();
        assert_eq!(reminders, 1);
    })
    .await;
}

// ----- the Discord gateway's leader --------------------------------------

/// One instance at a time holds the gateway role; another takes it once
/// the holder's connection is gone (dropped here, as when its process
/// dies), and not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_has_one_leader_and_another_takes_over_when_it_is_gone() {
    with_instances("leader", 2, |stores, _| async move {
        let role = madoguchi::channels::discord::GATEWAY_ROLE;
        let mut first = stores[0]
            .try_lead(role)
            .await
            .expect("try")
            .expect("the first instance leads");
        for _ in 0..3 {
            assert!(
                stores[1].try_lead(role).await.expect("try").is_none(),
                "two leaders at once"
            );
        }
        // Another role is independent.
        let other = stores[1].try_lead("another-role").await.expect("try");
        assert!(other.is_some());
        // Still held after a connection check.
        let still = tokio::time::timeout(Duration::from_secs(3), first.lost()).await;
        assert!(still.is_err(), "the leadership was lost while held");
        drop(first);
        let taken = async {
            loop {
                if let Some(leadership) = stores[1].try_lead(role).await.expect("try") {
                    return leadership;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let second = tokio::time::timeout(Duration::from_secs(5), taken)
            .await
            .expect("the second instance takes over once the first is gone");
        assert!(stores[0].try_lead(role).await.expect("try").is_none());
        drop(second);
    })
    .await;
}

// ----- redelivery -------------------------------------------------------

fn inbound(text: &str, key: &str) -> Inbound {
    Inbound {
        channel: "teams".into(),
        address: "a:1-conversation".into(),
        user_key: "29:person".into(),
        locale_hint: "ja-JP".into(),
        input: Input::Text(text.into()),
        key: Some(key.into()),
        reference: None,
        at: jst(10, 0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redelivered_activity_is_a_no_op_on_any_instance() {
    with_instances("redelivery", 2, |stores, _| async move {
        let desks = desks(&stores);
        // The first activity reaches both instances at once (the platform
        // retried while the first was still working): one conversation.
        let racing: Vec<_> = (0..2)
            .map(|n| {
                let desk = desks[n].clone();
                tokio::spawn(async move {
                    desk.receive(inbound("電話が来ません", "act-1")).await
                })
            })
            .collect();
        let mut duplicates = 0;
        for task in racing {
            if task.await.expect("task").expect("receive").duplicate {
                duplicates += 1;
            }
        }
        assert_eq!(duplicates, 1);
        let conversations = stores[0]
            .conversations_of_user("teams", "29:person")
            .await
            .expect("conversations");
        assert_eq!(conversations.len(), 1, "not forked");
        let id = conversations[0].id.clone();
        // A later activity, redelivered to the other instance afterwards.
        let second = desks[1]
            .receive(inbound("SMSです", "act-2"))
            .await
            .expect("second");
        assert!(!second.duplicate);
        let again = desks[0]
            .receive(inbound("SMSです", "act-2"))
            .await
            .expect("again");
        assert!(again.duplicate);
        assert!(again.rows.is_empty(), "nothing said twice");
        let lines = person_lines(&stores[1].transcript(&id).await.expect("transcript"));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("電話が来ません"), "{lines:?}");
        assert_eq!(lines[1], "SMSです");
        assert_eq!(
            stores[0]
                .load(&id)
                .await
                .expect("load")
                .expect("exists")
                .version,
            2
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_takes_over_a_dead_instances_rows_when_the_lease_ends() {
    with_instances("takeover", 2, |stores, _| async move {
        let t0 = jst(10, 0);
        let clock = Arc::new(madoguchi::clock::ManualClock::new(t0));
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(
                stores[0]
                    .enqueue("c1", "teams", relay(&format!("r{n}")), t0)
                    .await
                    .expect("enqueue"),
            );
        }
        // Instance 0 claimed them, then was killed (it never renews).
        let claimed = stores[0]
            .claim_outbox(
                "teams",
                "c1",
                "dead-instance",
                t0,
                t0 + chrono::Duration::seconds(10),
                50,
            )
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 3);
        let recorder = Arc::new(Recorder {
            delivered: Mutex::new(Vec::new()),
            expected: 3,
            all: Notify::new(),
            name: "survivor".into(),
        });
        let desk = support::desk(stores[1].clone() as Arc<dyn Store>);
        let (stop, stopping) = watch::channel(false);
        let sender = tokio::spawn(madoguchi::outbox::run_sender(
            desk.outbox_queue(),
            recorder.clone(),
            SenderSettings::default(),
            clock.clone(),
            stopping,
        ));
        // Within the lease the survivor leaves them alone…
        assert_eq!(
            stores[1]
                .claimable_conversations("teams", "anyone", clock.now(), 10)
                .await
                .expect("claimable"),
            Vec::<String>::new()
        );
        assert!(recorder.delivered.lock().expect("delivered").is_empty());
        // …and sends them, in order, once it ran out (seen at its next
        // look at the shared outbox).
        clock.advance(chrono::Duration::seconds(11));
        recorder.all.notified().await;
        stop.send(true).expect("stop");
        sender.await.expect("sender");
        let delivered: Vec<i64> = recorder
            .delivered
            .lock()
            .expect("delivered")
            .iter()
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(delivered, ids);
    })
    .await;
}

/// One person, the same session open on two instances (a second tab, or
/// the resume link on a phone, sent by a load balancer to the other
/// instance). Whichever instance's sender delivers a reply, both pages show
/// it at once: the one that delivered pushes to its own sockets and
/// announces the session; the other, listening, sends it from its socket.
#[tokio::test]
async fn a_page_open_on_another_instance_gets_the_reply_at_once() {
    with_instances("web_across_instances", 2, |stores, _url| async move {
        let key = [(
            "MADOGUCHI_WEB_COOKIE_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        )];
        let mut services = Vec::new();
        for store in &stores {
            services.push(
                support::service::Service::start_on(
                    support::config(),
                    store.clone() as Arc<dyn Store>,
                    Arc::new(madoguchi::clock::SystemClock),
                    &key,
                )
                .await,
            );
        }
        let mut here = web_client::open(&services[0].url, None, None)
            .await
            .expect("open on the first instance");
        let cookie = here.set_cookie.clone().expect("session cookie");
        here.hello(0).await;
        let greeting = here.next_of("reply").await;
        let seen = greeting["id"].as_i64().expect("row id");
        let mut there = web_client::open(&services[1].url, None, Some(&cookie))
            .await
            .expect("open on the second instance");
        there.hello(seen).await;
        for (turn, text) in ["電話がかかってこない", "ロックされたかも"]
            .iter()
            .enumerate()
        {
            let page = if turn == 0 { &mut here } else { &mut there };
            page.send(json!({"type": "text", "text": text, "id": format!("m{turn}")}))
                .await;
            let first = here.next_of("reply").await;
            let second = there.next_of("reply").await;
            assert_eq!(first, second, "turn {turn}: the same reply on both pages");
            assert!(first["id"].as_i64().unwrap() > seen);
        }
        here.close().await;
        there.close().await;
        for service in services {
            service.shutdown().await;
        }
    })
    .await;
}

/// A person's first two messages arrive at once on two instances (a double
/// send, or Teams' "bot added" with the first message), and both instances
/// find no conversation at the address before either opens one (the store
/// makes both lookups meet). One conversation is opened; the other message
/// is its next input.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_first_messages_on_two_instances_open_one_conversation() {
    with_instances("two_first_messages", 2, |stores, url| async move {
        let gate = gated_store::gate(2);
        let desks: Vec<Desk> = stores
            .iter()
            .map(|store| support::desk(gated_store::gated(store.clone(), &gate)))
            .collect();
        let (a, b) = tokio::join!(
            desks[0].receive(inbound("電話が来ません", "first-a")),
            desks[1].receive(inbound("ロックされたかもしれない", "first-b")),
        );
        let (a, b) = (a.expect("first"), b.expect("second"));
        assert_eq!(a.conversation_id, b.conversation_id, "one conversation");
        let pool = sqlx::PgPool::connect(&url).await.expect("connect");
        let opened: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM conversations WHERE channel = 'teams' AND address = 'a:1-conversation'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(opened, 1);
        let lines = person_lines(&stores[0].transcript(&a.conversation_id).await.unwrap());
        assert_eq!(lines.len(), 2, "{lines:?}");
        pool.close().await;
    })
    .await;
}
