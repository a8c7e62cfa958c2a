//! Typed configuration: a TOML file (see `config.example.toml`), then
//! environment overrides `MADOGUCHI__SECTION__KEY=value`, then defaults that
//! make `madoguchi chat` work with no file at all.
//!
//! Secrets are never in the file: the file names the environment variable
//! that holds each one (`token_env = "MADOGUCHI_DISCORD_TOKEN"`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::flow::engine::EngineSettings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub general: GeneralConfig,
    pub storage: StorageConfig,
    pub lockout: LockoutConfig,
    pub session: SessionConfig,
    pub intent: IntentConfig,
    pub desk: DeskConfig,
    pub discord: crate::channels::discord::DiscordConfig,
    pub teams: crate::channels::teams::TeamsConfig,
    pub web: crate::channels::web::WebConfig,
}

/// The `[desk]` section: when human agents are there.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskConfig {
    /// Opening and closing time (`HH:MM`, in `general.time_zone`).
    pub opens: String,
    pub closes: String,
    /// Working days (`mon` … `sun`).
    pub days: Vec<String>,
    /// Closed dates (`YYYY-MM-DD`), e.g. national holidays and the
    /// year-end closure.
    pub holidays: Vec<String>,
    /// Where agents work, for every channel's conversations: `"teams"`
    /// (the Teams agents' channel) or `"discord"` (the Discord staff
    /// channel). Empty: a Discord or Teams conversation goes to its own
    /// channel's agents, a web one to `web.agents` (deprecated) or else
    /// Teams when it is on, else Discord.
    pub agents: String,
}

/// The channel whose agents' side opens handoffs (`desk.agents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentsSide {
    Teams,
    Discord,
}

impl AgentsSide {
    /// The channel's name, as in the config and in outbox rows.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentsSide::Teams => "teams",
            AgentsSide::Discord => "discord",
        }
    }

    fn parse(key: &str, value: &str) -> Result<Option<AgentsSide>, ConfigError> {
        match value.trim() {
            "" => Ok(None),
            "teams" => Ok(Some(AgentsSide::Teams)),
            "discord" => Ok(Some(AgentsSide::Discord)),
            other => Err(ConfigError::Invalid {
                origin: key.into(),
                message: format!("must be \"teams\" or \"discord\" (is \"{other}\")"),
            }),
        }
    }
}

impl Default for DeskConfig {
    fn default() -> Self {
        DeskConfig {
            opens: "09:00".into(),
            closes: "17:00".into(),
            days: ["mon", "tue", "wed", "thu", "fri"]
                .map(String::from)
                .to_vec(),
            holidays: Vec::new(),
            agents: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralConfig {
    pub default_locale: String,
    pub agent_locale: String,
    pub time_zone: String,
    pub default_country: String,
    pub flows_dir: PathBuf,
    pub locales_dir: PathBuf,
    pub flow: String,
    pub max_input_chars: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// An SQLite file path (the default, `madoguchi.db`), or a PostgreSQL
    /// URL (`postgres://…` or `postgresql://…`) for several instances.
    pub database: PathBuf,
}

impl StorageConfig {
    /// The PostgreSQL URL when `database` names one (it is then no path).
    pub fn postgres_url(&self) -> Option<&str> {
        self.database
            .to_str()
            .filter(|d| crate::conversation::postgres::is_postgres_url(d))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    pub retry_wait_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub expiry_minutes: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntentConfig {
    pub threshold: f32,
    pub margin: f32,
    pub floor: f32,
    pub dominance: f32,
    pub clarify_threshold: f32,
}

impl Default for GeneralConfig {
    fn default() -> Self {
        GeneralConfig {
            default_locale: "ja".into(),
            agent_locale: "ja".into(),
            time_zone: "Asia/Tokyo".into(),
            default_country: "JP".into(),
            flows_dir: "flows".into(),
            locales_dir: "locales".into(),
            flow: "mfa-phone".into(),
            max_input_chars: 2000,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            database: "madoguchi.db".into(),
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            retry_wait_minutes: 180,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            expiry_minutes: 1440,
        }
    }
}

impl Default for IntentConfig {
    fn default() -> Self {
        IntentConfig {
            threshold: 0.45,
            margin: 0.08,
            floor: 0.2,
            dominance: 0.5,
            clarify_threshold: 0.12,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Config {
    /// Loads `path` (if given) and applies `MADOGUCHI__…` overrides from
    /// `env` (pass `std::env::vars()`).
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid {
                        origin: path.display().to_string(),
                        message: e.to_string().trim().replace('\n', " "),
                    })?
            }
            None => toml::Table::new(),
        };
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("MADOGUCHI__") else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            let [section, name] = parts.as_slice() else {
                return Err(ConfigError::Invalid {
                    origin: key.clone(),
                    message: "environment overrides look like MADOGUCHI__SECTION__KEY".into(),
                });
            };
            let section = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(section) = section {
                section.insert(name.clone(), parse_env_value(&value));
            }
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: path
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "environment".into()),
                    message: e.to_string().trim().replace('\n', " "),
                })?;
        if let Some(base) = path.and_then(Path::parent) {
            config.resolve_paths(base);
        }
        config.check_ranges()?;
        config.agents_for("web", |_| true)?;
        config.engine_settings()?;
        config.business_hours()?;
        Ok(config)
    }

    /// Relative paths in a config file are relative to the file's folder,
    /// so `serve --config /etc/madoguchi/config.toml` works from anywhere.
    fn resolve_paths(&mut self, base: &Path) {
        let database_is_url = self.storage.postgres_url().is_some();
        for path in [&mut self.general.flows_dir, &mut self.general.locales_dir]
            .into_iter()
            .chain((!database_is_url).then_some(&mut self.storage.database))
        {
            if path.is_relative() && !base.as_os_str().is_empty() {
                *path = base.join(&*path);
            }
        }
    }

    /// Durations and counts within sensible bounds: a one-line error naming
    /// the key, never a panic or an overflow later.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        let ranges: [(&str, i128, i128, i128); 12] = [
            (
                "lockout.retry_wait_minutes",
                self.lockout.retry_wait_minutes.into(),
                1,
                7 * 24 * 60,
            ),
            (
                "session.expiry_minutes",
                self.session.expiry_minutes.into(),
                1,
                30 * 24 * 60,
            ),
            (
                "general.max_input_chars",
                self.general.max_input_chars as i128,
                1,
                100_000,
            ),
            (
                "discord.retry_base_ms",
                self.discord.retry_base_ms.into(),
                1,
                60_000,
            ),
            (
                "discord.max_attempts",
                self.discord.max_attempts.into(),
                1,
                100,
            ),
            (
                "discord.max_in_flight",
                self.discord.max_in_flight as i128,
                1,
                1024,
            ),
            (
                "teams.retry_base_ms",
                self.teams.retry_base_ms.into(),
                1,
                60_000,
            ),
            ("teams.max_attempts", self.teams.max_attempts.into(), 1, 100),
            (
                "teams.max_in_flight",
                self.teams.max_in_flight as i128,
                1,
                1024,
            ),
            (
                "teams.clock_skew_seconds",
                self.teams.clock_skew_seconds.into(),
                0,
                3600,
            ),
            (
                "teams.jwks_min_refresh_seconds",
                self.teams.jwks_min_refresh_seconds.into(),
                0,
                86_400,
            ),
            (
                "teams.max_body_bytes",
                self.teams.max_body_bytes as i128,
                1024,
                16 * 1024 * 1024,
            ),
        ];
        for (key, value, min, max) in ranges {
            if value < min || value > max {
                return Err(ConfigError::Invalid {
                    origin: key.into(),
                    message: format!("must be between {min} and {max} (is {value})"),
                });
            }
        }
        Ok(())
    }

    /// Where the agents of `channel`'s conversations work (`desk.agents`),
    /// given which channels are on; `None`: nowhere (handoff rows then
    /// fail with the setting to fix). `web.agents` is the deprecated
    /// spelling for web conversations only, and may not contradict
    /// `desk.agents`.
    pub fn agents_for(
        &self,
        channel: &str,
        on: impl Fn(AgentsSide) -> bool,
    ) -> Result<Option<AgentsSide>, ConfigError> {
        let desk = AgentsSide::parse("desk.agents", &self.desk.agents)?;
        let web = AgentsSide::parse("web.agents", &self.web.agents)?;
        if let (Some(desk), Some(web)) = (desk, web) {
            if desk != web {
                return Err(ConfigError::Invalid {
                    origin: "web.agents".into(),
                    message: format!(
                        "is deprecated and says \"{}\" while desk.agents says \"{}\"; remove web.agents",
                        web.as_str(),
                        desk.as_str()
                    ),
                });
            }
        }
        Ok(match (desk, channel) {
            (Some(side), _) => Some(side),
            (None, "teams") => Some(AgentsSide::Teams),
            (None, "discord") => Some(AgentsSide::Discord),
            (None, _) => web.or_else(|| {
                [AgentsSide::Teams, AgentsSide::Discord]
                    .into_iter()
                    .find(|s| on(*s))
            }),
        })
    }

    /// The engine's view of the configuration.
    pub fn engine_settings(&self) -> Result<EngineSettings, ConfigError> {
        let time_zone = self
            .general
            .time_zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ConfigError::Invalid {
                origin: "general.time_zone".into(),
                message: format!(
                    "\"{}\" is not an IANA time zone name (for example Asia/Tokyo)",
                    self.general.time_zone
                ),
            })?;
        let default_country = self
            .general
            .default_country
            .parse::<phonenumber::country::Id>()
            .map_err(|_| ConfigError::Invalid {
                origin: "general.default_country".into(),
                message: format!(
                    "\"{}\" is not a two-letter country code (for example JP)",
                    self.general.default_country
                ),
            })?;
        if self.lockout.retry_wait_minutes <= 0 || self.session.expiry_minutes <= 0 {
            return Err(ConfigError::Invalid {
                origin: "lockout.retry_wait_minutes / session.expiry_minutes".into(),
                message: "must be positive numbers of minutes".into(),
            });
        }
        Ok(EngineSettings {
            time_zone,
            lockout_wait: chrono::Duration::minutes(self.lockout.retry_wait_minutes),
            session_expiry: chrono::Duration::minutes(self.session.expiry_minutes),
            intent_threshold: self.intent.threshold,
            intent_margin: self.intent.margin,
            intent_floor: self.intent.floor,
            intent_dominance: self.intent.dominance,
            clarify_threshold: self.intent.clarify_threshold,
            max_input_chars: self.general.max_input_chars.max(1),
            default_country,
        })
    }

    /// The desk's business hours, checked.
    pub fn business_hours(&self) -> Result<crate::handoff::hours::BusinessHours, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: format!("desk.{key}"),
            message,
        };
        let time = |key: &str, text: &str| {
            chrono::NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| invalid(key, format!("\"{text}\" is not a time like 09:00")))
        };
        let days = self
            .desk
            .days
            .iter()
            .map(|d| {
                crate::handoff::hours::parse_weekday(d)
                    .ok_or_else(|| invalid("days", format!("\"{d}\" is not a weekday (mon … sun)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let holidays = self
            .desk
            .holidays
            .iter()
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                    invalid("holidays", format!("\"{d}\" is not a date like 2026-12-29"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::handoff::hours::BusinessHours {
            time_zone: self.engine_settings()?.time_zone,
            opens: time("opens", &self.desk.opens)?,
            closes: time("closes", &self.desk.closes)?,
            days,
            holidays,
        })
    }

    pub fn flow_path(&self) -> PathBuf {
        self.general
            .flows_dir
            .join(format!("{}.toml", self.general.flow))
    }
}

/// Environment values are TOML literals when they parse as one (numbers,
/// booleans), otherwise plain strings.
fn parse_env_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_a_file() {
        let config = Config::load(None, Vec::new()).expect("defaults");
        assert_eq!(config.general.default_locale, "ja");
        assert_eq!(config.lockout.retry_wait_minutes, 180);
    }

    #[test]
    fn environment_overrides_file_values() {
        let env = vec![
            (
                "MADOGUCHI__LOCKOUT__RETRY_WAIT_MINUTES".to_string(),
                "240".to_string(),
            ),
            (
                "MADOGUCHI__STORAGE__DATABASE".to_string(),
                "/tmp/x.db".to_string(),
            ),
            ("UNRELATED".to_string(), "1".to_string()),
        ];
        let config = Config::load(None, env).expect("overrides");
        assert_eq!(config.lockout.retry_wait_minutes, 240);
        assert_eq!(config.storage.database, PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn bad_values_name_the_key_to_fix() {
        let env = vec![(
            "MADOGUCHI__GENERAL__TIME_ZONE".to_string(),
            "Mars/Base".to_string(),
        )];
        let error = Config::load(None, env).expect_err("bad tz").to_string();
        assert!(error.contains("general.time_zone"), "{error}");
    }

    #[test]
    fn agents_work_where_desk_agents_says() {
        let load = |pairs: &[(&str, &str)]| {
            Config::load(
                None,
                pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
        };
        let all_on = |_| true;
        // Unset: each platform keeps its own agents; web goes to Teams
        // when it is on, else Discord.
        let config = load(&[]).expect("defaults");
        assert_eq!(
            config.agents_for("discord", all_on).ok().flatten(),
            Some(AgentsSide::Discord)
        );
        assert_eq!(
            config.agents_for("teams", all_on).ok().flatten(),
            Some(AgentsSide::Teams)
        );
        assert_eq!(
            config.agents_for("web", all_on).ok().flatten(),
            Some(AgentsSide::Teams)
        );
        let discord_only = |s| s == AgentsSide::Discord;
        assert_eq!(
            config.agents_for("web", discord_only).ok().flatten(),
            Some(AgentsSide::Discord)
        );
        assert_eq!(config.agents_for("web", |_| false).ok().flatten(), None);
        // Set once for the desk: every channel's handoffs go there.
        let config = load(&[("MADOGUCHI__DESK__AGENTS", "discord")]).expect("discord");
        for channel in ["web", "teams", "discord"] {
            assert_eq!(
                config.agents_for(channel, all_on).ok().flatten(),
                Some(AgentsSide::Discord)
            );
        }
        // The deprecated web.agents still works for web conversations only.
        let config = load(&[("MADOGUCHI__WEB__AGENTS", "discord")]).expect("alias");
        assert_eq!(
            config.agents_for("web", all_on).ok().flatten(),
            Some(AgentsSide::Discord)
        );
        assert_eq!(
            config.agents_for("teams", all_on).ok().flatten(),
            Some(AgentsSide::Teams)
        );
        // Typos and contradictions name the key.
        let error = load(&[("MADOGUCHI__DESK__AGENTS", "slack")])
            .expect_err("typo")
            .to_string();
        assert!(error.starts_with("desk.agents:"), "{error}");
        let error = load(&[
            ("MADOGUCHI__DESK__AGENTS", "teams"),
            ("MADOGUCHI__WEB__AGENTS", "discord"),
        ])
        .expect_err("contradiction")
        .to_string();
        assert!(error.starts_with("web.agents:"), "{error}");
    }

    #[test]
    fn durations_out_of_range_are_one_line_errors_not_panics() {
        for (key, value) in [
            (
                "MADOGUCHI__LOCKOUT__RETRY_WAIT_MINUTES",
                "9223372036854775807",
            ),
            ("MADOGUCHI__LOCKOUT__RETRY_WAIT_MINUTES", "0"),
            ("MADOGUCHI__SESSION__EXPIRY_MINUTES", "-5"),
            ("MADOGUCHI__TEAMS__RETRY_BASE_MS", "0"),
            ("MADOGUCHI__DISCORD__MAX_ATTEMPTS", "0"),
            ("MADOGUCHI__TEAMS__CLOCK_SKEW_SECONDS", "99999999"),
        ] {
            let env = vec![(key.to_string(), value.to_string())];
            let error = Config::load(None, env).expect_err(key).to_string();
            let section_key = key
                .trim_start_matches("MADOGUCHI__")
                .replace("__", ".")
                .to_ascii_lowercase();
            assert!(error.contains(&section_key), "{key}: {error}");
            assert!(!error.contains('\n'), "{key}: {error}");
        }
    }

    #[test]
    fn the_example_config_loads_with_the_defaults() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let config = Config::load(Some(&path), Vec::new()).expect("example loads");
        let defaults = Config::default();
        assert_eq!(config.discord.max_in_flight, defaults.discord.max_in_flight);
        assert_eq!(config.teams.max_in_flight, defaults.teams.max_in_flight);
        assert_eq!(config.teams.listen, defaults.teams.listen);
        assert_eq!(
            config.lockout.retry_wait_minutes,
            defaults.lockout.retry_wait_minutes
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[storage]\ndatabase = \"data/madoguchi.db\"\n[general]\nflows_dir = \"/srv/flows\"\n",
        )
        .expect("write");
        let config = Config::load(Some(&path), Vec::new()).expect("load");
        assert_eq!(
            config.storage.database,
            dir.path().join("data/madoguchi.db")
        );
        assert_eq!(config.general.flows_dir, PathBuf::from("/srv/flows"));
        assert_eq!(config.general.locales_dir, dir.path().join("locales"));
    }

    #[test]
    fn a_postgres_url_is_not_a_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        let url = "postgres://madoguchi:secret@db.internal:5432/madoguchi";
        std::fs::write(&path, format!("[storage]\ndatabase = \"{url}\"\n")).expect("write");
        let config = Config::load(Some(&path), Vec::new()).expect("load");
        assert_eq!(config.storage.postgres_url(), Some(url));
        let env = vec![(
            "MADOGUCHI__STORAGE__DATABASE".to_string(),
            "postgresql://db/madoguchi".to_string(),
        )];
        let config = Config::load(Some(&path), env).expect("load");
        assert_eq!(
            config.storage.postgres_url(),
            Some("postgresql://db/madoguchi")
        );
        assert_eq!(Config::default().storage.postgres_url(), None);
    }
}
