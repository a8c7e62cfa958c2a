//! Fluent bundles: every sentence the bot says, in every locale it speaks.
//!
//! Locales are discovered from folder names under `locales/` (`ja`, `en`…);
//! each folder's `*.ftl` files form one bundle. The conversation's locale is
//! negotiated from what the platform reports (`ja-JP`, `en-US`…) with the
//! configured default (Japanese) as fallback, message by message as well: a
//! message missing in English is said in Japanese rather than not at all.
//!
//! Bundles are the thread-safe (`concurrent`) kind so one [`Catalog`] can be
//! shared by every task, and Unicode isolation marks are off because chat
//! clients show U+2068/U+2069 as garbage.

pub mod registry;
pub mod variables;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde_json::Value;
use unic_langid::LanguageIdentifier;

/// A problem found while loading locales, reported by `madoguchi check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocaleProblem {
    pub file: PathBuf,
    pub message: String,
}

impl std::fmt::Display for LocaleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// Where a message is defined and which variables it uses.
#[derive(Debug, Clone)]
pub struct MessageInfo {
    pub file: PathBuf,
    pub variables: BTreeSet<String>,
}

struct LocaleBundle {
    id: LanguageIdentifier,
    bundle: FluentBundle<FluentResource>,
    messages: BTreeMap<String, MessageInfo>,
}

/// All loaded locales. Cheap to share behind an `Arc`.
pub struct Catalog {
    locales: Vec<LocaleBundle>,
    default_index: usize,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("locales", &self.locale_ids())
            .finish()
    }
}

impl Catalog {
    /// Loads `dir/{lang}/*.ftl`. Returns the catalog and every problem found
    /// (syntax errors, duplicate ids); the catalog is usable even with
    /// problems, `check` decides whether they are fatal.
    pub fn load(dir: &Path, default_locale: &str) -> (Option<Catalog>, Vec<LocaleProblem>) {
        let mut problems = Vec::new();
        let mut folders = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect::<Vec<_>>(),
            Err(e) => {
                problems.push(LocaleProblem {
                    file: dir.to_path_buf(),
                    message: format!("cannot read the locales folder: {e}"),
                });
                return (None, problems);
            }
        };
        folders.sort();
        let mut locales = Vec::new();
        for folder in folders {
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let id: LanguageIdentifier = match name.parse() {
                Ok(id) => id,
                Err(_) => {
                    problems.push(LocaleProblem {
                        file: folder.clone(),
                        message: format!("folder name \"{name}\" is not a language tag"),
                    });
                    continue;
                }
            };
            locales.push(load_locale(&folder, id, &mut problems));
        }
        let Some(default_index) = locales.iter().position(|l| l.id == default_locale) else {
            problems.push(LocaleProblem {
                file: dir.join(default_locale),
                message: format!("the default locale \"{default_locale}\" has no folder"),
            });
            return (None, problems);
        };
        (
            Some(Catalog {
                locales,
                default_index,
            }),
            problems,
        )
    }

    pub fn locale_ids(&self) -> Vec<String> {
        self.locales.iter().map(|l| l.id.to_string()).collect()
    }

    pub fn default_locale(&self) -> String {
        self.locales[self.default_index].id.to_string()
    }

    /// Picks the best available locale for what a platform reports
    /// (`ja-JP` → `ja`, `en-GB` → `en`, unknown or empty → the default).
    pub fn negotiate(&self, requested: &str) -> String {
        let requested: Vec<LanguageIdentifier> = requested
            .replace('_', "-")
            .parse::<LanguageIdentifier>()
            .into_iter()
            .collect();
        let available: Vec<&LanguageIdentifier> = self.locales.iter().map(|l| &l.id).collect();
        let default = &self.locales[self.default_index].id;
        let chosen = fluent_langneg::negotiate_languages(
            &requested,
            &available,
            Some(&default),
            fluent_langneg::NegotiationStrategy::Lookup,
        );
        chosen
            .first()
            .map(|id| id.to_string())
            .unwrap_or_else(|| default.to_string())
    }

    /// Messages defined in `locale`, with their variables.
    pub fn messages(&self, locale: &str) -> Option<&BTreeMap<String, MessageInfo>> {
        self.find(locale).map(|l| &l.messages)
    }

    pub fn has_locale(&self, locale: &str) -> bool {
        self.find(locale).is_some()
    }

    pub fn has_message(&self, locale: &str, id: &str) -> bool {
        self.find(locale)
            .is_some_and(|l| l.messages.contains_key(id))
    }

    fn find(&self, locale: &str) -> Option<&LocaleBundle> {
        self.locales.iter().find(|l| l.id == locale)
    }

    /// Renders message `id` in `locale` (falling back to the default locale)
    /// with JSON arguments. A message missing everywhere renders as its id,
    /// which `check` prevents in practice.
    pub fn format(&self, locale: &str, id: &str, args: &BTreeMap<String, Value>) -> String {
        let candidates = self
            .find(locale)
            .into_iter()
            .chain(std::iter::once(&self.locales[self.default_index]));
        for locale in candidates {
            let Some(message) = locale.bundle.get_message(id) else {
                continue;
            };
            let Some(pattern) = message.value() else {
                continue;
            };
            let fluent_args = to_fluent_args(args);
            let mut errors = Vec::new();
            let text = locale
                .bundle
                .format_pattern(pattern, Some(&fluent_args), &mut errors);
            if !errors.is_empty() {
                tracing::warn!(message_id = id, locale = %locale.id, ?errors, "fluent formatting problem");
            }
            return text.into_owned();
        }
        tracing::warn!(message_id = id, "message missing in every locale");
        id.to_string()
    }
}

fn to_fluent_args(args: &BTreeMap<String, Value>) -> FluentArgs<'_> {
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        let value: FluentValue = match value {
            Value::String(s) => FluentValue::from(s.as_str()),
            Value::Number(n) => FluentValue::from(n.as_f64().unwrap_or_default()),
            Value::Bool(b) => FluentValue::from(if *b { "true" } else { "false" }),
            Value::Null => continue,
            other => FluentValue::from(other.to_string()),
        };
        fluent_args.set(name.as_str(), value);
    }
    fluent_args
}

fn load_locale(
    folder: &Path,
    id: LanguageIdentifier,
    problems: &mut Vec<LocaleProblem>,
) -> LocaleBundle {
    let mut bundle = FluentBundle::new_concurrent(vec![id.clone()]);
    bundle.set_use_isolating(false);
    let mut messages = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for file in files {
        let source = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(LocaleProblem {
                    file: file.clone(),
                    message: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        let ast = match fluent_syntax::parser::parse(source.as_str()) {
            Ok(ast) => ast,
            Err((ast, errors)) => {
                for error in errors {
                    // `slice` is the broken entry; `pos` is where the parser
                    // noticed, which can be lines later.
                    let start = error
                        .slice
                        .as_ref()
                        .map(|s| s.start)
                        .unwrap_or(error.pos.start)
                        .min(source.len());
                    let line = source[..start].matches('\n').count() + 1;
                    let entry: String = source[start..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    let entry = if entry.is_empty() {
                        String::new()
                    } else {
                        format!(" in message \"{entry}\"")
                    };
                    problems.push(LocaleProblem {
                        file: file.clone(),
                        message: format!("line {line}: FTL syntax error{entry}: {}", error.kind),
                    });
                }
                ast
            }
        };
        for entry in &ast.body {
            if let fluent_syntax::ast::Entry::Message(message) = entry {
                let name = message.id.name.to_string();
                if let Some(previous) = messages.get(&name) {
                    let previous: &MessageInfo = previous;
                    problems.push(LocaleProblem {
                        file: file.clone(),
                        message: format!(
                            "message \"{name}\" is defined twice (also in {})",
                            previous.file.display()
                        ),
                    });
                    continue;
                }
                messages.insert(
                    name,
                    MessageInfo {
                        file: file.clone(),
                        variables: variables::message_variables(message),
                    },
                );
            }
        }
        let resource = match FluentResource::try_new(source) {
            Ok(r) => r,
            Err((r, _)) => r, // already reported from the AST above
        };
        if let Err(errors) = bundle.add_resource(resource) {
            for error in errors {
                tracing::debug!(file = %file.display(), ?error, "fluent resource problem");
            }
        }
    }
    LocaleBundle {
        id,
        bundle,
        messages,
    }
}
