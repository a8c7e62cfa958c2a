//! The flow model: what `flows/*.toml` files contain, as Rust types.
//!
//! A flow is data that help-desk staff edit without touching Rust: nodes (say,
//! ask with choices, collect a value with a named validator, branch on
//! collected facts, hand off to a person, end), the transitions between them,
//! the FAQ case (A–F) each node belongs to, and the intents that free text is
//! matched against. Loading only parses; [`crate::flow::check`] reports every
//! structural mistake with the file and node it is in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A whole flow file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub flow: FlowHeader,
    #[serde(default)]
    pub matcher: MatcherSettings,
    #[serde(default)]
    pub intents: Vec<Intent>,
    /// Sign-in error codes (`AADSTS…`) the bot recognises in typed text.
    #[serde(default)]
    pub signin_errors: Vec<SigninError>,
    /// Words that name a cause outright (carriers, landline words…).
    #[serde(default)]
    pub concepts: Vec<Concept>,
    pub nodes: BTreeMap<String, Node>,
    /// Where the flow was loaded from (for error messages); not in the file.
    #[serde(skip)]
    pub source: PathBuf,
}

/// The `[flow]` table: identity and the nodes global commands lead to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowHeader {
    pub id: String,
    /// The node a new conversation starts at.
    pub start: String,
    /// Where "start over" leads (default: `start`).
    #[serde(default)]
    pub restart: Option<String>,
    /// Message said before restarting.
    #[serde(default)]
    pub restart_message: Option<String>,
    /// The node that queues the conversation for a person.
    pub handoff: String,
    /// The node "it is solved" leads to (the satisfaction question).
    pub solved: String,
    /// Where a message with a phone number in it goes (the node that
    /// collects and analyses the number; the number is not asked again).
    #[serde(default)]
    pub phone_node: Option<String>,
    /// Where a message that says how many times the person tried goes
    /// (the count is not asked again).
    #[serde(default)]
    pub attempts_node: Option<String>,
    /// Where case A's reminder leads when the person is still waiting at
    /// one of the nodes listed in `reminder_from` (the "how did it go?"
    /// question); elsewhere the reminder is only said.
    #[serde(default)]
    pub reminder_goto: Option<String>,
    #[serde(default)]
    pub reminder_from: Vec<String>,
    /// The intent that undoes the last answer ("ひとつ戻る", "back").
    #[serde(default)]
    pub back_intent: Option<String>,
    /// Slots that outlive a new start of the conversation ("start over",
    /// an expired session, a message after it was closed): for example a
    /// counter of finished rounds kept per conversation (`count` on a
    /// node). Everything else starts afresh.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Messages used by the engine itself (not tied to a node).
    pub messages: EngineMessages,
}

/// Message ids the engine sends on its own: polite answers to input that no
/// node handles. Every one must exist in every locale (`madoguchi check`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineMessages {
    pub empty_input: String,
    pub too_long: String,
    pub not_understood: String,
    pub stale_choice: String,
    pub clarify: String,
    pub clarify_none: String,
    pub session_expired: String,
    pub queued_ack: String,
    pub closed_reopen: String,
    pub timer_reminder: String,
    pub offer_human: String,
    /// Said when a sign-in error code that has no entry of its own was
    /// noted for the staff (argument `$code`).
    #[serde(default)]
    pub signin_error_noted: Option<String>,
    /// Said when "back" returns to the previous question.
    #[serde(default)]
    pub back_ack: Option<String>,
    /// Said when there is nothing to go back to.
    #[serde(default)]
    pub back_nothing: Option<String>,
}

/// Tuning of free-text matching that belongs with the content.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MatcherSettings {
    /// Markers of a negative answer (`ません`, `いいえ`, `not`…). An input and
    /// an example that disagree on negation count as less similar.
    #[serde(default)]
    pub negations: Vec<String>,
    /// Politeness and filler phrases (`お願いします`, `です`, `please`) removed
    /// before comparing, so that they do not make unrelated texts look alike.
    #[serde(default)]
    pub fillers: Vec<String>,
    /// Past-tense endings (`ました`, `った`, `tried`): a command intent
    /// (`command = true`) does not fire on a description of the past…
    #[serde(default)]
    pub past_markers: Vec<String>,
    /// …unless the text also asks for something (`たい`, `ください`,
    /// `please`). A negated text never fires a command.
    #[serde(default)]
    pub request_markers: Vec<String>,
    /// Where a message divides into clauses (`。`, `けど`, `but`): a
    /// concept word in a clause that is negated does not count
    /// ("海外にはいません。ドコモから変えました" says C, not E).
    #[serde(default)]
    pub clause_breaks: Vec<String>,
    /// Negative forms that describe the symptom, not a denial
    /// (`届かない`, `来ない`, `鳴らない`): they do not negate a clause.
    #[serde(default)]
    pub symptoms: Vec<String>,
    /// Words after which a negation limits rather than denies (`しか`:
    /// "固定電話しか持っていません" says the person has a landline).
    #[serde(default)]
    pub limiters: Vec<String>,
}

/// A free-text intent: what a person may say, and where it leads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub id: String,
    /// Message id of the short label used when the bot asks "did you mean…".
    pub label: String,
    /// The node the intent leads to.
    pub goto: String,
    /// The FAQ case the intent points at, if any (recorded as "suspected").
    #[serde(default)]
    pub case: Option<String>,
    /// Example utterances; matching compares the input with each of them.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Whether the intent is also matched at collect nodes, where the
    /// validator normally takes the text (for "talk to a person", "start
    /// over"…).
    #[serde(default)]
    pub everywhere: bool,
    /// A command ("start over", "talk to a person", "solved"): it fires only
    /// when the text asks for it — never on a negated text, and not on a
    /// past-tense description unless `past_ok` or a request marker.
    #[serde(default)]
    pub command: bool,
    /// For commands whose past tense is the request ("解決しました").
    #[serde(default)]
    pub past_ok: bool,
    /// Words that keep this intent from firing ("解決したい" wants a
    /// solution: it is not "solved").
    #[serde(default)]
    pub blockers: Vec<String>,
    /// Words that name the command outright (`担当者`, `最初から`,
    /// `ログインできた`), found like concept words. A command word fires
    /// in a clause that is not negated, when the text asks for something
    /// (or, with `past_ok`, when it reports it), and never with a blocker.
    #[serde(default)]
    pub words: Vec<String>,
}

/// Words that say a cause outright ("ドコモ", "固定電話", "転送"…): found
/// in a message before it is compared with examples, they route to `goto`.
/// ASCII words match whole words only ("au" is not in "authenticator").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concept {
    pub id: String,
    /// The FAQ case the words point at (recorded as "suspected").
    #[serde(default)]
    pub case: Option<String>,
    pub goto: String,
    pub words: Vec<String>,
    /// A weak concept (the bare symptom "SMSが来ない"): it counts only when
    /// no other concept and no count of attempts is found, and never for a
    /// cause the person denied in the same message.
    #[serde(default)]
    pub fallback: bool,
}

/// A sign-in error code people paste from the sign-in screen. Every code
/// found in a message is recorded for the agents' summary; a listed code
/// also says its message and, with `goto`, moves there.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninError {
    /// The digits after `AADSTS`.
    pub code: String,
    /// Message said when the code is recognised.
    pub say: String,
    /// Where to go; none: the conversation goes on where it is.
    #[serde(default)]
    pub goto: Option<String>,
    /// The handoff reason when `goto` is the handoff node (`blocked`…).
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a node does when the conversation enters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Say messages, then continue to `next` at once.
    Say,
    /// Say messages and wait for a choice (free text is matched).
    Ask,
    /// Say messages and wait for a value checked by `validator`.
    Collect,
    /// Go to the first rule whose condition holds, else `otherwise`.
    Branch,
    /// Say messages and queue the conversation for a person.
    Handoff,
    /// Say messages and close the conversation.
    End,
}

/// One node of the flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub kind: NodeKind,
    /// The FAQ case (A–F) this node belongs to.
    #[serde(default)]
    pub case: Option<String>,
    /// Messages said on entering the node, in order.
    #[serde(default)]
    pub say: Vec<MessageRef>,
    /// The message repeated when the node asks again (default: the last of
    /// `say`).
    #[serde(default)]
    pub prompt: Option<MessageRef>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Next node for `say` and `collect` nodes.
    #[serde(default)]
    pub next: Option<String>,
    /// Validator name for `collect` nodes (`phone_number`, `attempt_count`,
    /// `last_attempt`).
    #[serde(default)]
    pub validator: Option<String>,
    /// Slot a `collect` node stores its value in.
    #[serde(default)]
    pub slot: Option<String>,
    /// Rules of a `branch` node, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub otherwise: Option<String>,
    /// A named computation run on entering a `say` node (`lockout_advice`).
    #[serde(default)]
    pub action: Option<String>,
    /// Whether free text may jump to another case's intent from here
    /// (default true for `ask` nodes).
    #[serde(default)]
    pub case_jumps: Option<bool>,
    /// Slots counted up by one each time the conversation enters this
    /// node (a missing slot counts from 0), before its messages are said,
    /// so they can show the new count (`args = { n = "rounds" }`).
    #[serde(default)]
    pub count: Vec<String>,
}

/// A reference to a Fluent message, with arguments taken from slots.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum MessageRef {
    Plain(String),
    WithArgs {
        id: String,
        /// Fluent variable name -> slot path (`phone.display`).
        #[serde(default)]
        args: BTreeMap<String, String>,
    },
}

impl MessageRef {
    pub fn id(&self) -> &str {
        match self {
            MessageRef::Plain(id) => id,
            MessageRef::WithArgs { id, .. } => id,
        }
    }

    pub fn args(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            MessageRef::Plain(_) => None,
            MessageRef::WithArgs { args, .. } => Some(args),
        }
    }
}

/// A button the person can press (or pick by number in the terminal).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Unique in the whole flow, so a press from an earlier step is
    /// recognised as stale instead of being applied to the current one.
    pub id: String,
    /// Message id of the button label.
    pub label: String,
    pub goto: String,
    /// Extra phrasings that mean this choice when typed.
    #[serde(default)]
    pub examples: Vec<String>,
    /// What choosing this says about the node's case.
    #[serde(default)]
    pub finding: Option<Verdict>,
    /// For `collect` nodes: the slot value a press stores, validated like text.
    #[serde(default)]
    pub value: Option<String>,
    /// Slots set when chosen, each to the value given (for example
    /// `set = { csat_helpful = true }` or `set = { q1 = "yes" }`); messages
    /// read them as arguments (`args = { answer = "q1" }`), and a Fluent
    /// selector can turn a stored word into the locale's text.
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// A branch rule: `when` is a condition over slots (see
/// [`crate::flow::condition`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: String,
    pub goto: String,
    #[serde(default)]
    pub finding: Option<Verdict>,
}

/// What an answer says about a FAQ case; collected for the agent's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The case applies.
    RuledIn,
    /// The case does not apply.
    RuledOut,
    /// The case was mentioned or is likely, not confirmed.
    Suspected,
    /// The case applied and the fix did not help.
    FixFailed,
    /// The fix worked.
    Fixed,
    /// The person could not tell.
    Unsure,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RuledIn => "ruled_in",
            Verdict::RuledOut => "ruled_out",
            Verdict::Suspected => "suspected",
            Verdict::FixFailed => "fix_failed",
            Verdict::Fixed => "fixed",
            Verdict::Unsure => "unsure",
        }
    }
}

/// Why a flow file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FlowLoadError {
    #[error("{path}: cannot read the flow file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid flow file: {message}")]
    Parse { path: PathBuf, message: String },
}

impl Flow {
    /// Parses a flow from TOML text; `source` names it in error messages.
    pub fn from_toml(text: &str, source: &Path) -> Result<Flow, FlowLoadError> {
        let mut flow: Flow = toml::from_str(text).map_err(|e| FlowLoadError::Parse {
            path: source.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        flow.source = source.to_path_buf();
        Ok(flow)
    }

    /// Reads and parses one flow file.
    pub fn load(path: &Path) -> Result<Flow, FlowLoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| FlowLoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Flow::from_toml(&text, path)
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn restart_node(&self) -> &str {
        self.flow.restart.as_deref().unwrap_or(&self.flow.start)
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }

    /// Every node id a node can lead to, with a short name of the field.
    pub fn targets_of(node: &Node) -> Vec<(&'static str, &str)> {
        let mut targets = Vec::new();
        for choice in &node.choices {
            targets.push(("choice", choice.goto.as_str()));
        }
        if let Some(next) = &node.next {
            targets.push(("next", next.as_str()));
        }
        for rule in &node.rules {
            targets.push(("rule", rule.goto.as_str()));
        }
        if let Some(otherwise) = &node.otherwise {
            targets.push(("otherwise", otherwise.as_str()));
        }
        targets
    }

    /// Finds the choice with `id` in the whole flow and the node offering it.
    pub fn find_choice(&self, id: &str) -> Option<(&str, &Choice)> {
        self.nodes.iter().find_map(|(node_id, node)| {
            node.choices
                .iter()
                .find(|c| c.id == id)
                .map(|c| (node_id.as_str(), c))
        })
    }
}

/// Every message id a flow refers to, with the variables it is given, for
/// locale checks. Returns (message id, variables, where it is used).
pub fn message_uses(flow: &Flow) -> Vec<(String, Vec<String>, String)> {
    let mut uses = Vec::new();
    let m = &flow.flow.messages;
    for (name, id, vars) in [
        ("empty_input", &m.empty_input, vec![]),
        ("too_long", &m.too_long, vec!["max".to_string()]),
        ("not_understood", &m.not_understood, vec![]),
        ("stale_choice", &m.stale_choice, vec![]),
        ("clarify", &m.clarify, vec![]),
        ("clarify_none", &m.clarify_none, vec![]),
        ("session_expired", &m.session_expired, vec![]),
        ("queued_ack", &m.queued_ack, vec![]),
        ("closed_reopen", &m.closed_reopen, vec![]),
        (
            "timer_reminder",
            &m.timer_reminder,
            vec!["retry_at".to_string()],
        ),
        ("offer_human", &m.offer_human, vec![]),
    ] {
        uses.push((id.clone(), vars, format!("[flow.messages] {name}")));
    }
    for (name, id) in [("back_ack", &m.back_ack), ("back_nothing", &m.back_nothing)] {
        if let Some(id) = id {
            uses.push((id.clone(), vec![], format!("[flow.messages] {name}")));
        }
    }
    if let Some(noted) = &m.signin_error_noted {
        uses.push((
            noted.clone(),
            vec!["code".to_string()],
            "[flow.messages] signin_error_noted".into(),
        ));
    }
    if let Some(restart) = &flow.flow.restart_message {
        uses.push((restart.clone(), vec![], "[flow] restart_message".into()));
    }
    for intent in &flow.intents {
        uses.push((
            intent.label.clone(),
            vec![],
            format!("intent \"{}\"", intent.id),
        ));
    }
    for error in &flow.signin_errors {
        uses.push((
            error.say.clone(),
            vec![],
            format!("signin error \"AADSTS{}\"", error.code),
        ));
    }
    for (node_id, node) in &flow.nodes {
        let refs = node.say.iter().chain(node.prompt.iter());
        for message in refs {
            let vars = message
                .args()
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            uses.push((
                message.id().to_string(),
                vars,
                format!("node \"{node_id}\""),
            ));
        }
        for choice in &node.choices {
            uses.push((
                choice.label.clone(),
                vec![],
                format!("node \"{node_id}\" choice \"{}\"", choice.id),
            ));
        }
    }
    uses
}
