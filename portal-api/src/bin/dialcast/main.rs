//! The `dialcast` command: every engine command (`dialcast_engine::cli`),
//! plus what sits above the engine — the portal API served by `serve` and
//! `demo` (`--portal-addr`), and `dialcast user create` and `dialcast
//! apikey create` (see [`portal`]).
//!
//! Why here: the binary wires the engine and the portal together, and the
//! portal depends on the engine, never the reverse, so it cannot be a
//! binary of `dialcast-engine`; the portal crate is the top of the
//! dependency graph (the workspace's top level is fixed, so no crate of its
//! own). The library stays HTTP handlers; clap and the command wiring live
//! in this binary only. The command line is defined once, in the engine,
//! with an extension point that [`portal::Portal`] fills in.

/// mimalloc, not glibc's malloc: an import allocates a few dozen small
/// strings per row on its reading thread, and with glibc's allocator that
/// churn (arena locks, `malloc_consolidate`) was about 40 % of the reading
/// thread's time. A million-row CSV import: 7.5 s → 4.5 s on the 2-vCPU
/// development VM (loadtest/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod portal;

fn main() -> std::process::ExitCode {
    dialcast_engine::cli::main::<portal::Portal>()
}
