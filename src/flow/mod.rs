//! Flows: the model (`flows/*.toml`), conditions, the compiled form, the pure
//! engine that steps a conversation, and the checker.

pub mod check;
pub mod compiled;
pub mod condition;
pub mod engine;
pub mod lexicon;
pub mod model;
pub mod state;
