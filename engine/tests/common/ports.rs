//! Free local ports for tests that run external tools, which cannot be told
//! to bind port 0 and report back (SIPp's `-p` and `-mp`).
//!
//! Blocks are handed out from 10000-19999: below Linux's ephemeral range
//! (32768 and up) and below dialcast's default RTP range (20000-39999), which
//! other dialcast processes on the machine may be using. The walk starts at an
//! offset derived from the process id so that two test binaries running at
//! once rarely probe the same ports, and every port of a block is checked to
//! be free for both UDP and TCP on 127.0.0.1 before it is handed out. A small
//! race with unrelated processes remains; tests in one process never collide.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::Mutex;

const FIRST: u32 = 10_000;
const END: u32 = 20_000;

static NEXT: Mutex<Option<u32>> = Mutex::new(None);

/// The first port of `len` consecutive ports that are free now, starting at an
/// even port (RTP convention). Panics if the whole range is taken.
pub fn block(len: u16) -> u16 {
    let len = u32::from(len.max(1));
    let mut next = NEXT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut candidate =
        next.unwrap_or_else(|| FIRST + (std::process::id() * 7919) % ((END - FIRST) / 2) * 2);
    for _ in 0..(END - FIRST) {
        if candidate % 2 == 1 {
            candidate += 1;
        }
        if candidate + len > END {
            candidate = FIRST;
        }
        let start = candidate;
        candidate += len;
        if (start..start + len).all(is_free) {
            *next = Some(candidate);
            return u16::try_from(start).expect("ports stay below 20000");
        }
    }
    panic!("no {len} consecutive free ports between {FIRST} and {END}");
}

/// One free port.
pub fn one() -> u16 {
    block(1)
}

/// Whether some process has a UDP socket bound to `port` (`Proto::Udp`) or a
/// TCP socket listening on it (`Proto::Tcp`), on any local address. Reads
/// `/proc/net` instead of trying to bind the port, which could make the
/// process that is about to bind it fail.
pub fn bound(port: u16, proto: Proto) -> bool {
    let (tables, listening): (&[&str], Option<&str>) = match proto {
        Proto::Udp => (&["/proc/net/udp", "/proc/net/udp6"], None),
        // "0A" is TCP_LISTEN in the kernel's socket state numbering.
        Proto::Tcp => (&["/proc/net/tcp", "/proc/net/tcp6"], Some("0A")),
    };
    let wanted = format!("{port:04X}");
    tables.iter().any(|table| {
        let Ok(text) = std::fs::read_to_string(table) else {
            return false;
        };
        text.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or("");
            let state = fields.nth(1).unwrap_or("");
            local.rsplit(':').next() == Some(wanted.as_str())
                && listening.is_none_or(|listen| state == listen)
        })
    })
}

/// The transport of a socket [`bound`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    Tcp,
}

fn is_free(port: u32) -> bool {
    let Ok(port) = u16::try_from(port) else {
        return false;
    };
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}
