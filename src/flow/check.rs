//! `madoguchi check`: every structural mistake in flows and locales, one
//! line each, naming the file and the node or message to fix.
//!
//! The service runs the same check before it starts and refuses to start on
//! any problem, so a typo in a flow never reaches a person.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;

use super::condition;
use super::model::{message_uses, Flow, NodeKind};
use crate::diagnose::validators;
use crate::i18n::Catalog;

/// Actions a `say` node may name.
pub const ACTIONS: &[&str] = &["lockout_advice"];

/// The slot each action fills.
const ACTION_SLOTS: &[(&str, &str)] = &[("lockout_advice", "lockout")];

/// Slots the engine fills on its own (cases looked at, the last ticket);
/// messages may read them, a flow may not `count` or `keep` them.
const ENGINE_SLOTS: &[&str] = &["checked", "last_ticket", "handoff_reason"];

/// Every slot something in `flow` fills: a collect node's `slot`, a
/// choice's `set`, a node's `count`, an action, the engine.
pub fn filled_slots(flow: &Flow) -> BTreeSet<&str> {
    let mut slots: BTreeSet<&str> = ENGINE_SLOTS.iter().copied().collect();
    for node in flow.nodes.values() {
        slots.extend(node.slot.as_deref());
        slots.extend(node.count.iter().map(String::as_str));
        for choice in &node.choices {
            slots.extend(choice.set.keys().map(String::as_str));
        }
        if let Some(action) = node.action.as_deref() {
            slots.extend(
                ACTION_SLOTS
                    .iter()
                    .filter(|(name, _)| *name == action)
                    .map(|(_, slot)| *slot),
            );
        }
    }
    slots
}

/// Whether `name` can name a slot: not empty, no dot (a dot reads inside
/// a slot) and no white space.
fn plain_slot_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('.') && !name.chars().any(char::is_whitespace)
}

/// Problems with the slots a flow sets, counts, keeps and reads in
/// message arguments.
fn check_slots(flow: &Flow, file: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut filled = filled_slots(flow);
    // A misspelled action is reported once, as such: the slots an action
    // would fill do not also show up as unset.
    if flow
        .nodes
        .values()
        .any(|n| n.action.as_deref().is_some_and(|a| !ACTIONS.contains(&a)))
    {
        filled.extend(ACTION_SLOTS.iter().map(|(_, slot)| *slot));
    }
    for slot in &flow.flow.keep {
        if !plain_slot_name(slot) || ENGINE_SLOTS.contains(&slot.as_str()) {
            problems.push(format!(
                "{file}: [flow] keep names \"{slot}\", which is not a slot the flow may keep (a plain name without dots, not one of {})",
                ENGINE_SLOTS.join(", ")
            ));
        } else if !filled.contains(slot.as_str()) {
            problems.push(format!(
                "{file}: [flow] keep names slot \"{slot}\" that nothing in the flow sets (a collect node's slot, a choice's set or a node's count)"
            ));
        }
    }
    for (node_id, node) in &flow.nodes {
        for slot in &node.count {
            if !plain_slot_name(slot) || ENGINE_SLOTS.contains(&slot.as_str()) {
                problems.push(format!(
                    "{file}: node \"{node_id}\" counts \"{slot}\", which is not a slot the flow may count (a plain name without dots, not one of {})",
                    ENGINE_SLOTS.join(", ")
                ));
            }
        }
        for choice in &node.choices {
            for slot in choice.set.keys().filter(|s| !plain_slot_name(s)) {
                problems.push(format!(
                    "{file}: node \"{node_id}\" choice \"{}\" sets \"{slot}\", which is not a slot name (a plain name without dots)",
                    choice.id
                ));
            }
        }
        for message in node.say.iter().chain(node.prompt.iter()) {
            for (name, path) in message.args().into_iter().flatten() {
                let slot = path.split('.').next().unwrap_or_default();
                if !filled.contains(slot) {
                    problems.push(format!(
                        "{file}: node \"{node_id}\" message \"{}\" argument ${name} reads slot \"{slot}\" that nothing in the flow sets (a collect node's slot, a choice's set, a node's count or an action)",
                        message.id()
                    ));
                }
            }
        }
    }
    problems
}

/// Checks one flow's structure. Each problem is one line.
pub fn check_flow(flow: &Flow) -> Vec<String> {
    let file = flow.source.display().to_string();
    let mut problems = Vec::new();
    let node_exists = |id: &str| flow.nodes.contains_key(id);
    let header = &flow.flow;
    for (field, target) in [
        ("start", Some(&header.start)),
        ("handoff", Some(&header.handoff)),
        ("solved", Some(&header.solved)),
        ("restart", header.restart.as_ref()),
        ("reminder_goto", header.reminder_goto.as_ref()),
        ("phone_node", header.phone_node.as_ref()),
        ("attempts_node", header.attempts_node.as_ref()),
    ]
    .into_iter()
    .chain(
        header
            .reminder_from
            .iter()
            .map(|n| ("reminder_from", Some(n))),
    ) {
        if let Some(target) = target {
            if !node_exists(target) {
                problems.push(format!(
                    "{file}: [flow] {field} names unknown node \"{target}\""
                ));
            }
        }
    }
    if flow
        .nodes
        .get(&header.handoff)
        .is_some_and(|n| n.kind != NodeKind::Handoff)
    {
        problems.push(format!(
            "{file}: [flow] handoff node \"{}\" must be of kind \"handoff\"",
            header.handoff
        ));
    }

    let mut choice_ids: HashMap<&str, &str> = HashMap::new();
    for (node_id, node) in &flow.nodes {
        for (field, target) in Flow::targets_of(node) {
            if !node_exists(target) {
                problems.push(format!(
                    "{file}: node \"{node_id}\" {field} goes to unknown node \"{target}\""
                ));
            }
        }
        for choice in &node.choices {
            if let Some(other) = choice_ids.insert(&choice.id, node_id) {
                problems.push(format!(
                    "{file}: node \"{node_id}\" choice id \"{}\" is also used in node \"{other}\" (choice ids must be unique)",
                    choice.id
                ));
            }
        }
        match node.kind {
            NodeKind::Ask if node.choices.is_empty() => problems.push(format!(
                "{file}: node \"{node_id}\" is an ask node without choices"
            )),
            NodeKind::Collect => {
                match node.validator.as_deref() {
                    None => problems.push(format!(
                        "{file}: node \"{node_id}\" is a collect node without a validator"
                    )),
                    Some(v) if !validators::is_known(v) => {
                        problems.push(format!(
                        "{file}: node \"{node_id}\" names unknown validator \"{v}\" (known: {})",
                        validators::VALIDATORS.iter().map(|v| v.0).collect::<Vec<_>>().join(", ")
                    ))
                    }
                    _ => {}
                }
                if node.slot.is_none() {
                    problems.push(format!(
                        "{file}: node \"{node_id}\" is a collect node without a slot"
                    ));
                }
                if node.next.is_none() {
                    problems.push(format!(
                        "{file}: node \"{node_id}\" is a collect node without next"
                    ));
                }
            }
            NodeKind::Branch => {
                if node.otherwise.is_none() {
                    problems.push(format!(
                        "{file}: node \"{node_id}\" is a branch node without otherwise"
                    ));
                }
                for (index, rule) in node.rules.iter().enumerate() {
                    if let Err(e) = condition::parse(&rule.when) {
                        problems.push(format!(
                            "{file}: node \"{node_id}\" rule {}: {e}",
                            index + 1
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(action) = &node.action {
            if !ACTIONS.contains(&action.as_str()) {
                problems.push(format!(
                    "{file}: node \"{node_id}\" names unknown action \"{action}\""
                ));
            }
        }
        if matches!(
            node.kind,
            NodeKind::Ask | NodeKind::Collect | NodeKind::Handoff | NodeKind::End
        ) && node.say.is_empty()
            && node.prompt.is_none()
            && node.kind != NodeKind::Handoff
            && node.kind != NodeKind::End
        {
            problems.push(format!(
                "{file}: node \"{node_id}\" waits for the person but says nothing"
            ));
        }
    }
    let mut intent_ids = HashSet::new();
    for intent in &flow.intents {
        if !intent_ids.insert(intent.id.as_str()) {
            problems.push(format!("{file}: intent \"{}\" is defined twice", intent.id));
        }
        if choice_ids.contains_key(intent.id.as_str()) {
            problems.push(format!(
                "{file}: intent \"{}\" has the same id as a choice (ids must be unique)",
                intent.id
            ));
        }
        if intent.examples.iter().all(|e| e.trim().is_empty()) {
            problems.push(format!("{file}: intent \"{}\" has no examples", intent.id));
        }
        if !node_exists(&intent.goto) {
            problems.push(format!(
                "{file}: intent \"{}\" goes to unknown node \"{}\"",
                intent.id, intent.goto
            ));
        }
    }

    for concept in &flow.concepts {
        if !node_exists(&concept.goto) {
            problems.push(format!(
                "{file}: concept \"{}\" goes to unknown node \"{}\"",
                concept.id, concept.goto
            ));
        }
        if concept.words.iter().all(|w| w.trim().is_empty()) {
            problems.push(format!("{file}: concept \"{}\" has no words", concept.id));
        }
    }
    let mut codes = HashSet::new();
    for error in &flow.signin_errors {
        if error.code.is_empty() || !error.code.chars().all(|c| c.is_ascii_digit()) {
            problems.push(format!(
                "{file}: signin error code \"{}\" must be the digits after AADSTS",
                error.code
            ));
        }
        if !codes.insert(error.code.as_str()) {
            problems.push(format!(
                "{file}: signin error \"AADSTS{}\" is defined twice",
                error.code
            ));
        }
        if let Some(goto) = &error.goto {
            if !node_exists(goto) {
                problems.push(format!(
                    "{file}: signin error \"AADSTS{}\" goes to unknown node \"{goto}\"",
                    error.code
                ));
            }
        }
    }

    problems.extend(check_slots(flow, &file));

    // Unreachable: not reachable from the start, an intent or a global node.
    let mut roots: Vec<&str> = vec![&header.start, &header.handoff, &header.solved];
    roots.extend(header.restart.as_deref());
    roots.extend(header.reminder_goto.as_deref());
    roots.extend(flow.intents.iter().map(|i| i.goto.as_str()));
    roots.extend(flow.signin_errors.iter().filter_map(|e| e.goto.as_deref()));
    roots.extend(flow.concepts.iter().map(|c| c.goto.as_str()));
    let reachable = reach(flow, roots);
    for node_id in flow.nodes.keys() {
        if !reachable.contains(node_id.as_str()) {
            problems.push(format!(
                "{file}: node \"{node_id}\" is unreachable (nothing leads to it)"
            ));
        }
    }

    // Dead ends: nodes from which no handoff or end node can be reached.
    let finishing = can_finish(flow);
    for (node_id, node) in &flow.nodes {
        let points_to_unknown = Flow::targets_of(node).iter().any(|(_, t)| !node_exists(t));
        if !finishing.contains(node_id.as_str()) && !points_to_unknown {
            problems.push(format!(
                "{file}: node \"{node_id}\" is a dead end (no way from it to end or hand off)"
            ));
        }
    }
    problems
}

fn reach<'a>(flow: &'a Flow, roots: Vec<&'a str>) -> HashSet<&'a str> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut queue: VecDeque<&str> = roots.into_iter().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(node) = flow.nodes.get(id) {
            for (_, target) in Flow::targets_of(node) {
                queue.push_back(target);
            }
        }
    }
    seen
}

/// Nodes from which a handoff or end node is reachable.
fn can_finish(flow: &Flow) -> HashSet<&str> {
    let mut finishing: HashSet<&str> = flow
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n.kind, NodeKind::Handoff | NodeKind::End))
        .map(|(id, _)| id.as_str())
        .collect();
    loop {
        let before = finishing.len();
        for (id, node) in &flow.nodes {
            if Flow::targets_of(node)
                .iter()
                .any(|(_, t)| finishing.contains(t))
            {
                finishing.insert(id.as_str());
            }
        }
        if finishing.len() == before {
            return finishing;
        }
    }
}

/// Checks that every message the flows and the program use exists in every
/// locale with the variables it is given, and that locales agree.
pub fn check_messages(flows: &[Flow], catalog: &Catalog, locales_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut required: Vec<(String, BTreeSet<String>, String)> = Vec::new();
    for flow in flows {
        for (id, vars, place) in message_uses(flow) {
            required.push((
                id,
                vars.into_iter().collect(),
                format!("{} {place}", flow.source.display()),
            ));
        }
    }
    let program = validators::VALIDATORS
        .iter()
        .map(|(name, id, vars)| (*id, *vars, format!("validator \"{name}\"")))
        .chain(
            crate::i18n::registry::ALL
                .iter()
                .map(|m| (m.id, m.variables, m.used_by.to_string())),
        );
    for (id, vars, place) in program {
        required.push((
            id.to_string(),
            vars.iter().map(|v| v.to_string()).collect(),
            place,
        ));
    }
    let locales = catalog.locale_ids();
    let mut reported: HashSet<(String, String)> = HashSet::new();
    for (id, given, place) in &required {
        for locale in &locales {
            let Some(messages) = catalog.messages(locale) else {
                continue;
            };
            match messages.get(id) {
                None => {
                    if reported.insert((locale.clone(), id.clone())) {
                        problems.push(format!(
                            "{}: message \"{id}\" is missing (used by {place})",
                            locales_dir.join(locale).display()
                        ));
                    }
                }
                Some(info) => {
                    let unknown: Vec<&String> = info.variables.difference(given).collect();
                    if !unknown.is_empty()
                        && reported.insert((locale.clone(), format!("{id}#vars")))
                    {
                        problems.push(format!(
                            "{}: message \"{id}\" uses variables {} that {place} does not give",
                            info.file.display(),
                            join(&unknown)
                        ));
                    }
                }
            }
        }
    }
    // Locales must agree on each message's variables.
    let default = catalog.default_locale();
    if let Some(reference) = catalog.messages(&default) {
        for locale in locales.iter().filter(|l| **l != default) {
            let Some(messages) = catalog.messages(locale) else {
                continue;
            };
            for (id, info) in messages {
                match reference.get(id) {
                    Some(base) if base.variables != info.variables => problems.push(format!(
                        "{}: message \"{id}\" uses variables {} but {} uses {}",
                        info.file.display(),
                        join(&info.variables.iter().collect::<Vec<_>>()),
                        base.file.display(),
                        join(&base.variables.iter().collect::<Vec<_>>())
                    )),
                    None => problems.push(format!(
                        "{}: message \"{id}\" does not exist in the default locale \"{default}\"",
                        info.file.display()
                    )),
                    _ => {}
                }
            }
        }
    }
    problems
}

fn join(names: &[&String]) -> String {
    if names.is_empty() {
        return "{}".into();
    }
    format!(
        "{{{}}}",
        names
            .iter()
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A small valid flow: one yes/no question that sets a slot, a node
    /// that counts rounds and says the count and the answer.
    const COUNTING: &str = r#"
[flow]
id = "counting"
start = "question"
handoff = "handoff"
solved = "done"
keep = ["rounds"]

[flow.messages]
empty_input = "m"
too_long = "m"
not_understood = "m"
stale_choice = "m"
clarify = "m"
clarify_none = "m"
session_expired = "m"
queued_ack = "m"
closed_reopen = "m"
timer_reminder = "m"
offer_human = "m"

[nodes.question]
kind = "ask"
say = ["question"]
choices = [
  { id = "yes", label = "yes", goto = "result", set = { answer = "yes" } },
  { id = "no", label = "no", goto = "result", set = { answer = "no" } },
  { id = "stop", label = "stop", goto = "done" },
]

[nodes.result]
kind = "ask"
count = ["rounds"]
say = [{ id = "result", args = { n = "rounds", answer = "answer" } }]
choices = [{ id = "again", label = "again", goto = "question" }]

[nodes.done]
kind = "end"

[nodes.handoff]
kind = "handoff"
"#;

    fn problems(text: &str) -> Vec<String> {
        let flow = Flow::from_toml(text, Path::new("flows/counting.toml")).expect("parses");
        check_flow(&flow)
    }

    #[test]
    fn counting_setting_and_keeping_slots_pass() {
        assert_eq!(problems(COUNTING), Vec::<String>::new());
    }

    #[test]
    fn a_message_argument_must_read_a_slot_the_flow_sets() {
        let text = COUNTING.replace("answer = \"answer\"", "answer = \"answr.word\"");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(
                "node \"result\" message \"result\" argument $answer reads slot \"answr\""
            ),
            "{found:?}"
        );
    }

    #[test]
    fn counted_set_and_kept_slots_must_be_plain_flow_slots() {
        let text = COUNTING
            .replace(
                "count = [\"rounds\"]",
                "count = [\"rounds\", \"checked\", \"a.b\"]",
            )
            .replace(
                "set = { answer = \"no\" }",
                "set = { \"x.y\" = \"no\", answer = \"no\" }",
            )
            .replace("keep = [\"rounds\"]", "keep = [\"rounds\", \"nothing\"]");
        let found = problems(&text);
        let expected = [
            "node \"result\" counts \"checked\"",
            "node \"result\" counts \"a.b\"",
            "choice \"no\" sets \"x.y\"",
            "[flow] keep names slot \"nothing\" that nothing in the flow sets",
        ];
        for line in expected {
            assert!(found.iter().any(|p| p.contains(line)), "{line}: {found:?}");
        }
        assert_eq!(found.len(), expected.len(), "{found:?}");
    }

    #[test]
    fn the_repository_flow_reads_only_slots_it_sets() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let flow = Flow::load(&root.join("flows/mfa-phone.toml")).expect("loads");
        assert_eq!(check_slots(&flow, "mfa-phone"), Vec::<String>::new());
    }
}
