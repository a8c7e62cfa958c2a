//! What the SQLite store remembers of its own writes, so the reads every
//! input makes (the conversation at an address, its record, its channel
//! reference) cost a map lookup instead of a query on a reader connection
//! (a read transaction, a page cache reset after each commit, a `pread`
//! per page, the state's JSON parsed again). Measured at C=100 on the
//! shared harness, those reads were about a tenth of `serve`'s CPU.
//!
//! Only the writer thread puts what it wrote here, and only after the
//! batch's `COMMIT` returned: nothing uncommitted is ever seen. A read that
//! misses asks the database and keeps the answer, unless the writer
//! changed anything while that query ran (an epoch counter tells), so a
//! stale answer is never kept.
//!
//! It is correct because serve is the only writer of its SQLite file (the
//! writer thread owns the only writing connection). Should another process
//! write the file anyway, a commit from a stale record still cannot be
//! lost: the version check refuses it, the conflict evicts the record and
//! the desk loads it again from the database.
//!
//! A conversation's state is kept as the JSON text stored, not as a
//! `serde_json::Value` (a tree of maps about seven times the size of its
//! text): parsed again on each load, which costs about what cloning the
//! tree would.
//!
//! Bounded: each map keeps two generations of at most [`GENERATION`]
//! entries; when the newer one fills up, the older one is dropped, so what
//! is used keeps being found and memory stays flat with 100,000
//! conversations.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};

use crate::conversation::store::{Commit, ConversationRecord};

/// Entries per generation (two generations per map).
const GENERATION: usize = 4096;

/// A map bounded to two generations: lookups promote an entry of the older
/// generation; inserting into a full newer generation drops the older.
struct Generations<K, V> {
    newer: HashMap<K, V>,
    older: HashMap<K, V>,
    limit: usize,
}

impl<K: Eq + Hash + Clone, V> Generations<K, V> {
    fn new(limit: usize) -> Self {
        Generations {
            newer: HashMap::new(),
            older: HashMap::new(),
            limit,
        }
    }

    fn get(&mut self, key: &K) -> Option<&V> {
        if let Some(value) = self.older.remove(key) {
            self.insert(key.clone(), value);
        }
        self.newer.get(key)
    }

    fn insert(&mut self, key: K, value: V) {
        self.older.remove(&key);
        if self.newer.len() >= self.limit && !self.newer.contains_key(&key) {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key, value);
    }

    /// Removes and returns an entry.
    fn take(&mut self, key: &K) -> Option<V> {
        self.newer.remove(key).or_else(|| self.older.remove(key))
    }

    fn remove(&mut self, key: &K) {
        self.newer.remove(key);
        self.older.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

/// (channel, address): one key string, the two joined by a NUL (which
/// neither contains).
fn address_key(channel: &str, address: &str) -> String {
    format!("{channel}\u{0}{address}")
}

/// Timestamps as stored (microseconds), so a record from here equals the
/// one the database would give.
fn as_stored(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// A conversation as stored: the record with `state` left `Null`, and the
/// state's JSON text.
#[derive(Clone)]
struct Stored {
    record: ConversationRecord,
    state: String,
}

impl Stored {
    fn new(mut record: ConversationRecord, state: String) -> Stored {
        record.state = serde_json::Value::Null;
        Stored { record, state }
    }

    /// The record with its state parsed; `None` if the text does not parse
    /// (never kept that way: the database is asked instead).
    fn record(&self) -> Option<ConversationRecord> {
        let state = serde_json::from_str(&self.state).ok()?;
        Some(ConversationRecord {
            state,
            ..self.record.clone()
        })
    }
}

struct Maps {
    /// Bumped by every change the writer makes here.
    epoch: u64,
    conversations: Generations<String, Stored>,
    /// The conversation found at an address (the one updated last), and
    /// when it was updated.
    latest_at_address: Generations<String, (String, DateTime<Utc>)>,
    references: Generations<String, String>,
}

/// The store's memory of committed writes; see the module docs.
pub struct Cache {
    maps: Mutex<Maps>,
}

/// The writer's epoch when a read began: a database answer is kept only if
/// nothing was written since.
#[derive(Clone, Copy)]
pub struct Epoch(u64);

impl Default for Cache {
    fn default() -> Self {
        Cache::with_limit(GENERATION)
    }
}

impl Cache {
    fn with_limit(limit: usize) -> Cache {
        Cache {
            maps: Mutex::new(Maps {
                epoch: 0,
                conversations: Generations::new(limit),
                latest_at_address: Generations::new(limit),
                references: Generations::new(limit),
            }),
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Call before a database read whose answer may be kept.
    pub fn epoch(&self) -> Epoch {
        Epoch(self.maps().epoch)
    }

    pub fn conversation(&self, id: &str) -> Option<ConversationRecord> {
        let stored = self.maps().conversations.get(&id.to_string()).cloned()?;
        stored.record()
    }

    /// A conversation's address (`Some(None)`: known to have none).
    pub fn address_of(&self, id: &str) -> Option<Option<String>> {
        self.maps()
            .conversations
            .get(&id.to_string())
            .map(|stored| stored.record.address.clone())
    }

    /// The id of the conversation last updated at (channel, address), if
    /// known here.
    pub fn at_address(&self, channel: &str, address: &str) -> Option<String> {
        self.maps()
            .latest_at_address
            .get(&address_key(channel, address))
            .map(|(id, _)| id.clone())
    }

    pub fn reference(&self, channel: &str, address: &str) -> Option<String> {
        self.maps()
            .references
            .get(&address_key(channel, address))
            .cloned()
    }

    /// Keeps a conversation read from the database (and, when it was read
    /// by address, that it is the one there) unless a write came between.
    pub fn keep_read(&self, since: Epoch, record: &ConversationRecord, by_address: bool) {
        let mut maps = self.maps();
        if maps.epoch != since.0 {
            return;
        }
        if by_address {
            if let Some(address) = &record.address {
                let key = address_key(&record.channel, address);
                maps.latest_at_address
                    .insert(key, (record.id.clone(), record.updated_at));
            }
        }
        let stored = Stored::new(record.clone(), record.state.to_string());
        maps.conversations.insert(record.id.clone(), stored);
    }

    pub fn keep_reference(&self, since: Epoch, channel: &str, address: &str, reference: &str) {
        let mut maps = self.maps();
        if maps.epoch == since.0 {
            maps.references
                .insert(address_key(channel, address), reference.to_string());
        }
    }

    /// The writer committed `commit` (its state stored as `state`) as
    /// `version` (its batch's `COMMIT` returned).
    pub fn committed(&self, commit: Commit, state: String, version: i64) {
        let mut maps = self.maps();
        maps.epoch += 1;
        let Commit {
            conversation: written,
            expected_version,
            reference,
            ..
        } = commit;
        let id = written.id.clone();
        let channel = written.channel.clone();
        let written_address = written.address.clone();
        let updated_at = as_stored(written.updated_at);
        let record = if expected_version.is_none() {
            // Created: every column is what the writer inserted.
            Some(Stored::new(
                ConversationRecord {
                    version,
                    created_at: as_stored(written.created_at),
                    updated_at,
                    ..written
                },
                state,
            ))
        } else {
            // Updated: only state, locale, version and time change; the rest
            // is taken from what the database said before.
            let before = maps.conversations.take(&id);
            before.map(|before| Stored {
                record: ConversationRecord {
                    locale: written.locale,
                    version,
                    updated_at,
                    ..before.record
                },
                state,
            })
        };
        if let Some(reference) = reference {
            maps.references.insert(
                address_key(&reference.channel, &reference.address),
                reference.reference,
            );
        }
        let Some(record) = record else {
            // Unknown here: the database answers the next read, by id and
            // by address.
            if let Some(address) = &written_address {
                maps.latest_at_address
                    .remove(&address_key(&channel, address));
            }
            return;
        };
        let address = record.record.address.clone();
        maps.conversations.insert(id.clone(), record);
        if let Some(address) = address {
            let key = address_key(&channel, &address);
            let known = maps.latest_at_address.get(&key).cloned();
            match known {
                // Another conversation there was updated later: it stays
                // the one found.
                Some((other, at)) if other != id && at > updated_at => {}
                // A tie (the database's order is then not ours to guess) or
                // this one's time went back: ask the database next time.
                Some((other, at)) if at == updated_at && other != id => {
                    maps.latest_at_address.remove(&key)
                }
                Some((same, at)) if same == id && at > updated_at => {
                    maps.latest_at_address.remove(&key)
                }
                Some(_) => maps.latest_at_address.insert(key, (id, updated_at)),
                // Unknown here: the database may know a later one.
                None => {}
            }
        }
    }

    /// The store closed: forget everything, so reads go to the (closed)
    /// database and are refused like any other.
    pub fn clear(&self) {
        let mut maps = self.maps();
        maps.epoch += 1;
        let limit = maps.conversations.limit;
        maps.conversations = Generations::new(limit);
        maps.latest_at_address = Generations::new(limit);
        maps.references = Generations::new(limit);
    }

    /// A commit of this conversation was refused as a conflict: what is
    /// here may be stale.
    pub fn conflicted(&self, id: &str) {
        let mut maps = self.maps();
        maps.epoch += 1;
        maps.conversations.remove(&id.to_string());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let maps = self.maps();
        maps.conversations.len() + maps.latest_at_address.len() + maps.references.len()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn record(id: &str, address: &str, secs: i64) -> ConversationRecord {
        let at = Utc
            .timestamp_opt(1_700_000_000 + secs, 123_456_789)
            .unwrap();
        ConversationRecord {
            id: id.into(),
            channel: "teams".into(),
            user_key: "u".into(),
            locale: "ja".into(),
            state: json!({"node": "start"}),
            version: 1,
            created_at: at,
            updated_at: at,
            address: Some(address.into()),
        }
    }

    fn commit_of(commit: Commit) -> (Commit, String) {
        let state = commit.conversation.state.to_string();
        (commit, state)
    }

    fn committed(cache: &Cache, commit: Commit, version: i64) {
        let (commit, state) = commit_of(commit);
        cache.committed(commit, state, version);
    }

    fn update(before: &ConversationRecord, secs: i64, node: &str) -> Commit {
        let mut written = before.clone();
        written.state = json!({ "node": node });
        written.updated_at = Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap();
        Commit::new(written, Some(before.version))
    }

    #[test]
    fn a_created_conversation_is_found_by_id_but_not_yet_by_address() {
        let cache = Cache::default();
        committed(&cache, Commit::new(record("c1", "a", 0), None), 1);
        let found = cache.conversation("c1").expect("kept");
        assert_eq!(found.version, 1);
        assert_eq!(found.updated_at.timestamp_subsec_nanos(), 123_456_000);
        // The database may hold a later conversation at that address.
        assert_eq!(cache.at_address("teams", "a"), None);
    }

    #[test]
    fn an_update_keeps_the_columns_it_does_not_write() {
        let cache = Cache::default();
        let before = record("c1", "a", 0);
        cache.keep_read(cache.epoch(), &before, true);
        committed(&cache, update(&before, 5, "asked"), 2);
        let after = cache.conversation("c1").unwrap();
        assert_eq!(after.state, json!({"node": "asked"}));
        assert_eq!(after.version, 2);
        assert_eq!(after.created_at, before.created_at, "as read");
        assert_eq!(after.updated_at.timestamp(), 1_700_000_005);
        assert_eq!(cache.at_address("teams", "a").as_deref(), Some("c1"));
    }

    #[test]
    fn an_update_of_an_unknown_conversation_is_not_guessed() {
        let cache = Cache::default();
        committed(&cache, update(&record("c1", "a", 0), 5, "asked"), 7);
        assert_eq!(cache.conversation("c1"), None);
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = Cache::default();
        let since = cache.epoch();
        committed(&cache, Commit::new(record("c2", "b", 0), None), 1);
        cache.keep_read(since, &record("c1", "a", 0), true);
        assert_eq!(cache.conversation("c1"), None);
        assert_eq!(cache.at_address("teams", "a"), None);
    }

    #[test]
    fn the_conversation_updated_last_is_the_one_at_the_address() {
        let cache = Cache::default();
        let old = record("old", "a", 0);
        cache.keep_read(cache.epoch(), &old, true);
        let new = record("new", "a", 10);
        committed(&cache, Commit::new(new, None), 1);
        assert_eq!(cache.at_address("teams", "a").as_deref(), Some("new"));
        // The old one answered later than the new one was made.
        committed(&cache, update(&old, 20, "closed"), 2);
        assert_eq!(cache.at_address("teams", "a").as_deref(), Some("old"));
        // A tie is left to the database.
        let tie = update(&cache.conversation("new").unwrap(), 20, "x");
        committed(&cache, tie, 2);
        assert_eq!(cache.at_address("teams", "a"), None);
    }

    #[test]
    fn a_conflict_forgets_the_record() {
        let cache = Cache::default();
        cache.keep_read(cache.epoch(), &record("c1", "a", 0), false);
        cache.conflicted("c1");
        assert_eq!(cache.conversation("c1"), None);
    }

    #[test]
    fn memory_is_bounded_by_two_generations() {
        let cache = Cache::with_limit(10);
        for n in 0..1000 {
            cache.keep_read(cache.epoch(), &record(&format!("c{n}"), "a", n), true);
        }
        assert!(cache.len() <= 2 * 10 + 1, "{} entries", cache.len());
        assert!(cache.conversation("c999").is_some());
        assert!(cache.conversation("c0").is_none());
    }
}
