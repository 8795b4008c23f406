//! Dialcast SIP.
