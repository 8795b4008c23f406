//! A direct reader for the common case of an incoming response: one pass over
//! the header lines, straight into [`Incoming`], without building rsipstack's
//! typed message first.
//!
//! Why: responses are most of what a dialer receives (180, 200, the 200 to our
//! BYE), and parsing one with rsipstack allocates a string per header, then we
//! copy the fields we need and drop the rest (about 3 µs per 200 OK with SDP;
//! see sip/BENCH.md). Anything this reader does not expect — folded lines, a
//! digest challenge, a missing or repeated mandatory header, a Content-Length
//! that disagrees with the body — returns `None`, and the message takes the
//! full path (rsipstack's parser plus `crate::validate`), so nothing is
//! accepted here that the full path would refuse.

use super::msg::{split_list, trim, uri_of, Fields, Incoming, Kind};

/// Reads a well-formed response, or `None` to let the full path decide.
pub fn read_response(bytes: &[u8]) -> Option<Incoming> {
    let head_end = memchr::memmem::find(bytes, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let body = &bytes[head_end + 4..];
    let mut lines = crlf_lines(head);
    let status = lines.next()??;
    let rest = status.strip_prefix("SIP/2.0 ")?;
    let code: u16 = rest.get(..3)?.parse().ok()?;
    if !(100..=699).contains(&code) || rest.as_bytes().get(3).is_some_and(|b| *b != b' ') {
        return None;
    }
    let mut vias = Vec::with_capacity(1);
    let (mut call_id, mut from, mut to, mut cseq) = (None, None, None, None);
    let (mut contact, mut content_type, mut retry_after) = (None, None, None);
    let mut record_route = Vec::new();
    let mut content_length = None;
    for line in lines {
        let line = line?; // a bare LF: leave it to the full parser
        if line.starts_with([' ', '\t']) {
            return None; // folded header: leave it to the full parser
        }
        let (name, value) = line.split_once(':')?;
        let value = trim(value);
        let name = trim(name);
        let once = |slot: &mut Option<String>| -> Option<()> {
            if slot.is_some() {
                return None; // repeated mandatory header
            }
            *slot = Some(value.to_string());
            Some(())
        };
        {
            match known(name) {
                Known::Via => vias.extend(split_list(value).map(str::to_string)),
                Known::CallId => once(&mut call_id)?,
                Known::From => once(&mut from)?,
                Known::To => once(&mut to)?,
                Known::CSeq => once(&mut cseq)?,
                Known::Contact => {
                    if contact.is_none() {
                        contact = uri_of(value).map(str::to_string);
                    }
                }
                Known::RecordRoute => record_route.extend(split_list(value).map(str::to_string)),
                Known::ContentType => content_type = Some(value.to_ascii_lowercase()),
                Known::ContentLength => {
                    if content_length.is_some() {
                        return None;
                    }
                    content_length = Some(value.parse::<usize>().ok()?);
                }
                Known::RetryAfter => retry_after = Some(value.to_string()),
                Known::Challenge => return None, // digest: the full path builds it
                Known::Other => {}
            }
        }
    }
    if content_length != Some(body.len()) {
        return None;
    }
    let call_id = call_id.filter(|c| {
        let visible = |b: u8| b > b' ' && b < 0x7F;
        !c.is_empty() && (c.bytes().all(visible) || !c.contains(char::is_whitespace))
    })?;
    let message = Incoming::assemble(Fields {
        kind: Kind::Response { code },
        vias,
        call_id: Some(call_id),
        from,
        to,
        cseq,
        contact,
        record_route,
        content_type,
        retry_after,
        challenge: None,
        body: body.to_vec(),
    })
    .ok()?;
    (message.cseq <= crate::validate::MAX_CSEQ).then_some(message)
}

enum Known {
    Via,
    CallId,
    From,
    To,
    CSeq,
    Contact,
    RecordRoute,
    ContentType,
    ContentLength,
    RetryAfter,
    Challenge,
    Other,
}

/// The lines of a message head split at CRLF; a line that ends in a bare LF
/// comes out as `None` (the head itself ends before its final CRLF).
fn crlf_lines(head: &str) -> impl Iterator<Item = Option<&str>> {
    let mut rest = Some(head);
    std::iter::from_fn(move || {
        let text = rest?;
        match memchr::memchr(b'\n', text.as_bytes()) {
            Some(i) => {
                rest = Some(&text[i + 1..]);
                Some(text[..i].strip_suffix('\r'))
            }
            None => {
                rest = None;
                Some(Some(text))
            }
        }
    })
}

/// Maps a header name (long or compact form, any case), looking only at the
/// names of its length.
fn known(name: &str) -> Known {
    let eq = |a: &str| name.eq_ignore_ascii_case(a);
    match name.len() {
        1 => match name.as_bytes()[0].to_ascii_lowercase() {
            b'v' => Known::Via,
            b'i' => Known::CallId,
            b'f' => Known::From,
            b't' => Known::To,
            b'm' => Known::Contact,
            b'c' => Known::ContentType,
            b'l' => Known::ContentLength,
            _ => Known::Other,
        },
        2 if eq("to") => Known::To,
        3 if eq("via") => Known::Via,
        4 if eq("from") => Known::From,
        4 if eq("cseq") => Known::CSeq,
        7 if eq("call-id") => Known::CallId,
        7 if eq("contact") => Known::Contact,
        11 if eq("retry-after") => Known::RetryAfter,
        12 if eq("record-route") => Known::RecordRoute,
        12 if eq("content-type") => Known::ContentType,
        14 if eq("content-length") => Known::ContentLength,
        16 if eq("www-authenticate") => Known::Challenge,
        18 if eq("proxy-authenticate") => Known::Challenge,
        _ => Known::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport=5060\r\nFrom: <sip:+3170@127.0.0.1>;tag=ours\r\nTo: \"Bob\" <sip:bob@127.0.0.1>;tag=theirs\r\nCall-ID: c1@dialcast\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nContact: <sip:bob@10.0.0.2:5062;transport=udp>\r\nRetry-After: 5\r\nContent-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

    fn full_path(bytes: &[u8]) -> Option<Incoming> {
        let message = rsipstack::sip::SipMessage::try_from(bytes).ok()?;
        Incoming::from_message(message).ok()
    }

    #[test]
    fn reads_what_the_full_path_reads() {
        let fast = read_response(OK.as_bytes()).expect("fast path");
        let full = full_path(OK.as_bytes()).expect("full path");
        assert_eq!(fast.branch, full.branch);
        assert_eq!(fast.call_id, full.call_id);
        assert_eq!(fast.from_tag, full.from_tag);
        assert_eq!(fast.to_tag, full.to_tag);
        assert_eq!((fast.cseq, fast.cseq_method), (full.cseq, full.cseq_method));
        assert_eq!(fast.contact, full.contact);
        assert_eq!(fast.record_route, full.record_route);
        assert_eq!(fast.content_type, full.content_type);
        assert_eq!(fast.body, full.body);
        assert_eq!(fast.retry_after.as_deref(), Some("5"));
        assert!(matches!(fast.kind, Kind::Response { code: 200 }));
    }

    #[test]
    fn unusual_responses_are_left_to_the_full_path() {
        let cases = [
            OK.replace("Content-Length: 4", "Content-Length: 9"),
            OK.replace("Call-ID: c1@dialcast\r\n", ""),
            OK.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\n"),
            OK.replace(
                "Retry-After: 5",
                "WWW-Authenticate: Digest realm=\"x\", nonce=\"y\"",
            ),
            OK.replace("Retry-After: 5", "Retry-After: 5\r\n  folded"),
            OK.replace("SIP/2.0 200", "SIP/2.0 799"),
            OK.replace("SIP/2.0 200 OK", "SIP/3.0 200 OK"),
        ];
        for case in cases {
            assert!(read_response(case.as_bytes()).is_none(), "{case}");
        }
    }

    #[test]
    fn a_bare_line_feed_is_left_to_the_full_path() {
        let bare = OK.replace("CSeq: 1 INVITE\r\n", "CSeq: 1 INVITE\n");
        assert!(read_response(bare.as_bytes()).is_none());
    }

    #[test]
    fn header_names_in_any_case_and_form() {
        for (name, want) in [
            ("VIA", "via"),
            ("v", "via"),
            ("Call-ID", "call-id"),
            ("I", "call-id"),
            ("fRoM", "from"),
            ("T", "to"),
            ("CSEQ", "cseq"),
            ("m", "contact"),
            ("Record-Route", "record-route"),
            ("C", "content-type"),
            ("Content-Length", "content-length"),
            ("l", "content-length"),
            ("Retry-After", "retry-after"),
            ("Proxy-Authenticate", "challenge"),
            ("WWW-Authenticate", "challenge"),
            ("Subject", "other"),
            ("s", "other"),
            ("Record-Routes", "other"),
        ] {
            let got = match known(name) {
                Known::Via => "via",
                Known::CallId => "call-id",
                Known::From => "from",
                Known::To => "to",
                Known::CSeq => "cseq",
                Known::Contact => "contact",
                Known::RecordRoute => "record-route",
                Known::ContentType => "content-type",
                Known::ContentLength => "content-length",
                Known::RetryAfter => "retry-after",
                Known::Challenge => "challenge",
                Known::Other => "other",
            };
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn compact_header_names() {
        let compact = "SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: xyz\r\nCSeq: 7 INVITE\r\nl: 0\r\n\r\n";
        let m = read_response(compact.as_bytes()).expect("compact forms");
        assert_eq!(
            (m.branch.as_str(), m.call_id.as_str(), m.cseq),
            ("z9hG4bKx", "xyz", 7)
        );
    }
}
