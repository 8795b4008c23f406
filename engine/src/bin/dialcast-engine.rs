//! `dialcast-engine`: the engine's commands without the portal, for this
//! crate's integration tests (see `dialcast_engine::cli`). The `dialcast`
//! binary people run is built by the portal crate (`portal-api/src/bin/dialcast/`).

/// The same allocator as the `dialcast` binary, so that the tests measure
/// what ships: mimalloc, not glibc's malloc. An import allocates a few
/// dozen small strings per row on its reading thread, and with glibc's
/// allocator that churn (arena locks, `malloc_consolidate`) was about 40 %
/// of the reading thread's time. A million-row CSV import: 7.5 s → 4.5 s on
/// the 2-vCPU development VM (loadtest/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dialcast_engine::cli::main::<dialcast_engine::cli::NoExtension>()
}
