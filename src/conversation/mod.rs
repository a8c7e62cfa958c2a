//! Conversations: the transcript, the outbox, and where both are
//! stored (the [`store::Store`] trait with in-memory, SQLite and PostgreSQL
//! backends).

pub mod memory;
pub mod postgres;
pub mod sqlite;
pub mod store;
