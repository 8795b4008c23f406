//! Best-effort raise of the media scheduler thread's CPU priority.
//!
//! RTP pacing is the one thing on the box with a hard 20 ms rhythm: when the
//! cores are shared (SIP, the database, a compile), a normal-priority thread
//! waits a scheduler slice (several ms) behind busy threads and packets go out
//! late. A nice value of -10 lets the kernel run it as soon as it wakes while
//! it still cannot starve anything (it sleeps most of the time, and CFS caps
//! a nice -10 thread's share; a real-time class would not). Needs root or
//! CAP_SYS_NICE; without them the call fails and we keep the normal priority.
//!
//! Measured with `examples/loopback_load.rs` (1,500 calls) under a concurrent
//! `cargo build`: see BENCH.md.

/// The nice value asked for.
pub(crate) const MEDIA_NICE: i32 = -10;

/// Set the calling thread's nice value. Returns whether the kernel accepted.
#[allow(unsafe_code)]
pub(crate) fn raise_current_thread() -> bool {
    // SAFETY: gettid has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let Ok(tid) = libc::id_t::try_from(tid) else {
        return false;
    };
    // SAFETY: setpriority only reads its integer arguments; on Linux,
    // PRIO_PROCESS with a thread id changes just that thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, MEDIA_NICE) };
    rc == 0
}
