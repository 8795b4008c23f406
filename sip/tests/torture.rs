//! RFC 4475 SIP torture messages through rsipstack's parser and our
//! `validate` module.
//!
//! Each vector in `tests/data/rfc4475/` is listed in [`VECTORS`] with what the
//! RFC expects and which layer does it: rsipstack's parser, our start-line
//! check, or our header validation. [`rsipstack_defects_are_still_there`]
//! pins what rsipstack 0.7.14 alone gets wrong, so that an upgrade which fixes
//! one of them fails here and this list (and the README next to the vectors)
//! gets updated.

use dialcast_sip::validate::{self, response_status, Malformed};
use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Method, SipMessage};

/// Which layer decides about a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// rsipstack's `SipMessage::try_from` returns `Err`.
    Parser,
    /// `validate::check_start_line` rejects what the parser forgave.
    StartLine,
    /// `validate::validate_request` / `validate_response` rejects it.
    Validate,
}

/// What the RFC asks of a receiving user agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Well formed: must be accepted.
    Valid,
    /// Well formed, but rsipstack's parser rejects it (an upstream defect);
    /// a UA would have to answer 501 and cannot.
    ValidButParserRejects,
    /// Must be rejected by `layer`; for requests rejected after parsing,
    /// `status` is what we answer (responses are dropped: `status` 0).
    Reject { layer: Layer, status: u16 },
}

use Expect::*;
use Layer::*;

const fn reject(layer: Layer, status: u16) -> Expect {
    Reject { layer, status }
}

/// (RFC 4475 section, tag, expectation)
const VECTORS: &[(&str, &str, Expect)] = &[
    // 3.1.1 Valid messages
    ("3.1.1.1", "wsinv", Valid),
    ("3.1.1.2", "intmeth", ValidButParserRejects),
    ("3.1.1.3", "esc01", Valid),
    ("3.1.1.4", "escnull", Valid),
    ("3.1.1.5", "esc02", ValidButParserRejects),
    ("3.1.1.6", "lwsdisp", Valid),
    ("3.1.1.7", "longreq", Valid),
    ("3.1.1.8", "dblreq", Valid),
    ("3.1.1.9", "semiuri", Valid),
    ("3.1.1.10", "transports", Valid),
    ("3.1.1.11", "mpart01", Valid),
    ("3.1.1.12", "unreason", Valid),
    ("3.1.1.13", "noreason", Valid),
    // 3.1.2 Invalid messages
    ("3.1.2.1", "badinv01", reject(Validate, 400)),
    ("3.1.2.2", "clerr", reject(Validate, 400)),
    ("3.1.2.3", "ncl", reject(Validate, 400)),
    ("3.1.2.4", "scalar02", reject(Validate, 400)),
    ("3.1.2.5", "scalarlg", reject(Validate, 0)),
    ("3.1.2.6", "quotbal", reject(Validate, 400)),
    ("3.1.2.7", "ltgtruri", reject(StartLine, 400)),
    ("3.1.2.8", "lwsruri", reject(Parser, 400)),
    ("3.1.2.9", "lwsstart", reject(Parser, 400)),
    ("3.1.2.10", "trws", reject(StartLine, 400)),
    ("3.1.2.11", "escruri", reject(Validate, 400)),
    // The RFC lets an element that does not use Date ignore it; we do.
    ("3.1.2.12", "baddate", Valid),
    ("3.1.2.13", "regbadct", reject(Validate, 400)),
    ("3.1.2.14", "badaspec", reject(Validate, 400)),
    ("3.1.2.15", "baddn", reject(Validate, 400)),
    ("3.1.2.16", "badvers", reject(Validate, 505)),
    ("3.1.2.17", "mismatch01", reject(Validate, 400)),
    // The RFC prefers 501 here; rsipstack cannot represent NEWMETHOD at all.
    ("3.1.2.18", "mismatch02", reject(Parser, 400)),
    ("3.1.2.19", "bigcode", reject(Parser, 0)),
    // 3.2 Transaction layer
    ("3.2.1", "badbranch", reject(Validate, 400)),
    // 3.3 Application layer
    ("3.3.1", "insuf", reject(Validate, 400)),
    ("3.3.2", "unkscm", reject(Validate, 416)),
    ("3.3.3", "novelsc", reject(Validate, 416)),
    ("3.3.4", "unksm2", Valid),
    ("3.3.5", "bext01", reject(Validate, 420)),
    ("3.3.6", "invut", reject(Validate, 415)),
    ("3.3.7", "regaut01", Valid),
    ("3.3.8", "multi01", reject(Validate, 400)),
    ("3.3.9", "mcl01", reject(Validate, 400)),
    ("3.3.10", "bcast", Valid),
    ("3.3.11", "zeromf", Valid),
    ("3.3.12", "cparam01", Valid),
    ("3.3.13", "cparam02", Valid),
    ("3.3.14", "regescrt", Valid),
    ("3.3.15", "sdp01", reject(Validate, 406)),
    // 3.4 Backward compatibility
    ("3.4.1", "inv2543", Valid),
];

fn vector(tag: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/rfc4475/{tag}.sip",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(tag: &str) -> SipMessage {
    SipMessage::try_from(vector(tag).as_slice()).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn request(tag: &str) -> rsipstack::sip::Request {
    match parsed(tag) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("{tag} is a response"),
    }
}

fn response(tag: &str) -> rsipstack::sip::Response {
    match parsed(tag) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("{tag} is a request"),
    }
}

/// Which layer rejected `raw`, and the status it maps to.
fn outcome(raw: &[u8]) -> Result<(), (Layer, u16, Malformed)> {
    let is_response = raw.starts_with(b"SIP/");
    validate::parse(raw).map(drop).map_err(|e| {
        let layer = match e {
            Malformed::Parse(_) | Malformed::ParserPanicked => Parser,
            Malformed::StartLine { .. } => StartLine,
            _ => Validate,
        };
        let status = if is_response { 0 } else { response_status(&e) };
        (layer, status, e)
    })
}

#[test]
fn the_vector_list_matches_the_data_folder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("vector folder")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sip").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = VECTORS.iter().map(|v| v.1.to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_vector_meets_its_expectation() {
    let mut failures = Vec::new();
    for &(section, tag, expect) in VECTORS {
        let got = outcome(&vector(tag));
        let ok = match (expect, &got) {
            (Valid, Ok(())) => true,
            (ValidButParserRejects, Err((Parser, _, _))) => true,
            (Reject { layer, status }, Err((l, s, e))) => {
                // A parser rejection has no status of its own: nothing to
                // answer with. Our layers must give the RFC's status.
                *l == layer && (layer == Parser || *s == status) && !e.to_string().is_empty()
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{section} {tag}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn nothing_panics_on_vectors_truncations_or_mutations() {
    for &(_, tag, _) in VECTORS {
        let raw = vector(tag);
        let mut inputs: Vec<Vec<u8>> = vec![raw.clone()];
        for cut in 0..raw.len() {
            inputs.push(raw[..cut].to_vec());
        }
        for (i, byte) in [0u8, b'\r', b'\n', b':', b';', b'"', b'<', 0xff]
            .into_iter()
            .enumerate()
        {
            for at in (i..raw.len()).step_by(7) {
                let mut m = raw.clone();
                m[at] = byte;
                inputs.push(m);
            }
        }
        for input in inputs {
            let result = std::panic::catch_unwind(|| {
                let _ = validate::parse(&input);
                if let Ok(msg) = SipMessage::try_from(input.as_slice()) {
                    match msg {
                        SipMessage::Request(r) => {
                            let _ = validate::validate_request(&r);
                        }
                        SipMessage::Response(r) => {
                            let _ = validate::validate_response(&r);
                        }
                    }
                }
            });
            assert!(
                result.is_ok(),
                "{tag}: panic on input {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

/// The fields RFC 4475 calls out for each valid message, where rsipstack
/// gets them right.
#[test]
fn valid_vectors_have_the_right_fields() {
    let wsinv = request("wsinv");
    assert_eq!(wsinv.method, Method::Invite);
    assert_eq!(
        wsinv.uri.host_with_port.to_string(),
        "chair-dnrc.example.com"
    );
    assert_eq!(
        wsinv.max_forwards_header().expect("mf").value().trim(),
        "0068"
    );
    let cseq = wsinv.cseq_header().expect("cseq").typed().expect("cseq");
    assert_eq!((cseq.seq, cseq.method), (9, Method::Invite));
    assert_eq!(
        wsinv.call_id_header().expect("call-id").value(),
        "wsinv.ndaksdj@192.0.2.1"
    );
    let top = wsinv
        .top_via_header()
        .expect("via")
        .typed()
        .expect("typed via");
    assert_eq!(
        top.branch().map(|b| b.to_string()).as_deref(),
        Some("390skdjuw")
    );
    assert_eq!(wsinv.body.len(), 150);
    assert!(wsinv.headers.iter().any(|h| h.name() == "NewFangledHeader"
        && h.value() == "newfangled value continued newfangled value"));

    let esc01 = request("esc01");
    assert_eq!(esc01.uri.host_with_port.to_string(), "example.net");
    assert_eq!(esc01.body.len(), 150);

    let escnull = request("escnull");
    let contacts = escnull.contact_headers();
    assert_eq!(contacts.len(), 2);
    assert_ne!(contacts[0].value(), contacts[1].value());

    let lwsdisp = request("lwsdisp");
    let from = lwsdisp.from_header().expect("from").typed().expect("from");
    assert_eq!(from.display_name.as_deref(), Some("caller"));

    let longreq = request("longreq");
    let vias = longreq
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Via(_)))
        .count();
    assert_eq!(vias, 34);
    assert_eq!(longreq.body.len(), 150);

    // The trailing INVITE in the datagram is noise after a zero-length body.
    let dblreq = request("dblreq");
    assert_eq!(dblreq.method, Method::Register);
    assert!(dblreq.body.is_empty());

    let transports = request("transports");
    let vias: Vec<_> = transports
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Via(_)))
        .collect();
    assert_eq!(vias.len(), 5);

    // The binary part with NULs arrives intact.
    let mpart01 = request("mpart01");
    assert_eq!(mpart01.method, Method::Message);
    assert_eq!(mpart01.body.len(), 553);
    assert!(mpart01.body.contains(&0));

    let unreason = response("unreason");
    assert_eq!(unreason.status_code.code(), 200);
    assert_eq!(unreason.body.len(), 154);
    assert!(unreason
        .wire_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("= 2**3 * 5**2")));

    let noreason = response("noreason");
    assert_eq!(noreason.status_code.code(), 100);

    let zeromf = request("zeromf");
    assert_eq!(zeromf.max_forwards_header().expect("mf").value(), "0");
}

/// What rsipstack 0.7.14 alone gets wrong. Each assertion pins today's wrong
/// behaviour; when an upgrade fixes one, update this test and the README.
#[test]
fn rsipstack_defects_are_still_there() {
    // 1. Extension methods are unrepresentable (`Method` is a closed enum),
    //    so a UA cannot answer 501 to them: intmeth, esc02, mismatch02.
    for tag in ["intmeth", "esc02", "mismatch02"] {
        assert!(
            SipMessage::try_from(vector(tag).as_slice()).is_err(),
            "{tag}"
        );
    }

    // 2. Quoted-pair escapes end a quoted display name early (wsinv From:
    //    RFC value `J Rosenberg \"`).
    let wsinv = request("wsinv");
    let from = wsinv.from_header().expect("from").typed().expect("from");
    assert_ne!(from.display_name.as_deref(), Some("J Rosenberg \\\""));

    // 3. Comma-separated Via values and LWS around `=` are not split: the
    //    second Via line of wsinv holds two hops, read as one with a mangled
    //    branch.
    let second = wsinv
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Via(v) => Some(v),
            _ => None,
        })
        .nth(1)
        .expect("second via")
        .typed()
        .expect("typed");
    assert_ne!(
        second.branch().map(|b| b.to_string()).as_deref(),
        Some("z9hG4bK9ikj8")
    );

    // 4. A body without Content-Length (allowed over UDP, RFC 3261 18.3) is
    //    dropped: inv2543 carries SDP that comes out empty.
    assert!(request("inv2543").body.is_empty());

    // 5. Escaped URI characters are escaped again when printed (%3A -> %253A).
    assert!(request("esc01").uri.to_string().contains("%253A"));

    // 6. `<>` around the Request-URI are silently stripped (ltgtruri), and
    //    trailing whitespace after SIP/2.0 is ignored (trws).
    assert!(SipMessage::try_from(vector("ltgtruri").as_slice()).is_ok());
    assert!(SipMessage::try_from(vector("trws").as_slice()).is_ok());

    // 7. Content-Length `-999` is read as 0 instead of being an error (ncl),
    //    and a Content-Length larger than the datagram is not noticed (clerr).
    assert!(request("ncl").body.is_empty());
    assert_eq!(request("clerr").body.len(), 154);

    // 8. Unbalanced quotes and unquoted display names with commas are
    //    accepted as display names (quotbal, baddn).
    let quotbal = request("quotbal");
    assert!(quotbal.to_header().expect("to").typed().is_ok());
    let baddn = request("baddn");
    assert!(baddn.from_header().expect("from").typed().is_ok());

    // 9. An unknown Via transport token fails typed parsing (transports,
    //    4th Via `SIP/2.0/UNKNOWN`), although the grammar allows any token.
    let unknown = request("transports")
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Via(v) => Some(v.typed()),
            _ => None,
        })
        .nth(3)
        .expect("4th via");
    assert!(unknown.is_err());

    // 10. An addr-spec Contact with `?headers` loses them without a word
    //     (regbadct).
    let regbadct = request("regbadct");
    let contact = regbadct.contact_header().expect("contact").typed();
    assert!(contact.is_ok_and(|c| !c.to_string().contains('?')));
    // 11. LWS around `=` in header parameters hides the tag: wsinv's
    //     `;   tag    = 1918181833n` and `tag = 98asjd8` are not tags to
    //     rsipstack, which breaks dialog matching with such a peer.
    let to = wsinv.to_header().expect("to").typed().expect("to");
    assert!(to.tag().is_none());
    let from = wsinv.from_header().expect("from").typed().expect("from");
    assert!(from.tag().is_none());

    // 12. A Request-URI with an unknown scheme and `//` (novelsc,
    //     `soap.beep://192.0.2.103:3002`) parses as a host name without a
    //     scheme; validate treats a missing scheme as unsupported (416).
    assert!(request("novelsc").uri.scheme.is_none());
    // 13. A `;` in the user part ends the user part early (semiuri,
    //     `sip:user;par=u%40example.net@example.com`): the host comes out
    //     as `user` instead of `example.com`.
    let semiuri = request("semiuri");
    assert_eq!(semiuri.uri.host_with_port.to_string(), "user");
}
