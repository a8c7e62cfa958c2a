//! Rebuild when a migration is added: `sqlx::migrate!` embeds the
//! migration folders at compile time and does not track new files itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
