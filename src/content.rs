//! Loading the content (flow and locales) and checking it as a whole: the
//! one function both `madoguchi check` and every command that talks to
//! people call, so the service refuses exactly what `check` reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::flow::check;
use crate::flow::compiled::CompiledFlow;
use crate::flow::model::Flow;
use crate::i18n::Catalog;

/// Checked, ready-to-use content.
pub struct Content {
    pub flow: CompiledFlow,
    pub catalog: Arc<Catalog>,
}

/// What `check` found, and how much it looked at.
pub struct Report {
    pub problems: Vec<String>,
    pub flows: usize,
    pub locales: usize,
    pub messages: usize,
}

/// Checks every `*.toml` in `flows_dir` against the locales in `locales_dir`.
pub fn check_all(flows_dir: &Path, locales_dir: &Path, default_locale: &str) -> Report {
    let mut problems = Vec::new();
    let mut flow_files: Vec<PathBuf> = match std::fs::read_dir(flows_dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) => {
            problems.push(format!(
                "{}: cannot read the flows folder: {e}",
                flows_dir.display()
            ));
            Vec::new()
        }
    };
    flow_files.sort();
    if flow_files.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{}: no flow files (*.toml) found",
            flows_dir.display()
        ));
    }
    let mut flows = Vec::new();
    for path in flow_files {
        match Flow::load(&path) {
            Ok(flow) => {
                problems.extend(check::check_flow(&flow));
                flows.push(flow);
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    let (catalog, locale_problems) = Catalog::load(locales_dir, default_locale);
    problems.extend(locale_problems.iter().map(ToString::to_string));
    let mut locales = 0;
    let mut messages = 0;
    if let Some(catalog) = &catalog {
        problems.extend(check::check_messages(&flows, catalog, locales_dir));
        locales = catalog.locale_ids().len();
        messages = catalog
            .locale_ids()
            .iter()
            .filter_map(|l| catalog.messages(l))
            .map(|m| m.len())
            .sum();
    }
    Report {
        problems,
        flows: flows.len(),
        locales,
        messages,
    }
}

/// Loads and checks the configured flow and the locales; any problem is
/// fatal (returned one per line).
pub fn load(config: &Config) -> Result<Content, Vec<String>> {
    let general = &config.general;
    let report = check_all(
        &general.flows_dir,
        &general.locales_dir,
        &general.default_locale,
    );
    if !report.problems.is_empty() {
        return Err(report.problems);
    }
    let flow = Flow::load(&config.flow_path()).map_err(|e| vec![e.to_string()])?;
    let (catalog, problems) = Catalog::load(&general.locales_dir, &general.default_locale);
    let catalog = match catalog {
        Some(c) if problems.is_empty() => Arc::new(c),
        _ => return Err(problems.iter().map(ToString::to_string).collect()),
    };
    let label_catalog = catalog.clone();
    let label_texts = move |id: &str| -> Vec<String> {
        label_catalog
            .locale_ids()
            .iter()
            .filter(|l| label_catalog.has_message(l, id))
            .map(|l| label_catalog.format(l, id, &Default::default()))
            .collect()
    };
    let flow = CompiledFlow::new(flow, &label_texts)?;
    Ok(Content { flow, catalog })
}

/// The repository's own content for unit tests, loaded once.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use super::Content;
    use crate::config::Config;

    /// Defaults with the repository's `flows/` and `locales/`.
    pub fn config() -> Config {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::default();
        config.general.flows_dir = root.join("flows");
        config.general.locales_dir = root.join("locales");
        config
    }

    pub fn content() -> &'static Content {
        static CONTENT: OnceLock<Content> = OnceLock::new();
        CONTENT.get_or_init(|| match super::load(&config()) {
            Ok(content) => content,
            Err(problems) => panic!("the repository's content does not load: {problems:#?}"),
        })
    }
}
