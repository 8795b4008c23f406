//! RTP fixed header (RFC 3550 §5.1): a pure parser over borrowed bytes and a
//! writer into a caller-owned buffer.
//!
//! Owns nothing but the wire format. Parsing never allocates and never panics,
//! whatever the input: every length is checked before it is used, so the
//! function is safe to call on raw datagrams from the network (and is the
//! entry point of the `rtp_parse` fuzz target).
//!
//! We parse the header ourselves rather than taking `rtc-rtp`: we need only
//! the fixed header, CSRC skip, extension skip and padding, and a borrowed
//! view keeps the receive path free of allocation.

/// Size of the fixed RTP header without CSRCs or extension.
pub const RTP_HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("packet of {len} bytes is shorter than the 12-byte RTP header")]
    TooShort { len: usize },
    #[error("RTP version {version}, expected 2")]
    BadVersion { version: u8 },
    #[error("CSRC list of {count} entries runs past the end of the packet")]
    TruncatedCsrc { count: u8 },
    #[error("header extension runs past the end of the packet")]
    TruncatedExtension,
    #[error("padding length {padding} does not fit the packet")]
    BadPadding { padding: u8 },
    #[error("payload type {payload_type} is in the RTCP range (RFC 5761 §4)")]
    LooksLikeRtcp { payload_type: u8 },
}

/// A parsed RTP header borrowing its payload from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeaderView<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    /// Profile-defined extension id and its data, when the X bit is set.
    pub extension: Option<(u16, &'a [u8])>,
    /// Number of padding bytes removed from the end (0 when P is clear).
    pub padding: u8,
    /// The payload, with CSRCs, extension and padding removed.
    pub payload: &'a [u8],
}

/// The SSRC of what looks like an RTP packet (version 2, at least a fixed
/// header long), without parsing the rest: enough to tell which call a
/// datagram on a shared socket belongs to.
pub fn peek_ssrc(buf: &[u8]) -> Option<u32> {
    match buf {
        [b0, _, _, _, _, _, _, _, a, b, c, d, ..] if b0 >> 6 == 2 => {
            Some(u32::from_be_bytes([*a, *b, *c, *d]))
        }
        _ => None,
    }
}

/// Parse an RTP packet. Rejects anything that is not version 2 or whose
/// lengths (CSRC list, extension, padding) do not fit the datagram.
pub fn parse_rtp(buf: &[u8]) -> Result<RtpHeaderView<'_>, RtpError> {
    if buf.len() < RTP_HEADER_LEN {
        return Err(RtpError::TooShort { len: buf.len() });
    }
    let b0 = buf[0];
    let b1 = buf[1];
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion { version });
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0f;
    let marker = b1 & 0x80 != 0;
    let payload_type = b1 & 0x7f;
    // RTCP SR/RR/SDES/BYE/APP (200..=204) seen with the marker bit folded in.
    if (72..=76).contains(&payload_type) {
        return Err(RtpError::LooksLikeRtcp { payload_type });
    }
    let sequence = u16::from_be_bytes([buf[2], buf[3]]);
    let timestamp = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);

    let mut offset = RTP_HEADER_LEN + usize::from(csrc_count) * 4;
    if offset > buf.len() {
        return Err(RtpError::TruncatedCsrc { count: csrc_count });
    }
    let mut extension = None;
    if has_extension {
        let ext_head = buf
            .get(offset..offset + 4)
            .ok_or(RtpError::TruncatedExtension)?;
        let profile = u16::from_be_bytes([ext_head[0], ext_head[1]]);
        let words = usize::from(u16::from_be_bytes([ext_head[2], ext_head[3]]));
        let start = offset + 4;
        let end = start + words * 4;
        let data = buf.get(start..end).ok_or(RtpError::TruncatedExtension)?;
        extension = Some((profile, data));
        offset = end;
    }
    let mut end = buf.len();
    let mut padding = 0;
    if has_padding {
        padding = buf[end - 1];
        let pad = usize::from(padding);
        if pad == 0 || pad > end - offset {
            return Err(RtpError::BadPadding { padding });
        }
        end -= pad;
    }
    Ok(RtpHeaderView {
        marker,
        payload_type,
        sequence,
        timestamp,
        ssrc,
        csrc_count,
        extension,
        padding,
        payload: &buf[offset..end],
    })
}

/// The fields we set on packets we send (no CSRC, no extension, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Write the 12-byte header followed by `payload` into `out`; returns the
    /// packet length, or `None` when `out` is too small.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        let len = RTP_HEADER_LEN + payload.len();
        let out = out.get_mut(..len)?;
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7f);
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[RTP_HEADER_LEN..].copy_from_slice(payload);
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn peek_ssrc_reads_version_2_headers_only() {
        let mut p = [0u8; 12];
        p[0] = 0x80;
        p[8..12].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        assert_eq!(peek_ssrc(&p), Some(0xDEAD_BEEF));
        assert_eq!(peek_ssrc(&p[..11]), None);
        p[0] = 0x40;
        assert_eq!(peek_ssrc(&p), None);
    }

    /// Build a packet with every optional part, independently of `RtpHeader::write`.
    fn build(
        h: &RtpHeader,
        csrcs: &[u32],
        ext: Option<(u16, &[u8])>,
        payload: &[u8],
        padding: u8,
    ) -> Vec<u8> {
        let mut v = Vec::new();
        let b0 = 0x80
            | if padding > 0 { 0x20 } else { 0 }
            | if ext.is_some() { 0x10 } else { 0 }
            | csrcs.len() as u8;
        v.push(b0);
        v.push((u8::from(h.marker) << 7) | h.payload_type);
        v.extend_from_slice(&h.sequence.to_be_bytes());
        v.extend_from_slice(&h.timestamp.to_be_bytes());
        v.extend_from_slice(&h.ssrc.to_be_bytes());
        for c in csrcs {
            v.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = ext {
            v.extend_from_slice(&profile.to_be_bytes());
            v.extend_from_slice(&((data.len() / 4) as u16).to_be_bytes());
            v.extend_from_slice(data);
        }
        v.extend_from_slice(payload);
        if padding > 0 {
            v.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
            v.push(padding);
        }
        v
    }

    fn pt() -> impl Strategy<Value = u8> {
        (0u8..128).prop_filter("not RTCP", |p| !(72..=76).contains(p))
    }

    proptest! {
        #[test]
        fn write_then_parse_round_trips(
            marker: bool, payload_type in pt(), sequence: u16, timestamp: u32, ssrc: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let h = RtpHeader { marker, payload_type, sequence, timestamp, ssrc };
            let mut buf = [0u8; 400];
            let len = h.write(&payload, &mut buf).expect("fits");
            let v = parse_rtp(&buf[..len]).expect("valid");
            prop_assert_eq!(v.marker, marker);
            prop_assert_eq!(v.payload_type, payload_type);
            prop_assert_eq!(v.sequence, sequence);
            prop_assert_eq!(v.timestamp, timestamp);
            prop_assert_eq!(v.ssrc, ssrc);
            prop_assert_eq!(v.payload, &payload[..]);
        }

        #[test]
        fn parses_csrc_extension_padding(
            marker: bool, payload_type in pt(), sequence: u16, timestamp: u32, ssrc: u32,
            csrcs in proptest::collection::vec(any::<u32>(), 0..16),
            ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..5).prop_map(|w| {
                let mut d = w; d.resize(d.len() * 4, 7); d }))),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            padding in 0u8..20,
        ) {
            let h = RtpHeader { marker, payload_type, sequence, timestamp, ssrc };
            let pkt = build(&h, &csrcs, ext.as_ref().map(|(p, d)| (*p, &d[..])), &payload, padding);
            let v = parse_rtp(&pkt).expect("valid");
            prop_assert_eq!(v.csrc_count as usize, csrcs.len());
            prop_assert_eq!(v.extension, ext.as_ref().map(|(p, d)| (*p, &d[..])));
            prop_assert_eq!(v.padding, padding);
            prop_assert_eq!(v.payload, &payload[..]);
            prop_assert_eq!((v.sequence, v.timestamp, v.ssrc), (sequence, timestamp, ssrc));
        }

        #[test]
        fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_rtp(&data);
        }
    }

    fn good() -> Vec<u8> {
        let h = RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        };
        build(&h, &[], None, &[1, 2, 3, 4], 0)
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        let mut p = good();
        p[0] = 0x40;
        assert_eq!(parse_rtp(&p), Err(RtpError::BadVersion { version: 1 }));
        let mut p = good();
        p[0] = 0x80 | 0x03; // 3 CSRCs = 12 bytes, only 4 present
        assert_eq!(parse_rtp(&p), Err(RtpError::TruncatedCsrc { count: 3 }));
        let mut p = good();
        p[0] = 0x90; // extension flag, but 4-byte payload claims 0x0304 words
        assert_eq!(parse_rtp(&p), Err(RtpError::TruncatedExtension));
        let mut p = good();
        p[0] = 0xa0;
        *p.last_mut().expect("non-empty") = 0; // padding count 0
        assert_eq!(parse_rtp(&p), Err(RtpError::BadPadding { padding: 0 }));
        let mut p = good();
        p[0] = 0xa0;
        *p.last_mut().expect("non-empty") = 5; // more than the 4 payload bytes
        assert_eq!(parse_rtp(&p), Err(RtpError::BadPadding { padding: 5 }));
        let mut p = good();
        p[1] = 200; // RTCP SR
        assert_eq!(
            parse_rtp(&p),
            Err(RtpError::LooksLikeRtcp { payload_type: 72 })
        );
    }

    #[test]
    fn write_refuses_small_buffer() {
        let h = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence: 0,
            timestamp: 0,
            ssrc: 0,
        };
        assert_eq!(h.write(&[0; 160], &mut [0; 100]), None);
    }
}
