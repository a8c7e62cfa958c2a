//! Conversations: the transcript, the outbox, and where both are
//! stored (the [`store::Store`] trait with in-memory and SQLite backends).

pub mod memory;
pub mod sqlite;
pub mod store;
