//! Domain checks as plain functions: phone numbers (cases D and F), lockout
//! arithmetic (case A), free-text intent matching, and the validators that
//! `collect` nodes name.

pub mod intent;
pub mod lockout;
pub mod phone;
pub mod validators;
