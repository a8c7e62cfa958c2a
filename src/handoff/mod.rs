//! Handing a conversation to a person: the summary agents read first.
//! (Claiming, relaying and closing come with the Discord and Teams channels
//! and live here too, channel-neutral.)

pub mod summary;
