//! Channel adapters: they translate platform events into desk calls and
//! rendered replies into platform messages, and hold no flow logic.

pub mod console;
pub mod discord;
pub mod teams;
pub mod web;
