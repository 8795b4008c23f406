//! Dialcast media: RTP sessions, G.711 codecs, RFC 4733 DTMF, prompt loading and voicelog recording.
//!
//! Knows nothing of SIP or campaigns: it is handed addresses and payload types
//! negotiated elsewhere.
