//! The import module of dialcast-engine, compiled on its own for fuzzing
//! (see Cargo.toml for why), plus the options every target uses.

#[path = "../../src/import/mod.rs"]
pub mod import;

use import::ImportOptions;

/// Options as an import with a script chosen, so rows get past the header
/// check more often.
pub fn options() -> ImportOptions {
    ImportOptions {
        script: Some("fuzz".to_owned()),
        ..ImportOptions::new("fuzz")
    }
}
