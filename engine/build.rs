//! Rebuilds the engine when a migration is added: `sqlx::migrate!` embeds
//! the migrations directory at compile time, and cargo does not otherwise
//! see a new file in it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
