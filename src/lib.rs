//! madoguchi (窓口, "help desk counter"): a help-desk chat bot that walks a
//! person whose Microsoft Entra ID multi-factor authentication by phone call
//! or SMS fails through the help desk's six known causes (A–F), in polite
//! Japanese (English second), and hands the conversation to a support agent
//! when it cannot solve it.
//!
//! # Layout
//!
//! - [`config`]: typed configuration (file, `MADOGUCHI__…` environment overrides, defaults).
//! - [`content`]: load and check flows and locales together.
//! - [`flow`]: flow model (`flows/*.toml`), conditions, compiled flow, the pure
//!   engine (`step`), and `check`.
//! - [`i18n`]: Fluent bundles and locale negotiation.
//! - [`diagnose`]: phone numbers, lockout arithmetic, free-text intents, validators.
//! - [`conversation`]: transcript records, the `Store` trait with memory, SQLite and PostgreSQL
//!   (state kept serialised; the store knows nothing of flows).
//! - [`handoff`]: the summary prepared for agents, the transcript as agents
//!   read it, agent commands, business hours.
//! - [`desk`]: load → step → plan (pure) → commit; one transaction per input;
//!   the channel-neutral look-ups adapters need.
//! - [`outbox`]: typed outbox rows and the one generic sender (`trait Deliver`).
//! - [`channels`]: adapters (terminal, Discord, Teams) that only translate.
//! - [`serve`]: `madoguchi serve`: channels and the timer loop until shutdown.
//! - [`server`]: axum: `/healthz` and the Bot Framework endpoint `/api/messages`.
//! - [`clock`]: system and manual clocks (the engine never reads one).
//! - [`text`]: normalisation of what people type (NFKC, kana, control characters).

pub mod channels;
pub mod clock;
pub mod config;
pub mod content;
pub mod conversation;
pub mod desk;
pub mod diagnose;
pub mod flow;
pub mod handoff;
pub mod i18n;
pub mod outbox;
pub mod serve;
pub mod server;
pub mod text;
