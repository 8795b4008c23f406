//! Checks of RFC 3261 rules that rsipstack's parser lets through.
//!
//! This module owns the decision whether a message rsipstack *parsed* is fit
//! to process, and which status a rejected request earns. rsipstack's parser
//! is liberal: it keeps duplicate To/From/CSeq/Call-ID headers, takes a
//! Content-Length it cannot read as 0, accepts unbalanced quotes and unquoted
//! display names with commas, and never looks at the method in CSeq. The RFC
//! 4475 torture vectors in `tests/data/rfc4475/` show each case; see
//! `tests/torture.rs` and the README there for which layer rejects which.
//!
//! Use [`parse`] on a raw datagram (it also runs [`check_start_line`] and
//! catches a parser panic), or [`validate_request`] / [`validate_response`]
//! on a message rsipstack's transport layer already parsed. A rejected request
//! gets [`response_status`]; a rejected response is dropped.

use rsipstack::sip::prelude::*;
use rsipstack::sip::{Header, Method, Request, Response, Scheme, SipMessage, Version};

/// Option tags we support in `Require` (RFC 3261 section 8.2.2.3). A request
/// requiring anything else gets 420 Bad Extension.
/// None yet: no session timers (RFC 4028), Replaces (RFC 3891) or 100rel (RFC 3262).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[];

/// The largest CSeq sequence number RFC 3261 section 8.1.1.5 allows.
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Why a message must not be processed. Header names are the canonical long
/// form even when the message used the compact one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// rsipstack's parser refused the bytes.
    #[error("unparsable SIP message: {0}")]
    Parse(#[source] rsipstack::sip::Error),
    /// rsipstack's parser panicked on the bytes (caught; report upstream).
    #[error("SIP parser panicked on this input")]
    ParserPanicked,
    /// The start line breaks the RFC 3261 grammar in a way the parser forgave.
    #[error("bad start line: {reason}")]
    StartLine {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The message is not SIP/2.0 (start line or Via).
    #[error("{field} has SIP version {found}, only SIP/2.0 is supported")]
    Version {
        /// `start line` or `Via`.
        field: &'static str,
        /// The version as written.
        found: String,
    },
    /// A mandatory header is absent.
    #[error("missing {header} header")]
    Missing {
        /// The header name.
        header: &'static str,
    },
    /// A header allowed once appears more than once.
    #[error("{header} appears {count} times, allowed once")]
    Duplicate {
        /// The header name.
        header: &'static str,
        /// How often it appears.
        count: usize,
    },
    /// A header value does not follow its grammar.
    #[error("bad {header} header: {reason}")]
    BadValue {
        /// The header name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The method in CSeq is not the request method.
    #[error("CSeq method {cseq} does not match request method {request}")]
    CSeqMethodMismatch {
        /// The request line method.
        request: Method,
        /// The CSeq method.
        cseq: Method,
    },
    /// Content-Length disagrees with the body that arrived.
    #[error("Content-Length is {declared} but the body has {actual} bytes")]
    ContentLength {
        /// The header value.
        declared: u64,
        /// Bytes of body received.
        actual: usize,
    },
    /// A response status code outside 100..=699.
    #[error("status code {code} is outside 100..=699")]
    StatusCode {
        /// The code.
        code: u16,
    },
    /// The Request-URI has a scheme we do not serve.
    #[error("unsupported Request-URI scheme {scheme}")]
    UriScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// The Request-URI carries `?headers`, which RFC 3261 section 19.1.5
    /// forbids there.
    #[error("Request-URI contains escaped headers")]
    HeadersInRequestUri,
    /// The request requires an extension we do not support.
    #[error("unsupported extension {option} in Require")]
    Extension {
        /// The option tag.
        option: String,
    },
    /// The body type is not one we can handle for this method.
    #[error("unsupported body type {content_type}")]
    MediaType {
        /// The Content-Type media type.
        content_type: String,
    },
    /// An INVITE whose Accept excludes SDP: we cannot answer it in a form
    /// the sender takes.
    #[error("Accept does not include application/sdp")]
    NotAcceptable,
}

/// The status code to reject a request with. A malformed *response* is
/// dropped instead; there is nobody to answer.
pub fn response_status(malformed: &Malformed) -> u16 {
    match malformed {
        Malformed::Version { .. } => 505,
        Malformed::UriScheme { .. } => 416,
        Malformed::Extension { .. } => 420,
        Malformed::MediaType { .. } => 415,
        Malformed::NotAcceptable => 406,
        _ => 400,
    }
}

/// Parses a datagram with rsipstack and validates the result. Catches a
/// panic in the parser so that hostile input cannot take the process down.
pub fn parse(raw: &[u8]) -> Result<SipMessage, Malformed> {
    let parsed = std::panic::catch_unwind(|| SipMessage::try_from(raw))
        .map_err(|_| Malformed::ParserPanicked)?
        .map_err(Malformed::Parse)?;
    check_start_line(raw)?;
    match &parsed {
        SipMessage::Request(req) => validate_request(req)?,
        SipMessage::Response(resp) => validate_response(resp)?,
    }
    Ok(parsed)
}

/// Checks the raw start line for what the parser silently forgives: extra
/// spaces, trailing whitespace and a Request-URI in angle brackets.
pub fn check_start_line(raw: &[u8]) -> Result<(), Malformed> {
    let end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(raw.len());
    let line = &raw[..end];
    let bad = |reason| Err(Malformed::StartLine { reason });
    if line.starts_with(b"SIP/") {
        // Status-Line: the reason phrase may be empty or contain anything,
        // and the space after the code is required even then (`100 `).
        return Ok(());
    }
    if line.last().is_some_and(u8::is_ascii_whitespace) {
        return bad("whitespace before CRLF");
    }
    if line.first().is_some_and(u8::is_ascii_whitespace) {
        return bad("leading whitespace");
    }
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return bad("Request-Line must be exactly `Method SP Request-URI SP SIP-Version`");
    }
    if parts[1].starts_with(b"<") || parts[1].ends_with(b">") {
        return bad("Request-URI is enclosed in <>");
    }
    if line.contains(&b'\t') {
        return bad("tab in Request-Line");
    }
    Ok(())
}

/// Checks a parsed request against RFC 3261 section 8.2 and the grammar
/// rules rsipstack does not enforce.
pub fn validate_request(req: &Request) -> Result<(), Malformed> {
    if req.version != Version::V2 {
        return Err(Malformed::Version {
            field: "start line",
            found: req.version.to_string(),
        });
    }
    common_headers(&req.headers, req.body.len(), Strictness::Request)?;

    // CSeq: exactly one (checked above), readable, in range, same method.
    let cseq = readable_cseq(req.cseq_header())?;
    if cseq.method != req.method {
        return Err(Malformed::CSeqMethodMismatch {
            request: req.method,
            cseq: cseq.method,
        });
    }

    // Max-Forwards is optional for RFC 2543 peers, but must be sane if present.
    let max_forwards = values(&req.headers, |h| matches!(h, Header::MaxForwards(_)));
    match max_forwards.as_slice() {
        [] => {}
        [value] => {
            let n = parse_decimal(value).ok_or(Malformed::BadValue {
                header: "Max-Forwards",
                reason: "not a decimal number",
            })?;
            if n > 255 {
                return Err(Malformed::BadValue {
                    header: "Max-Forwards",
                    reason: "larger than 255",
                });
            }
        }
        many => {
            return Err(Malformed::Duplicate {
                header: "Max-Forwards",
                count: many.len(),
            })
        }
    }

    // Request-URI.
    match &req.uri.scheme {
        Some(Scheme::Sip) | Some(Scheme::Sips) => {}
        // rsipstack reads `soap.beep://host` as a scheme-less host name.
        None => {
            let uri = req.uri.to_string();
            let scheme = uri.split(':').next().unwrap_or_default();
            return Err(Malformed::UriScheme {
                scheme: scheme.to_owned(),
            });
        }
        Some(Scheme::Other(s)) if s.eq_ignore_ascii_case("tel") => {}
        Some(Scheme::Other(s)) => {
            return Err(Malformed::UriScheme { scheme: s.clone() });
        }
    }
    if !req.uri.headers.is_empty() {
        return Err(Malformed::HeadersInRequestUri);
    }

    // Extensions (RFC 3261 section 8.2.2.3); never for ACK and CANCEL.
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        for value in values(&req.headers, |h| matches!(h, Header::Require(_))) {
            for option in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if !SUPPORTED_EXTENSIONS
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(option))
                {
                    return Err(Malformed::Extension {
                        option: option.to_owned(),
                    });
                }
            }
        }
    }

    // Bodies of session methods must be SDP (possibly inside multipart).
    if matches!(
        req.method,
        Method::Invite | Method::Update | Method::Ack | Method::PRack
    ) && !req.body.is_empty()
    {
        let content_type = values(&req.headers, |h| matches!(h, Header::ContentType(_)));
        let media_type = content_type
            .first()
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .unwrap_or("");
        if !media_type.eq_ignore_ascii_case("application/sdp")
            && !media_type.eq_ignore_ascii_case("multipart/mixed")
        {
            return Err(Malformed::MediaType {
                content_type: media_type.to_owned(),
            });
        }
    }
    if req.method == Method::Invite {
        let accept = values(&req.headers, |h| matches!(h, Header::Accept(_)));
        let ranges: Vec<&str> = accept
            .iter()
            .flat_map(|v| v.split(','))
            .map(|r| r.split(';').next().unwrap_or("").trim())
            .filter(|r| !r.is_empty())
            .collect();
        let takes_sdp = ranges.iter().any(|r| {
            r.eq_ignore_ascii_case("application/sdp")
                || r.eq_ignore_ascii_case("application/*")
                || *r == "*/*"
        });
        if !ranges.is_empty() && !takes_sdp {
            return Err(Malformed::NotAcceptable);
        }
    }
    Ok(())
}

/// Checks a parsed response: the same header rules as a request, a status
/// code in 100..=699 and a readable CSeq.
pub fn validate_response(resp: &Response) -> Result<(), Malformed> {
    if resp.version != Version::V2 {
        return Err(Malformed::Version {
            field: "start line",
            found: resp.version.to_string(),
        });
    }
    let code = resp.status_code.code();
    if !(100..=699).contains(&code) {
        return Err(Malformed::StatusCode { code });
    }
    common_headers(&resp.headers, resp.body.len(), Strictness::Response)?;
    readable_cseq(resp.cseq_header())?;
    Ok(())
}

/// The CSeq header, typed, with a sequence number RFC 3261 §8.1.1.5 allows.
fn readable_cseq<E>(
    header: Result<&rsipstack::sip::headers::CSeq, E>,
) -> Result<rsipstack::sip::typed::CSeq, Malformed> {
    let cseq = header
        .map_err(|_| Malformed::Missing { header: "CSeq" })?
        .typed()
        .map_err(|_| Malformed::BadValue {
            header: "CSeq",
            reason: "not `number method` with a number below 2^32",
        })?;
    if cseq.seq > MAX_CSEQ {
        return Err(Malformed::BadValue {
            header: "CSeq",
            reason: "sequence number is 2^31 or more",
        });
    }
    Ok(cseq)
}

/// How closely to look at name-addr grammar.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// Inbound requests: RFC 4475 asks for 400 on grammar faults.
    Request,
    /// Responses: To and From are copies of our own request, and dropping a
    /// 200 OK over a cosmetic fault in the peer's Contact would lose a call,
    /// so only what matching and reading the response needs is checked.
    Response,
}

/// Rules shared by requests and responses.
fn common_headers(
    headers: &rsipstack::sip::Headers,
    body_len: usize,
    strictness: Strictness,
) -> Result<(), Malformed> {
    exactly_one(headers, "To", |h| matches!(h, Header::To(_)))?;
    exactly_one(headers, "From", |h| matches!(h, Header::From(_)))?;
    exactly_one(headers, "CSeq", |h| matches!(h, Header::CSeq(_)))?;
    let call_id = exactly_one(headers, "Call-ID", |h| matches!(h, Header::CallId(_)))?;
    if call_id.trim().is_empty() || call_id.chars().any(char::is_whitespace) {
        return Err(Malformed::BadValue {
            header: "Call-ID",
            reason: "empty or contains whitespace",
        });
    }

    let strict = strictness == Strictness::Request;
    // A response answers one of our requests: its To, From and Via are copies
    // of ours, and the core reads tags and the branch itself. Typed parsing of
    // them cost 4 µs per response (sip bench parse_and_validate_200_with_sdp:
    // 6.1 µs before, see sip/BENCH.md), so only presence is checked.
    if !strict {
        if !headers.iter().any(|h| matches!(h, Header::Via(_))) {
            return Err(Malformed::Missing { header: "Via" });
        }
        return content_length(headers, body_len);
    }
    for header in headers.iter() {
        match header {
            Header::To(to) => {
                if strict {
                    check_name_addr("To", to.value())?;
                }
                to.typed().map_err(|_| Malformed::BadValue {
                    header: "To",
                    reason: "URI does not parse",
                })?;
            }
            Header::From(from) => {
                if strict {
                    check_name_addr("From", from.value())?;
                }
                from.typed().map_err(|_| Malformed::BadValue {
                    header: "From",
                    reason: "URI does not parse",
                })?;
            }
            Header::Contact(contact) if strict => {
                let value = contact.value().trim();
                if value != "*" {
                    for part in split_top_level(value, ',') {
                        check_name_addr("Contact", part)?;
                    }
                }
            }
            _ => {}
        }
    }

    // Via: present; every hop well formed; the top one readable by rsipstack.
    let vias = values(headers, |h| matches!(h, Header::Via(_)));
    if vias.is_empty() {
        return Err(Malformed::Missing { header: "Via" });
    }
    for value in &vias {
        for hop in split_top_level(value, ',') {
            check_via_hop(hop)?;
        }
    }
    if let Some(Header::Via(top)) = headers.iter().find(|h| matches!(h, Header::Via(_))) {
        top.typed().map_err(|_| Malformed::BadValue {
            header: "Via",
            reason: "top Via cannot be read",
        })?;
    }

    content_length(headers, body_len)
}

/// Content-Length: optional (UDP), once, decimal, equal to the body.
fn content_length(headers: &rsipstack::sip::Headers, body_len: usize) -> Result<(), Malformed> {
    let lengths = values(headers, |h| matches!(h, Header::ContentLength(_)));
    match lengths.as_slice() {
        [] => {}
        [value] => {
            let declared = parse_decimal(value).ok_or(Malformed::BadValue {
                header: "Content-Length",
                reason: "not a decimal number",
            })?;
            if usize::try_from(declared).ok() != Some(body_len) {
                return Err(Malformed::ContentLength {
                    declared,
                    actual: body_len,
                });
            }
        }
        many => {
            return Err(Malformed::Duplicate {
                header: "Content-Length",
                count: many.len(),
            })
        }
    }
    Ok(())
}

fn values(headers: &rsipstack::sip::Headers, pick: impl Fn(&Header) -> bool) -> Vec<&str> {
    headers
        .iter()
        .filter(|h| pick(h))
        .map(|h| h.value())
        .collect()
}

fn exactly_one<'h>(
    headers: &'h rsipstack::sip::Headers,
    header: &'static str,
    pick: impl Fn(&Header) -> bool,
) -> Result<&'h str, Malformed> {
    match values(headers, pick).as_slice() {
        [] => Err(Malformed::Missing { header }),
        [value] => {
            // A comma outside quotes and <> means several values in one line.
            if header != "Call-ID" && split_top_level(value, ',').count() > 1 {
                return Err(Malformed::Duplicate { header, count: 2 });
            }
            Ok(value)
        }
        many => Err(Malformed::Duplicate {
            header,
            count: many.len(),
        }),
    }
}

/// Digits only (leading zeros allowed), at most 2^64-1.
fn parse_decimal(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// Splits at `sep` where it is not inside a quoted string or `<...>`.
fn split_top_level(value: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if in_quotes {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            '<' => in_angle = true,
            '>' => in_angle = false,
            c if c == sep && !in_angle => {
                parts.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter()
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Checks a To/From/Contact value: balanced quotes, a quoted or token-only
/// display name, no whitespace inside `<>`, an addr-spec without `?headers`,
/// and no empty parameters.
fn check_name_addr(header: &'static str, value: &str) -> Result<(), Malformed> {
    let bad = |reason| Err(Malformed::BadValue { header, reason });
    let value = value.trim();
    if value.is_empty() {
        return bad("empty value");
    }
    let params = if let Some(rest) = value.strip_prefix('"') {
        // Quoted display name, then <addr-spec>.
        let mut escaped = false;
        let mut close = None;
        for (i, c) in rest.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            return bad("unterminated quoted display name");
        };
        let after = rest[close + 1..].trim_start();
        if !after.starts_with('<') {
            return bad("quoted display name not followed by <URI>");
        }
        angle_uri(header, after)?
    } else if let Some(open) = value.find('<') {
        // Unquoted: tokens only. Non-ASCII letters are let through (some
        // SBCs send `Müller <sip:..>`); ASCII separators such as the comma
        // of `Bell, Alexander` are not (RFC 4475 baddn).
        let display = &value[..open];
        if !display
            .split_whitespace()
            .all(|word| word.chars().all(|c| is_token_char(c) || !c.is_ascii()))
        {
            return bad("display name with non-token characters is not quoted");
        }
        angle_uri(header, &value[open..])?
    } else {
        // addr-spec: the URI ends at the first `;`, which starts header params.
        let (uri, params) = value.split_once(';').unwrap_or((value, ""));
        let uri = uri.trim();
        if uri.contains('?') || uri.contains(',') || uri.contains('"') {
            return bad("URI with headers or commas must be enclosed in <>");
        }
        if uri.chars().any(char::is_whitespace) {
            return bad("whitespace inside URI");
        }
        if params.is_empty() {
            return Ok(());
        }
        return check_params(header, params);
    };
    match params.trim() {
        "" => Ok(()),
        p => match p.strip_prefix(';') {
            Some(p) => check_params(header, p),
            None => bad("unexpected text after >"),
        },
    }
}

/// Checks `<uri>` at the start of `s` and returns what follows `>`.
fn angle_uri<'a>(header: &'static str, s: &'a str) -> Result<&'a str, Malformed> {
    let bad = |reason| Malformed::BadValue { header, reason };
    let inner = s.strip_prefix('<').ok_or(bad("expected <"))?;
    let close = inner.find('>').ok_or(bad("unterminated <URI>"))?;
    let uri = &inner[..close];
    if uri.is_empty() || uri.chars().any(char::is_whitespace) {
        return Err(bad("empty URI or whitespace inside <>"));
    }
    Ok(&inner[close + 1..])
}

/// `a=b;c;d = e`: no empty parameter, names are tokens.
fn check_params(header: &'static str, params: &str) -> Result<(), Malformed> {
    for param in split_top_level(params, ';') {
        let name = param.split('=').next().unwrap_or("").trim();
        if name.is_empty() {
            return Err(Malformed::BadValue {
                header,
                reason: "empty parameter",
            });
        }
        if !name.chars().all(is_token_char) {
            return Err(Malformed::BadValue {
                header,
                reason: "parameter name is not a token",
            });
        }
    }
    Ok(())
}

/// One `via-parm`: `SIP / 2.0 / transport sent-by *(; param)`.
fn check_via_hop(hop: &str) -> Result<(), Malformed> {
    let bad = |reason| {
        Err(Malformed::BadValue {
            header: "Via",
            reason,
        })
    };
    let (sent, params) = hop.split_once(';').unwrap_or((hop, ""));
    let mut slashes = sent.splitn(3, '/');
    let (Some(name), Some(version), Some(rest)) = (slashes.next(), slashes.next(), slashes.next())
    else {
        return bad("expected SIP/2.0/<transport> <host>");
    };
    if !name.trim().eq_ignore_ascii_case("SIP") {
        return bad("protocol is not SIP");
    }
    if version.trim() != "2.0" {
        return Err(Malformed::Version {
            field: "Via",
            found: version.trim().to_owned(),
        });
    }
    let mut words = rest.split_whitespace();
    let (Some(transport), Some(_sent_by), None) = (words.next(), words.next(), words.next()) else {
        return bad("expected <transport> <host[:port]>");
    };
    if !transport.chars().all(is_token_char) {
        return bad("transport is not a token");
    }
    if params.is_empty() && hop.contains(';') {
        return bad("empty parameter");
    }
    if hop.contains(';') {
        for param in params.split(';') {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let name = name.trim();
            if name.is_empty() {
                return bad("empty parameter");
            }
            if name.eq_ignore_ascii_case("branch") && value.trim() == "z9hG4bK" {
                return bad("branch is the bare RFC 3261 magic cookie");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &str) -> String {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag=1\r\n\
             To: <sip:bob@example.com>\r\n\
             Call-ID: abc@192.0.2.1\r\n\
             CSeq: 1 INVITE\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn a_plain_invite_passes() {
        assert!(parse(request("").as_bytes()).is_ok());
    }

    #[test]
    fn status_codes() {
        let cases = [
            ("Require: 100rel, foo\r\n", 420),
            ("Require: timer\r\n", 420),
            ("Supported: timer\r\n", 0),
            ("Accept: text/plain\r\n", 406),
            ("Accept: application/sdp, text/plain\r\n", 0),
            ("Max-Forwards: 1\r\n", 400),
            ("To: <sip:carol@example.com>\r\n", 400),
        ];
        for (extra, status) in cases {
            let result = parse(request(extra).as_bytes());
            match result {
                Ok(_) => assert_eq!(status, 0, "{extra:?} passed"),
                Err(e) => assert_eq!(response_status(&e), status, "{extra:?}: {e}"),
            }
        }
    }

    #[test]
    fn name_addr_rules() {
        for ok in [
            "<sip:a@b>",
            "sip:a@b;tag=1",
            "\"A \\\"B\\\"\" <sip:a@b>;tag=x",
            "Joe Bloggs <sip:a@b>",
            "caller<sip:a@b>",
            "Jürgen Müller <sip:a@b>",
        ] {
            assert_eq!(check_name_addr("To", ok), Ok(()), "{ok}");
        }
        for bad in [
            "\"Mr. J. User <sip:a@b>",
            "Bell, Alexander <sip:a@b>",
            "< sip:a@b >",
            "sip:a@b?Route=%3Csip:c%3E",
            "\"Joe\" <sip:a@b>;;;;",
            "<sip:a@b",
            "",
        ] {
            assert!(check_name_addr("To", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_are_not_dropped_for_cosmetic_faults() {
        let raw = "SIP/2.0 200 OK\r\n\
                   Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\r\n\
                   From: \"Alice\" <sip:alice@example.com>;tag=1\r\n\
                   To: <sip:bob@example.com>;tag=2\r\n\
                   Call-ID: abc@192.0.2.1\r\n\
                   CSeq: 1 INVITE\r\n\
                   Contact: Bob (desk), ext 12 <sip:bob@192.0.2.9>\r\n\
                   Content-Length: 0\r\n\r\n";
        assert!(parse(raw.as_bytes()).is_ok());
        let request = request("Contact: Bob (desk), ext 12 <sip:bob@192.0.2.9>\r\n");
        assert!(parse(request.as_bytes()).is_err());
    }

    #[test]
    fn via_rules() {
        assert_eq!(
            check_via_hop("SIP / 2.0 / UDP host;branch=z9hG4bKx"),
            Ok(())
        );
        assert_eq!(check_via_hop("SIP/2.0/UNKNOWN host"), Ok(()));
        assert!(matches!(
            check_via_hop("SIP/7.0/UDP host"),
            Err(Malformed::Version { .. })
        ));
        assert!(check_via_hop("SIP/2.0/UDP host;branch=z9hG4bK").is_err());
        assert!(check_via_hop("SIP/2.0/UDP host;;").is_err());
        assert!(check_via_hop("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn start_line_rules() {
        assert_eq!(check_start_line(b"OPTIONS sip:a@b SIP/2.0\r\n"), Ok(()));
        assert_eq!(check_start_line(b"SIP/2.0 100 \r\n"), Ok(()));
        assert!(check_start_line(b"OPTIONS sip:a@b SIP/2.0 \r\n").is_err());
        assert!(check_start_line(b"INVITE <sip:a@b> SIP/2.0\r\n").is_err());
        assert!(check_start_line(b"INVITE  sip:a@b SIP/2.0\r\n").is_err());
        assert_eq!(check_start_line(b"SIP/2.0 200 It is fine\r\n"), Ok(()));
    }

    #[test]
    fn split_respects_quotes_and_brackets() {
        let parts: Vec<_> = split_top_level("\"a,b\" <sip:x;y=1,2>, <sip:z>", ',').collect();
        assert_eq!(parts, ["\"a,b\" <sip:x;y=1,2>", " <sip:z>"]);
    }
}
