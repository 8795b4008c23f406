//! A 200 MB upload is streamed with flat memory: the client sends it from
//! disk, the server spools it to disk chunk by chunk, and the process's
//! peak resident set (VmHWM, client and server together) grows by far less
//! than the file. Alone in its own test binary, so no other test's
//! allocations count.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod harness;

use std::io::Write as _;

use dialcast_portal_api::Role;
use harness::Harness;
use hyper::StatusCode;

const FILE_BYTES: u64 = 200 * 1024 * 1024;
/// Peak-RSS growth allowed: a tenth of the file.
const MAX_GROWTH_BYTES: u64 = FILE_BYTES / 10;

/// The process's peak resident set in bytes (Linux /proc).
fn vm_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_upload_keeps_memory_flat() {
    let h = Harness::start().await;
    let key = h.key(h.portal_a, Role::File).await;
    // 200 MB of CSV rows without the required RECORD_ID column: the
    // background validation then fails at the header at once, so that what
    // is measured is the upload (a valid file of this size would be read
    // for many seconds after the response).
    let path = h.path("big.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        out.write_all(b"CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;CONTROL_SCRIPT\n")
            .unwrap();
        let row = b"0612345678;10.00;s\n";
        let mut written = 51;
        while written < FILE_BYTES {
            out.write_all(row).unwrap();
            written += row.len() as u64;
        }
        out.flush().unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size >= FILE_BYTES);

    let before = vm_hwm();
    let started = std::time::Instant::now();
    let up = h.upload_from_disk(&key, "c", &path, true).await;
    let took = started.elapsed();
    let after = vm_hwm();
    assert_eq!(
        up.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&up.body)
    );
    let id = up.json()["id"].as_i64().unwrap();
    assert_eq!(up.json()["file_size"].as_u64(), Some(size));
    let growth = after.saturating_sub(before);
    eprintln!(
        "200 MB upload: {size} bytes in {:.2} s; peak RSS {} MiB -> {} MiB (growth {} KiB)",
        took.as_secs_f64(),
        before / (1024 * 1024),
        after / (1024 * 1024),
        growth / 1024
    );
    assert!(
        growth < MAX_GROWTH_BYTES,
        "peak RSS grew by {growth} bytes for a {size}-byte upload"
    );
    // The archived original is the whole file.
    let settled = h.settled_import(&key, id).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert_eq!(settled["file_size"].as_u64(), Some(size));
}
