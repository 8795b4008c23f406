//! Cutting a TCP byte stream into SIP messages (RFC 3261 §18.3): a message ends
//! after its header block and Content-Length bytes of body; CRLFs between
//! messages are keep-alives (RFC 5626) and skipped.

/// Why the stream cannot be framed (the connection is closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("header block longer than {0} bytes")]
    TooLarge(usize),
    #[error("missing or malformed Content-Length on a stream transport")]
    ContentLength,
}

/// Accumulates bytes and yields complete messages.
pub struct StreamFramer {
    buf: Vec<u8>,
    max: usize,
}

impl StreamFramer {
    pub fn new(max: usize) -> Self {
        StreamFramer {
            buf: Vec::new(),
            max,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let skip = self
            .buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > self.max {
                return Err(FramingError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let head = &self.buf[..end];
        let length = content_length(head).ok_or(FramingError::ContentLength)?;
        let total = end + 4 + length;
        if total > self.max {
            return Err(FramingError::TooLarge(self.max));
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(frame))
    }
}

/// The Content-Length (or compact `l`) value of a header block.
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        (name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l"))
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut f = StreamFramer::new(65535);
        f.push(b"\r\n\r\n");
        f.push(&MSG[..10]);
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&MSG[10..]);
        f.push(MSG);
        assert_eq!(f.next_frame(), Ok(Some(MSG.to_vec())));
        assert_eq!(f.next_frame(), Ok(Some(MSG.to_vec())));
        assert_eq!(f.next_frame(), Ok(None));
    }

    #[test]
    fn compact_form_and_missing_length() {
        let mut f = StreamFramer::new(65535);
        f.push(b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
        assert!(f.next_frame().is_ok_and(|m| m.is_some()));
        f.push(b"BYE sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::ContentLength));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut f = StreamFramer::new(64);
        f.push(&[b'a'; 100]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge(64)));
    }
}
