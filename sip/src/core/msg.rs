//! SIP messages as the core sees them: incoming ones parsed by rsipstack's parser
//! and reduced to the fields transactions and dialogs match on ([`Incoming`]),
//! outgoing ones written straight to text ([`RequestBuilder`], [`response`]).
//!
//! Writing messages as text instead of building rsipstack's typed structures and
//! serialising them saves most of the allocations per message; the parser is
//! rsipstack's (about 2 µs for a 200 OK with SDP on this machine).

use rsipstack::sip::{Header, Method, SipMessage};

/// The parts of an incoming message the core needs.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub kind: Kind,
    /// Top Via header value (for echoing in responses).
    pub vias: Vec<String>,
    pub branch: String,
    pub call_id: String,
    pub from: String,
    pub from_tag: String,
    pub to: String,
    pub to_tag: Option<String>,
    pub cseq: u32,
    pub cseq_method: Method,
    /// URI of the first Contact, without angle brackets or header params.
    pub contact: Option<String>,
    /// Record-Route values in order.
    pub record_route: Vec<String>,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// The digest challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate).
    pub challenge: Option<Header>,
    pub body: Vec<u8>,
}

/// The raw fields a reader collected, before [`Incoming::assemble`].
pub(crate) struct Fields {
    pub kind: Kind,
    pub vias: Vec<String>,
    pub call_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cseq: Option<String>,
    pub contact: Option<String>,
    pub record_route: Vec<String>,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub challenge: Option<Header>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Request { method: Method, uri: String },
    Response { code: u16 },
}

/// Why an incoming message cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("missing or malformed {0} header")]
    Header(&'static str),
}

impl Incoming {
    /// Reduces a parsed message. The message must already have passed
    /// `crate::validate` (one each of the mandatory headers).
    pub fn from_message(msg: SipMessage) -> Result<Incoming, ParseError> {
        let (kind, headers, body) = match msg {
            SipMessage::Request(req) => (
                Kind::Request {
                    method: req.method,
                    uri: req.uri.to_string(),
                },
                req.headers,
                req.body,
            ),
            SipMessage::Response(resp) => (
                Kind::Response {
                    code: resp.status_code.code(),
                },
                resp.headers,
                resp.body,
            ),
        };
        let mut vias = Vec::new();
        let mut call_id = None;
        let mut from = None;
        let mut to = None;
        let mut cseq = None;
        let mut contact = None;
        let mut record_route = Vec::new();
        let mut content_type = None;
        let mut retry_after = None;
        let mut challenge = None;
        for header in headers.iter() {
            match header {
                Header::Via(v) => {
                    // A Via line may carry several comma-separated hops.
                    vias.extend(split_list(v.value()).map(str::to_string));
                }
                Header::CallId(v) => call_id = Some(v.value().trim().to_string()),
                Header::From(v) => from = Some(v.value().trim().to_string()),
                Header::To(v) => to = Some(v.value().trim().to_string()),
                Header::CSeq(v) => cseq = Some(v.value().trim().to_string()),
                Header::Contact(v) if contact.is_none() => contact = Some(v.value().to_string()),
                Header::RecordRoute(v) => {
                    record_route.extend(split_list(v.value()).map(str::to_string))
                }
                Header::ContentType(v) => {
                    content_type = Some(v.value().trim().to_ascii_lowercase())
                }
                Header::RetryAfter(v) => retry_after = Some(v.value().to_string()),
                Header::WwwAuthenticate(_) | Header::ProxyAuthenticate(_)
                    if challenge.is_none() =>
                {
                    challenge = Some(header.clone())
                }
                _ => {}
            }
        }
        Incoming::assemble(Fields {
            kind,
            vias,
            call_id,
            from,
            to,
            cseq,
            contact: contact.as_deref().and_then(uri_of).map(str::to_string),
            record_route,
            content_type,
            retry_after,
            challenge,
            body,
        })
    }

    /// Checks that the mandatory fields are there and readable, and derives
    /// the branch, tags and CSeq parts (shared by both readers).
    pub(crate) fn assemble(f: Fields) -> Result<Incoming, ParseError> {
        let top_via = f.vias.first().ok_or(ParseError::Header("Via"))?;
        let branch = param(top_via, "branch").unwrap_or_default().to_string();
        let from = f.from.ok_or(ParseError::Header("From"))?;
        let to = f.to.ok_or(ParseError::Header("To"))?;
        let cseq = f.cseq.ok_or(ParseError::Header("CSeq"))?;
        let (num, method) = cseq
            .split_once(char::is_whitespace)
            .ok_or(ParseError::Header("CSeq"))?;
        let cseq_num: u32 = trim(num).parse().map_err(|_| ParseError::Header("CSeq"))?;
        let cseq_method = Method::try_from(trim(method)).map_err(|_| ParseError::Header("CSeq"))?;
        Ok(Incoming {
            kind: f.kind,
            branch,
            call_id: f.call_id.ok_or(ParseError::Header("Call-ID"))?,
            from_tag: tag_of(&from).unwrap_or_default().to_string(),
            to_tag: tag_of(&to).map(str::to_string),
            from,
            to,
            vias: f.vias,
            cseq: cseq_num,
            cseq_method,
            contact: f.contact,
            record_route: f.record_route,
            content_type: f.content_type,
            retry_after: f.retry_after,
            challenge: f.challenge,
            body: f.body,
        })
    }

    pub fn has_body(&self) -> bool {
        self.body.iter().any(|b| !b.is_ascii_whitespace())
    }
}

/// `str::trim` with the same result on every input, fast for the ASCII text
/// SIP is made of (`str::trim` tests each edge character for Unicode
/// whitespace; this trims ASCII whitespace first and asks `str::trim` only
/// when what is left starts or ends with a character it might still take).
pub fn trim(s: &str) -> &str {
    let t = s.trim_ascii();
    let plain = |b: u8| b.is_ascii() && b != 0x0B;
    match (t.as_bytes().first(), t.as_bytes().last()) {
        (Some(&first), Some(&last)) if !(plain(first) && plain(last)) => t.trim(),
        _ => t,
    }
}

/// Splits a header value on commas that are not inside quotes or angle
/// brackets (trimmed, empty items skipped), without allocating.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || loop {
        let text = rest?;
        let bytes = text.as_bytes();
        let (mut depth, mut quoted, mut i) = (0i32, false, 0usize);
        let mut end = None;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => depth += 1,
                b'>' if !quoted => depth -= 1,
                b',' if !quoted && depth <= 0 => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = match end {
            Some(i) => {
                rest = Some(&text[i + 1..]);
                trim(&text[..i])
            }
            None => {
                rest = None;
                trim(text)
            }
        };
        if !item.is_empty() {
            return Some(item);
        }
    })
}

/// The value of `;name=value` in the header parameters (after any `<uri>`).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(end) => &value[end + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        trim(k).eq_ignore_ascii_case(name).then(|| trim(v))
    })
}

/// The tag parameter of a From/To value.
pub fn tag_of(value: &str) -> Option<&str> {
    param(value, "tag").filter(|t| !t.is_empty())
}

/// The URI inside a name-addr (`"x" <sip:a@b>;p`) or addr-spec (`sip:a@b;p`).
pub fn uri_of(value: &str) -> Option<&str> {
    let value = trim(value);
    if let (Some(start), Some(end)) = (value.find('<'), value.find('>')) {
        return (start < end).then(|| trim(&value[start + 1..end]));
    }
    // addr-spec: parameters after ';' belong to the header, not the URI.
    Some(trim(value.split(';').next().unwrap_or(value)))
}

/// A From/To value with a tag added (or kept when it has one).
pub fn with_tag(value: &str, tag: &str) -> String {
    if tag_of(value).is_some() {
        value.to_string()
    } else {
        format!("{value};tag={tag}")
    }
}

/// Random token for tags and branches (alphanumeric).
pub fn token(len: usize) -> String {
    let mut out = String::with_capacity(len);
    push_token(&mut out, len);
    out
}

/// Appends `len` random alphanumeric characters: nine from each random u64
/// (2^64 holds 62^9 about 1,366 times, so the remainder makes no character
/// more than 0.08 % likelier than another), instead of one range draw per
/// character.
fn push_token(out: &mut String, len: usize) {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const RADIX: u64 = CHARS.len() as u64;
    let mut rng = rand::rng();
    let mut left = len;
    while left > 0 {
        let mut bits: u64 = rng.random();
        for _ in 0..left.min(9) {
            out.push(char::from(CHARS[(bits % RADIX) as usize]));
            bits /= RADIX;
        }
        left = left.saturating_sub(9);
    }
}

/// A new RFC 3261 branch (`z9hG4bK` magic cookie).
pub fn new_branch() -> String {
    let mut branch = String::with_capacity(23);
    branch.push_str("z9hG4bK");
    push_token(&mut branch, 16);
    branch
}

/// The method as it appears on the wire.
pub fn method_name(method: &Method) -> &'static str {
    match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    }
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for d in &digits[i..] {
        out.push(char::from(*d));
    }
}

/// Builds a request as text, piece by piece (plain appends: the `format!`
/// machinery and the intermediate strings it needs were a fifth of the
/// instructions of a call at 2,000 calls/s).
pub struct RequestBuilder {
    text: String,
}

impl RequestBuilder {
    pub fn new(method: Method, uri: &str) -> Self {
        let mut text = String::with_capacity(1024);
        text.push_str(method_name(&method));
        text.push(' ');
        text.push_str(uri);
        text.push_str(" SIP/2.0\r\n");
        RequestBuilder { text }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
        self
    }

    /// `Via: SIP/2.0/<transport> <local>;branch=<branch>;rport`.
    pub fn via(mut self, transport: &str, local: &str, branch: &str) -> Self {
        push_via(&mut self.text, transport, local, branch);
        self
    }

    /// A From or To header: `value`, with `;tag=<tag>` added when a tag is
    /// given and the value has none.
    pub fn party(mut self, name: &str, value: &str, tag: Option<&str>) -> Self {
        push_party(&mut self.text, name, value, tag);
        self
    }

    /// Header lines already written as text (each ending in CRLF).
    pub fn raw(mut self, lines: &str) -> Self {
        self.text.push_str(lines);
        self
    }

    /// `CSeq: <number> <method>`.
    pub fn cseq(mut self, number: u32, method: &Method) -> Self {
        self.text.push_str("CSeq: ");
        push_decimal(&mut self.text, u64::from(number));
        self.text.push(' ');
        self.text.push_str(method_name(method));
        self.text.push_str("\r\n");
        self
    }

    pub fn body(self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        finish(self.text, content_type, body)
    }
}

fn push_via(text: &mut String, transport: &str, local: &str, branch: &str) {
    text.push_str("Via: SIP/2.0/");
    text.push_str(transport);
    text.push(' ');
    text.push_str(local);
    text.push_str(";branch=");
    text.push_str(branch);
    text.push_str(";rport\r\n");
}

fn push_party(text: &mut String, name: &str, value: &str, tag: Option<&str>) {
    text.push_str(name);
    text.push_str(": ");
    text.push_str(value);
    if let Some(tag) = tag.filter(|_| tag_of(value).is_none()) {
        text.push_str(";tag=");
        text.push_str(tag);
    }
    text.push_str("\r\n");
}

/// Content-Type (when there is a body), Content-Length, the blank line and
/// the body.
fn finish(mut text: String, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    if let Some(ct) = content_type.filter(|_| !body.is_empty()) {
        text.push_str("Content-Type: ");
        text.push_str(ct);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: ");
    push_decimal(&mut text, body.len() as u64);
    text.push_str("\r\n\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A response to `req` as text: its Via, From, To (with our tag when given and
/// the request's To has none), Call-ID and CSeq, plus `extra` headers and a body.
pub fn response(
    req: &Incoming,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &[(&str, &str)],
    content_type: Option<&str>,
    body: &[u8],
) -> Vec<u8> {
    let mut text = String::with_capacity(768 + body.len());
    text.push_str("SIP/2.0 ");
    push_decimal(&mut text, u64::from(code));
    text.push(' ');
    text.push_str(reason);
    text.push_str("\r\n");
    for via in &req.vias {
        text.push_str("Via: ");
        text.push_str(via);
        text.push_str("\r\n");
    }
    push_party(&mut text, "From", &req.from, None);
    push_party(&mut text, "To", &req.to, to_tag.filter(|_| code != 100));
    text.push_str("Call-ID: ");
    text.push_str(&req.call_id);
    text.push_str("\r\nCSeq: ");
    push_decimal(&mut text, u64::from(req.cseq));
    text.push(' ');
    text.push_str(method_name(&req.cseq_method));
    text.push_str("\r\n");
    for (name, value) in extra {
        text.push_str(name);
        text.push_str(": ");
        text.push_str(value);
        text.push_str("\r\n");
    }
    finish(text, content_type, body)
}

/// The standard reason phrase for the codes we send.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_tags() {
        assert_eq!(tag_of("<sip:a@b>;tag=123"), Some("123"));
        assert_eq!(tag_of("\"x;tag=no\" <sip:a@b;tag=no>"), None);
        assert_eq!(tag_of("sip:a@b;tag=9"), Some("9"));
        assert_eq!(
            param("SIP/2.0/UDP 1.2.3.4:5060;rport;branch=z9hG4bKx", "branch"),
            Some("z9hG4bKx")
        );
        assert_eq!(with_tag("<sip:a@b>", "t"), "<sip:a@b>;tag=t");
        assert_eq!(with_tag("<sip:a@b>;tag=u", "t"), "<sip:a@b>;tag=u");
    }

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a b ",
            "\t<sip:a@b>\r\n",
            "\u{b}x\u{b}",
            " \u{a0}x\u{2003} ",
            "\u{b}",
            "é ",
            " \u{85}",
            "x\u{b} ",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    #[test]
    fn tokens_use_every_character_evenly() {
        let mut counts = std::collections::HashMap::new();
        for _ in 0..2_000 {
            for c in token(31).chars() {
                assert!(c.is_ascii_alphanumeric());
                *counts.entry(c).or_insert(0u32) += 1;
            }
        }
        // 62,000 characters: about 1,000 each; all 62 seen, none far off.
        assert_eq!(counts.len(), 62);
        assert!(
            counts.values().all(|n| (800..1200).contains(n)),
            "{counts:?}"
        );
    }

    #[test]
    fn decimals_methods_and_branches() {
        for n in [0u64, 7, 10, 486, 65_535, u64::from(u32::MAX), u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for m in [
            Method::Ack,
            Method::Bye,
            Method::Invite,
            Method::PRack,
            Method::Update,
        ] {
            assert_eq!(method_name(&m), m.to_string());
        }
        let b = new_branch();
        assert!(b.starts_with("z9hG4bK") && b.len() == 23);
        assert!(b[7..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn uris_and_lists() {
        assert_eq!(
            uri_of("\"A, B\" <sip:a@b;lr>;expires=3"),
            Some("sip:a@b;lr")
        );
        assert_eq!(uri_of("sip:a@b:5060;expires=3"), Some("sip:a@b:5060"));
        let list: Vec<&str> = split_list("<sip:p1;lr>, \"x,y\" <sip:p2;lr>").collect();
        assert_eq!(list, vec!["<sip:p1;lr>", "\"x,y\" <sip:p2;lr>"]);
    }

    #[test]
    fn builds_and_reparses_a_request() {
        let bytes = RequestBuilder::new(Method::Options, "sip:a@127.0.0.1")
            .header("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport")
            .header("From", "<sip:me@127.0.0.1>;tag=1")
            .header("To", "<sip:a@127.0.0.1>")
            .header("Call-ID", "c1")
            .header("CSeq", "1 OPTIONS")
            .header("Max-Forwards", "70")
            .body(None, b"");
        let msg = SipMessage::try_from(bytes.as_slice()).expect("our request parses");
        let view = Incoming::from_message(msg).expect("complete");
        assert_eq!(view.branch, "z9hG4bKabc");
        assert_eq!(view.cseq_method, Method::Options);
        assert_eq!(view.from_tag, "1");
        assert_eq!(view.to_tag, None);
        let resp = response(
            &view,
            200,
            "OK",
            Some("srv"),
            &[("Allow", "INVITE")],
            None,
            b"",
        );
        let msg = SipMessage::try_from(resp.as_slice()).expect("our response parses");
        let view = Incoming::from_message(msg).expect("complete");
        assert_eq!(view.to_tag.as_deref(), Some("srv"));
        assert!(matches!(view.kind, Kind::Response { code: 200 }));
    }
}
