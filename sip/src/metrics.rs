//! The sip crate's Prometheus metrics: names and HELP texts in one place.
//!
//! The receive loop counts into plain atomics ([`crate::SipCounters`]); it
//! never calls the `metrics` facade. Whoever owns the endpoint copies a
//! snapshot into the facade now and then with [`export`] (the engine does
//! it once a second), so the cost per message stays one relaxed add.
//! Names are registered without `_total`; the exporter adds it to counters.

use crate::endpoint::SipCountersSnapshot;

/// SIP messages that could not be parsed or failed validation (counter;
/// label `kind`: unparseable, request, response).
pub const MESSAGES_MALFORMED: &str = "dialcast_sip_messages_malformed";
/// New inbound INVITEs refused with 503 because the inbound queue was full (counter).
pub const INBOUND_OVERFLOW: &str = "dialcast_sip_inbound_overflow";
/// SIP messages the socket refused to send (counter).
pub const SEND_FAILURES: &str = "dialcast_sip_send_failures";
/// Messages of calls resent by their retransmission timers (counter).
pub const RETRANSMISSIONS: &str = "dialcast_sip_retransmissions";
/// Call events dropped because the call's owner did not read them (counter).
pub const EVENTS_DROPPED: &str = "dialcast_sip_events_dropped";

/// Gives every metric of this crate its HELP text.
pub fn describe() {
    use metrics::describe_counter;
    describe_counter!(
        MESSAGES_MALFORMED,
        "SIP messages dropped or rejected as malformed, by kind (unparseable, request, response)."
    );
    describe_counter!(
        INBOUND_OVERFLOW,
        "New inbound INVITEs refused with 503 because the inbound call queue was full."
    );
    describe_counter!(
        RETRANSMISSIONS,
        "SIP requests and final responses of calls resent by their retransmission timers."
    );
    describe_counter!(SEND_FAILURES, "SIP messages the socket refused to send.");
    describe_counter!(
        EVENTS_DROPPED,
        "SIP call events dropped because the call's owner did not read them."
    );
}

/// Sets the facade's counters to the endpoint's totals (`absolute`: the
/// endpoint's atomics are the truth; calling this twice adds nothing).
pub fn export(snapshot: &SipCountersSnapshot) {
    use metrics::counter;
    counter!(MESSAGES_MALFORMED, "kind" => "unparseable").absolute(snapshot.unparseable);
    counter!(MESSAGES_MALFORMED, "kind" => "request").absolute(snapshot.malformed_requests);
    counter!(MESSAGES_MALFORMED, "kind" => "response").absolute(snapshot.malformed_responses);
    counter!(INBOUND_OVERFLOW).absolute(snapshot.inbound_overflow);
    counter!(SEND_FAILURES).absolute(snapshot.send_failures);
    counter!(EVENTS_DROPPED).absolute(snapshot.events_dropped);
    counter!(RETRANSMISSIONS).absolute(snapshot.retransmissions);
}
