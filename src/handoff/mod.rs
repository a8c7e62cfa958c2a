//! Handing a conversation to a person, channel-neutral: the summary agents
//! read first, the transcript as agents see it, business hours, and (in the engine, as `Input::Agent`) the
//! claim / relay / release / transfer / close transitions. Channels only
//! decide who may act (a Discord role, a Teams group) and carry messages.

pub mod commands;
pub mod hours;
pub mod summary;
pub mod transcript;
