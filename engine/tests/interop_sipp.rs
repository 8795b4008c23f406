//! SIPp interop suite: `dialcast dial` and `dialcast listen` against SIPp
//! (Debian package `sip-tester`) on 127.0.0.1, one scenario per expected
//! outcome, each in `engine/tests/sipp/` and named for that outcome.
//!
//! Every test checks both sides: SIPp must exit 0 (each call went through
//! its scenario to the end, so dialcast sent what the scenario waits for:
//! ACK, CANCEL, BYE, a verifiable digest, a 200 to a BYE), and dialcast must
//! exit 0 and print the expected JSON outcome. A failure report lists every
//! failed expectation, then SIPp's command, error, call-debug and message
//! logs and dialcast's command, stdout and stderr; the work dir with all of
//! them is kept and named in the report.
//!
//! Run with `cargo test -p dialcast-engine --features interop --test
//! interop_sipp`. SIPp's `play_pcap_audio` sends through a raw socket, so
//! the early-media, DTMF and inbound tests need root (or CAP_NET_RAW on
//! sipp), as on CI.

mod common;

use std::time::Duration;

use common::dialcast::{self, Fields, Run};
use common::ports::Proto;
use common::sipp::{self, Sipp, Transport};
use common::{media, ports, Verdict, Workdir};
use serde_json::Value;

/// The user part of every number we dial.
const CALLEE: &str = "31201234567";
/// RTP ports given to each dialcast (`--rtp-ports`).
const RTP_PORTS: u16 = 10;
/// How long a `dial` may take before the test kills it.
const DIAL_LIMIT: Duration = Duration::from_secs(45);
/// How long SIPp may take to end once dialcast is done (its time-wait is 1 s).
const SIPP_AFTER_DIAL: Duration = Duration::from_secs(20);
/// Digest credentials the auth scenarios verify (see their XML).
const AUTH_USER: &str = "alice";
const AUTH_PASSWORD: &str = "s3cret";
const AUTH_REALM: &str = "dialcast.test";
/// The nonce of uas-407-proxy-digest-then-200.xml.
const NONCE_407: &str = "4e6f6e63652d3430372d6469616c63617374";

/// One outbound call: SIPp (already started) as the callee, `dialcast dial`
/// as the caller.
struct Outbound {
    work: Workdir,
    sipp: Sipp,
    uri: String,
}

impl Outbound {
    fn new(work: Workdir, sipp: Sipp) -> Outbound {
        let uri = format!("sip:{CALLEE}@127.0.0.1:{}", sipp.sip_port);
        Outbound { work, sipp, uri }
    }

    /// Writes a prompt of `millis` ms into the work dir; returns its path.
    fn prompt(&self, millis: u32) -> String {
        let path = self.work.file(&format!("prompt-{millis}ms.wav"));
        media::write_prompt_wav(&path, millis);
        path.display().to_string()
    }

    /// The arguments of a `dial` to SIPp with `extra` options added.
    fn dial_args(&self, extra: &[String]) -> Vec<String> {
        let rtp = ports::block(RTP_PORTS);
        let mut args: Vec<String> = [
            "dial",
            &self.uri,
            "--transport",
            self.sipp.transport.as_arg(),
            "--bind",
            "127.0.0.1:0",
            "--rtp-ports",
            &format!("{rtp}-{}", rtp + RTP_PORTS - 1),
            "--json",
        ]
        .map(String::from)
        .to_vec();
        args.extend_from_slice(extra);
        args
    }

    /// Runs one `dial`, waits for SIPp, and returns a verdict with the checks
    /// every outbound test makes (both sides exited 0), both sides' logs, and
    /// the JSON outcome. Keep `self` (and its work dir) alive until the
    /// verdict is finished: a failing test keeps the work dir for inspection.
    fn run(&mut self, extra: &[String]) -> (Verdict, Value) {
        let args = self.dial_args(extra);
        let run = dialcast::spawn(&self.work, "dial", &args).finish(DIAL_LIMIT);
        let sipp_ended = self.sipp.wait(SIPP_AFTER_DIAL);
        let mut verdict = Verdict::new(self.work.name());
        self.sipp.check_passed(sipp_ended, &mut verdict);
        run.check_exit(&mut verdict);
        let json = run.outcome(&mut verdict);
        attach(&mut verdict, &self.work, &self.sipp, &[&run]);
        (verdict, json)
    }
}

fn attach(verdict: &mut Verdict, work: &Workdir, sipp: &Sipp, runs: &[&Run]) {
    for run in runs {
        run.attach_logs(verdict);
    }
    sipp.attach_logs(verdict);
    verdict.log("work dir (kept)", work.path().display().to_string());
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The checks of a call that SIPp answered and dialcast hung up.
fn expect_answered_hung_up_by_us(verdict: &mut Verdict, json: &Value) {
    let f = Fields::new("dial", json);
    f.expect(verdict, "status", "answered");
    f.expect(verdict, "sip_code", 200);
    f.expect(verdict, "answered", true);
    f.expect(verdict, "hangup_by", "us");
}

/// The checks of a call that got the final response `code` without answer.
fn expect_not_answered(verdict: &mut Verdict, json: &Value, status: &str, code: u16) {
    let f = Fields::new("dial", json);
    f.expect(verdict, "status", status);
    f.expect(verdict, "sip_code", code);
    f.expect(verdict, "answered", false);
    f.number_in(verdict, "talk_ms", 0..=0);
    f.number_in(verdict, "rtp_sent", 0..=0);
}

// ---------------------------------------------------------------------------
// Outbound: dialcast dial -> SIPp UAS

/// SIPp answers and echoes RTP; dialcast plays a 1 s prompt, lingers 500 ms
/// and hangs up, recording the call.
#[test]
fn answered_call_gets_its_rtp_echoed_and_we_hang_up() {
    let work = Workdir::new("echo");
    let sipp = sipp::uas(&work, "uas-200-echo-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let recording = call.work.file("call.wav");
    let extra = strings(&[
        "--prompt",
        &prompt,
        "--record",
        &recording.display().to_string(),
    ]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    let f = Fields::new("dial", &json);
    f.expect(&mut v, "early_media", false);
    f.expect(&mut v, "dtmf", "");
    expect_echo(&mut v, &json);
    // 1000 ms of prompt + 500 ms of linger.
    let talk_ms = f.number_in(&mut v, "talk_ms", 1400..=4000);
    // --record: a stereo WAV (ours left, theirs right) as long as the talk.
    match media::wav_duration_ms(&recording) {
        Ok((channels, millis)) => {
            v.check(channels == 2, || {
                format!("the recording has {channels} channels, expected 2")
            });
            v.check(millis + 300 >= talk_ms && millis <= talk_ms + 1000, || {
                format!("the recording lasts {millis} ms for a talk time of {talk_ms} ms")
            });
        }
        Err(e) => {
            v.fail(format!("--record {}: {e}", recording.display()));
        }
    }
    v.finish();
}

/// The same with one RTP socket for all calls (`--rtp-socket per_thread`):
/// SIPp echoes from its one media port and announces no SSRC, so the echo
/// is recognised as ours by its SSRC; every packet must come back.
#[test]
fn answered_call_with_one_rtp_socket_per_thread_gets_its_rtp_echoed() {
    let work = Workdir::new("echo-per-thread");
    let sipp = sipp::uas(&work, "uas-200-echo-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let extra = strings(&["--prompt", &prompt, "--rtp-socket", "per_thread"]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo(&mut v, &json);
    v.finish();
}

/// Everything dialcast sent was echoed back: on 127.0.0.1 the echo takes
/// well under a millisecond, so only the packets sent in the last moments
/// before the BYE may still be in flight (a margin of 3 packets, 60 ms).
/// A 1 s prompt is 50 packets; silence may follow while lingering.
fn expect_echo(v: &mut Verdict, json: &Value) {
    let f = Fields::new("dial", json);
    let sent = f.number_in(v, "rtp_sent", 50..=100);
    let received = f.number(v, "rtp_received");
    v.check(received + 3 >= sent && received <= sent, || {
        format!("rtp_received {received} should be within 3 packets below rtp_sent {sent}")
    });
}

/// SIPp accepts only PCMA from our PCMU/PCMA offer and echoes the RTP.
#[test]
fn pcma_only_answer_is_used_and_echoed() {
    let work = Workdir::new("pcma");
    let sipp = sipp::uas(&work, "uas-200-pcma-echo-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo(&mut v, &json);
    // Not in the documented minimum of the JSON outcome, but printed today.
    if json.get("codec").is_some() {
        Fields::new("dial", &json).expect(&mut v, "codec", "PCMA");
    }
    v.finish();
}

/// --caller-id: SIPp fails the call unless From and P-Asserted-Identity
/// carry the number.
#[test]
fn caller_id_is_presented_in_from_and_pai() {
    let work = Workdir::new("caller-id");
    let sipp = sipp::uas(&work, "uas-200-caller-id-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let extra = strings(&["--prompt", &prompt, "--caller-id", "0201230000"]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    v.finish();
}

/// SIPp sends its 200 a second time after our ACK; we must ACK it again.
#[test]
fn retransmitted_200_is_acked_again() {
    let work = Workdir::new("re-ack");
    let sipp = sipp::uas(&work, "uas-200-twice-expect-two-acks.xml")
        .no_retransmissions()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    v.finish();
}

#[test]
fn busy_486_is_busy() {
    final_response("uas-486-busy.xml", "busy", 486);
}

#[test]
fn not_found_404_is_invalid_number() {
    final_response("uas-404-not-found.xml", "invalid_number", 404);
}

#[test]
fn decline_603_is_rejected() {
    final_response("uas-603-decline.xml", "rejected", 603);
}

#[test]
fn temporarily_unavailable_480_is_unavailable() {
    final_response("uas-480-unavailable.xml", "unavailable", 480);
}

#[test]
fn request_timeout_408_is_no_answer() {
    final_response("uas-408-request-timeout.xml", "no_answer", 408);
}

#[test]
fn server_error_500_is_failed() {
    final_response("uas-500-server-error.xml", "failed", 500);
}

/// SIPp rings, then ends the INVITE with a final error response; SIPp only
/// passes if dialcast ACKs it.
fn final_response(scenario: &str, status: &str, code: u16) {
    let test = scenario.trim_end_matches(".xml");
    let work = Workdir::new(test);
    let sipp = sipp::uas(&work, scenario).start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_not_answered(&mut v, &json, status, code);
    v.finish();
}

/// SIPp rings and never answers; after `--ring-timeout 2` dialcast sends
/// CANCEL, SIPp answers it with 200 and the INVITE with 487, dialcast ACKs.
#[test]
fn ring_timeout_cancels_and_is_no_answer() {
    let work = Workdir::new("cancel");
    let sipp = sipp::uas(&work, "uas-180-expect-cancel.xml").start();
    let mut call = Outbound::new(work, sipp);
    let (mut v, json) = call.run(&strings(&["--ring-timeout", "2"]));
    expect_not_answered(&mut v, &json, "no_answer", 487);
    Fields::new("dial", &json).number_in(&mut v, "ring_ms", 1900..=4000);
    v.finish();
}

/// SIPp sends 183 with SDP and plays 1 s of PCMU before answering at 1.5 s.
#[test]
fn early_media_before_answer_is_reported() {
    let work = Workdir::new("early-media");
    media::write_pcmu_pcap(&work.file("early-media.pcap"), 1000);
    let sipp = sipp::uas(&work, "uas-183-early-media-then-200.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    let f = Fields::new("dial", &json);
    f.expect(&mut v, "early_media", true);
    // The 50 packets of early media all arrive before the 200.
    f.number_in(&mut v, "rtp_received", 45..=60);
    f.number_in(&mut v, "ring_ms", 1400..=4000);
    v.finish();
}

/// SIPp answers and sends BYE 1 s after the ACK, while a 5 s prompt plays.
#[test]
fn callee_bye_mid_prompt_is_hangup_by_them() {
    let work = Workdir::new("callee-bye");
    let sipp = sipp::uas(&work, "uas-200-bye-after-1s.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(5000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    let f = Fields::new("dial", &json);
    f.expect(&mut v, "status", "answered");
    f.expect(&mut v, "sip_code", 200);
    f.expect(&mut v, "answered", true);
    f.expect(&mut v, "hangup_by", "them");
    f.number_in(&mut v, "talk_ms", 900..=2500);
    // The prompt stopped early: 5 s would be 250 packets.
    f.number_in(&mut v, "rtp_sent", 1..=150);
    v.finish();
}

/// 401 with qop=auth; SIPp's verifyauth checks the second INVITE.
#[test]
fn www_authenticate_401_is_answered_with_verified_digest() {
    let work = Workdir::new("auth-401");
    let sipp = sipp::uas(&work, "uas-401-digest-then-200.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let extra = strings(&[
        "--prompt",
        &prompt,
        "--username",
        AUTH_USER,
        "--password",
        AUTH_PASSWORD,
    ]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    v.finish();
}

/// 407 without qop; SIPp compares the response with the one computed here.
#[test]
fn proxy_authenticate_407_is_answered_with_verified_digest() {
    let work = Workdir::new("auth-407");
    // The digest URI is the Request-URI, which is the URI we dial (RFC 2617
    // section 3.2.2).
    let builder = sipp::uas(&work, "uas-407-proxy-digest-then-200.xml");
    let uri = format!("sip:{CALLEE}@127.0.0.1:{}", builder.sip_port());
    let expected = digest_response(
        AUTH_USER,
        AUTH_REALM,
        AUTH_PASSWORD,
        "INVITE",
        &uri,
        NONCE_407,
    );
    let sipp = builder.set("expected_response", &expected).start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let extra = strings(&[
        "--prompt",
        &prompt,
        "--username",
        AUTH_USER,
        "--password",
        AUTH_PASSWORD,
    ]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    v.finish();
}

/// RFC 2617 digest response without qop: MD5(HA1:nonce:HA2).
fn digest_response(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    md5_hex(&format!("{ha1}:{nonce}:{ha2}"))
}

/// MD5 in lowercase hex, from coreutils' `md5sum` (keeps the suite free of
/// a hashing dependency).
fn md5_hex(text: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run md5sum");
    child
        .stdin
        .take()
        .expect("md5sum's stdin")
        .write_all(text.as_bytes())
        .expect("feed md5sum");
    let output = child.wait_with_output().expect("md5sum's output");
    let hex = String::from_utf8_lossy(&output.stdout);
    hex.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// 20 calls through SIPp dropping 10 % of SIP messages, four at a time:
/// retransmissions must carry every call to an answer and a BYE.
#[test]
fn lossy_udp_recovers_every_call() {
    const CALLS: u32 = 20;
    const PARALLEL: u32 = 4;
    let work = Workdir::new("loss");
    let sipp = sipp::uas(&work, "uas-200-lossy-expect-bye.xml")
        .rtp_echo()
        .calls(CALLS)
        .loss_percent(10)
        // Covers BYE retransmissions at 0.5, 1.5 and 3.5 s after the first.
        .time_wait(Duration::from_secs(5))
        .limit(Duration::from_secs(150))
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let extra = strings(&["--prompt", &prompt, "--linger-ms", "200"]);
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PARALLEL)
            .map(|worker| {
                let call = &call;
                let extra = &extra;
                scope.spawn(move || {
                    (0..CALLS / PARALLEL)
                        .map(|n| {
                            let label = format!("dial-w{worker}-{n}");
                            let args = call.dial_args(extra);
                            dialcast::spawn(&call.work, &label, &args).finish(DIAL_LIMIT)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a dial worker"))
            .collect()
    });
    let sipp_ended = call.sipp.wait(Duration::from_secs(60));
    let mut v = Verdict::new("loss");
    call.sipp.check_passed(sipp_ended, &mut v);
    let mut failed_runs = Vec::new();
    for run in &runs {
        let before = v.failure_count();
        run.check_exit(&mut v);
        let json = run.outcome(&mut v);
        let f = Fields::new(&run.label, &json);
        f.expect(&mut v, "status", "answered");
        f.expect(&mut v, "sip_code", 200);
        f.expect(&mut v, "hangup_by", "us");
        if v.failure_count() > before {
            failed_runs.push(run);
        }
    }
    // Only the logs of the calls that failed (the first few), not all 20.
    failed_runs.truncate(3);
    attach(&mut v, &call.work, &call.sipp, &failed_runs);
    v.finish();
}

/// The answered-and-echoed call over TCP.
#[test]
fn tcp_call_is_answered() {
    let work = Workdir::new("tcp");
    let sipp = sipp::uas(&work, "uas-200-echo-expect-bye.xml")
        .tcp()
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(1000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo(&mut v, &json);
    v.finish();
}

/// SIPp sends the digits 1 5 9 * # as RFC 4733 events on payload type 101
/// (the type dialcast offers) while dialcast lingers after a short prompt.
#[test]
fn rfc4733_digits_from_callee_are_collected() {
    let work = Workdir::new("dtmf");
    media::write_dtmf_pcap(&work.file("dtmf-159star-hash.pcap"), "159*#", 101);
    let sipp = sipp::uas(&work, "uas-200-dtmf-159star-hash.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    // The digits take 2.2 s from 300 ms after the ACK; linger well past them.
    let extra = strings(&["--prompt", &prompt, "--linger-ms", "3500"]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    Fields::new("dial", &json).expect(&mut v, "dtmf", "159*#");
    v.finish();
}

// ---------------------------------------------------------------------------
// Inbound: SIPp UAC -> dialcast listen

/// `dialcast listen --calls 1` with a prompt, called by a SIPp scenario;
/// returns the verdict with both sides' exit checks and logs, and the JSON.
/// The caller keeps `work` alive until the verdict is finished.
fn inbound(
    work: &Workdir,
    scenario: &str,
    prompt_ms: u32,
    transport: Transport,
) -> (Verdict, Value) {
    inbound_with(work, scenario, prompt_ms, transport, &[])
}

/// [`inbound`] with more arguments for `dialcast listen`.
fn inbound_with(
    work: &Workdir,
    scenario: &str,
    prompt_ms: u32,
    transport: Transport,
    extra: &[&str],
) -> (Verdict, Value) {
    let test = work.name();
    media::write_pcmu_pcap(&work.file("caller-audio.pcap"), 1000);
    let prompt = work.file(&format!("prompt-{prompt_ms}ms.wav"));
    media::write_prompt_wav(&prompt, prompt_ms);
    let port = ports::one();
    let rtp = ports::block(RTP_PORTS);
    let args: Vec<String> = [
        "listen",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--rtp-ports",
        &format!("{rtp}-{}", rtp + RTP_PORTS - 1),
        "--prompt",
        &prompt.display().to_string(),
        "--calls",
        "1",
        "--transport",
        transport.as_arg(),
        "--json",
    ]
    .map(String::from)
    .into_iter()
    .chain(extra.iter().map(|a| a.to_string()))
    .collect();
    let mut listen = dialcast::spawn(work, "listen", &args);
    let proto = match transport {
        Transport::Udp => Proto::Udp,
        Transport::Tcp => Proto::Tcp,
    };
    let ready = listen.await_bound(port, proto, Duration::from_secs(10));
    let mut v = Verdict::new(test);
    if !ready {
        let run = listen.finish(Duration::ZERO);
        v.fail(format!(
            "dialcast listen did not bind {proto:?} port {port}"
        ));
        run.attach_logs(&mut v);
        v.finish();
        unreachable!("the verdict failed");
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut builder = sipp::uac(work, scenario, addr);
    if transport == Transport::Tcp {
        builder = builder.tcp();
    }
    let mut sipp = builder.start();
    let sipp_ended = sipp.wait(Duration::from_secs(40));
    let run = listen.finish(Duration::from_secs(10));
    sipp.check_passed(sipp_ended, &mut v);
    run.check_exit(&mut v);
    let outcomes = run.json_lines();
    if outcomes.len() != 1 {
        v.fail(format!(
            "listen printed {} JSON outcomes, expected 1",
            outcomes.len()
        ));
    }
    let json = outcomes.into_iter().next().unwrap_or(Value::Null);
    attach(&mut v, work, &sipp, &[&run]);
    (v, json)
}

/// SIPp calls, sends 1 s of audio and the digits 4 2, and waits for our BYE
/// after the 3 s prompt.
#[test]
fn inbound_call_is_answered_and_we_hang_up() {
    let work = Workdir::new("inbound");
    let (mut v, json) = inbound(
        &work,
        "uac-invite-rtp-dtmf-expect-bye.xml",
        3000,
        Transport::Udp,
    );
    let f = Fields::new("listen", &json);
    f.expect(&mut v, "status", "answered");
    f.expect(&mut v, "sip_code", 200);
    f.expect(&mut v, "hangup_by", "us");
    f.expect(&mut v, "dtmf", "42");
    // 50 packets of audio, then the digits' events.
    f.number_in(&mut v, "rtp_received", 45..=200);
    // 3 s of prompt is 150 packets.
    f.number_in(&mut v, "rtp_sent", 150..=250);
    v.finish();
}

/// The same inbound call answered on one RTP socket for all calls
/// (`--rtp-socket per_thread`): SIPp's audio and RFC 4733 digits reach the
/// call through the demultiplexer.
#[test]
fn inbound_call_with_one_rtp_socket_per_thread_is_answered() {
    let work = Workdir::new("inbound-per-thread");
    let (mut v, json) = inbound_with(
        &work,
        "uac-invite-rtp-dtmf-expect-bye.xml",
        3000,
        Transport::Udp,
        &["--rtp-socket", "per_thread"],
    );
    let f = Fields::new("listen", &json);
    f.expect(&mut v, "status", "answered");
    f.expect(&mut v, "hangup_by", "us");
    f.expect(&mut v, "dtmf", "42");
    f.number_in(&mut v, "rtp_received", 45..=200);
    f.number_in(&mut v, "rtp_sent", 150..=250);
    v.finish();
}

/// The same inbound call over TCP (`listen --transport tcp`, SIPp `-t t1`).
#[test]
fn inbound_tcp_call_is_answered() {
    let work = Workdir::new("inbound-tcp");
    let (mut v, json) = inbound(
        &work,
        "uac-invite-rtp-dtmf-expect-bye.xml",
        3000,
        Transport::Tcp,
    );
    let f = Fields::new("listen", &json);
    f.expect(&mut v, "status", "answered");
    f.expect(&mut v, "hangup_by", "us");
    f.expect(&mut v, "dtmf", "42");
    f.number_in(&mut v, "rtp_received", 45..=200);
    v.finish();
}

/// SIPp calls and hangs up 1 s after its ACK, during a 5 s prompt.
#[test]
fn inbound_caller_bye_mid_prompt_is_hangup_by_them() {
    let work = Workdir::new("inbound-caller-bye");
    let (mut v, json) = inbound(&work, "uac-invite-bye-after-1s.xml", 5000, Transport::Udp);
    let f = Fields::new("listen", &json);
    f.expect(&mut v, "status", "answered");
    f.expect(&mut v, "hangup_by", "them");
    f.number_in(&mut v, "talk_ms", 900..=2500);
    f.number_in(&mut v, "rtp_received", 1..=100);
    f.number_in(&mut v, "rtp_sent", 1..=150);
    v.finish();
}

// ---------------------------------------------------------------------------
// Requests inside an answered outbound call (SIPp sends them as the callee)

/// RTP sent and received within 3 packets of each other, for calls whose
/// RTP SIPp echoes (see [`expect_echo`]) with a prompt of any length.
fn expect_echo_of_any_length(v: &mut Verdict, json: &Value) {
    let f = Fields::new("dial", json);
    let sent = f.number(v, "rtp_sent");
    let received = f.number(v, "rtp_received");
    v.check(sent >= 50, || {
        format!("rtp_sent {sent}: expected at least 1 s of RTP")
    });
    v.check(received + 3 >= sent && received <= sent, || {
        format!("rtp_received {received} should be within 3 packets below rtp_sent {sent}")
    });
}

/// SIPp holds the call with a sendonly re-INVITE 500 ms after the ACK and
/// takes it off hold with a sendrecv one a second later; it fails unless
/// our 200s answer recvonly and then sendrecv (RFC 3264 section 6.1). The
/// 4 s prompt outlasts both; then we hang up.
#[test]
fn reinvite_hold_and_unhold_are_answered_recvonly_then_sendrecv() {
    let work = Workdir::new("hold-unhold");
    let sipp = sipp::uas(&work, "uas-200-reinvite-hold-unhold-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(4000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo_of_any_length(&mut v, &json);
    // On hold (recvonly) we must not send (RFC 3264 section 6.1): of the
    // talk time, about 1 s (at least 800 ms) went without RTP from us.
    let f = Fields::new("dial", &json);
    let talk_ms = f.number_in(&mut v, "talk_ms", 4000..=8000);
    let sent = f.number(&mut v, "rtp_sent");
    v.check(sent * 20 + 800 <= talk_ms, || {
        format!(
            "rtp_sent {sent} ({} ms of RTP) in {talk_ms} ms of talk: RTP went on while on hold",
            sent * 20
        )
    });
    v.finish();
}

/// SIPp sends UPDATE with an SDP offer 500 ms after the ACK and fails unless
/// the 200 carries an SDP answer with audio (RFC 3311 section 5.2).
#[test]
fn update_with_offer_is_answered_with_sdp() {
    let work = Workdir::new("update");
    let sipp = sipp::uas(&work, "uas-200-update-sdp-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(2000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    // The media goes on after the UPDATE: still echoed.
    expect_echo_of_any_length(&mut v, &json);
    v.finish();
}

/// SIPp sends INFO with `application/dtmf-relay` "Signal=7" 500 ms after
/// the ACK and needs a 200; the digit is reported with the call.
#[test]
fn info_dtmf_relay_digit_is_collected() {
    let work = Workdir::new("info-dtmf");
    let sipp = sipp::uas(&work, "uas-200-info-dtmf-7-expect-bye.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(2000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    Fields::new("dial", &json).expect(&mut v, "dtmf", "7");
    v.finish();
}

/// SIPp sends OPTIONS inside the dialog 500 ms after the ACK and needs a
/// 200 (RFC 3261 section 11.2); the call goes on until we hang up.
#[test]
fn in_dialog_options_is_answered_200() {
    let work = Workdir::new("options-in-dialog");
    let sipp = sipp::uas(&work, "uas-200-options-in-dialog-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(2000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo_of_any_length(&mut v, &json);
    v.finish();
}

/// SIPp sends a re-INVITE without SDP 500 ms after the ACK: our 200 must
/// carry an offer (SIPp fails the call without `m=audio`) and SIPp's ACK
/// carries the answer (RFC 3261 section 14.2); the echo goes on.
#[test]
fn offerless_reinvite_gets_our_offer_and_the_ack_answer() {
    let work = Workdir::new("offerless-reinvite");
    let sipp = sipp::uas(&work, "uas-200-offerless-reinvite-expect-bye.xml")
        .rtp_echo()
        .start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(2000);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    expect_echo_of_any_length(&mut v, &json);
    v.finish();
}

/// SIPp answers and sends no RTP; with `--rtp-timeout 2` we hang up about
/// 2 s after the answer, long before the 10 s prompt ends.
#[test]
fn no_rtp_from_callee_ends_the_call_after_rtp_timeout() {
    let work = Workdir::new("rtp-timeout");
    let sipp = sipp::uas(&work, "uas-200-silent-expect-bye.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(10_000);
    let extra = strings(&["--prompt", &prompt, "--rtp-timeout", "2"]);
    let (mut v, json) = call.run(&extra);
    expect_answered_hung_up_by_us(&mut v, &json);
    let f = Fields::new("dial", &json);
    f.expect(&mut v, "cause", "local_hangup");
    f.number_in(&mut v, "talk_ms", 1900..=4000);
    f.number_in(&mut v, "rtp_received", 0..=0);
    // Stopped well before the 500 packets of the prompt.
    f.number_in(&mut v, "rtp_sent", 1..=200);
    v.finish();
}

/// SIPp sends 183 without SDP, then answers after 1 s: progress, but no
/// early media.
#[test]
fn session_progress_without_sdp_is_not_early_media() {
    let work = Workdir::new("183-no-sdp");
    let sipp = sipp::uas(&work, "uas-183-no-sdp-then-200.xml").start();
    let mut call = Outbound::new(work, sipp);
    let prompt = call.prompt(500);
    let (mut v, json) = call.run(&strings(&["--prompt", &prompt]));
    expect_answered_hung_up_by_us(&mut v, &json);
    let f = Fields::new("dial", &json);
    f.expect(&mut v, "early_media", false);
    f.number_in(&mut v, "ring_ms", 900..=4000);
    v.finish();
}

// ---------------------------------------------------------------------------
// Trunk health: dialcast probe -> SIPp UAS (or nothing)

/// How long a `probe` may take before the test kills it.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// Runs `dialcast probe --json` against 127.0.0.1:`port` with `extra`
/// options; returns the run and the JSON line of each probe.
fn probe(work: &Workdir, port: u16, extra: &[&str]) -> (Run, Vec<Value>) {
    let mut args = strings(&[
        "probe",
        &format!("sip:127.0.0.1:{port}"),
        "--bind",
        "127.0.0.1:0",
        "--json",
    ]);
    args.extend(strings(extra));
    let run = dialcast::spawn(work, "probe", &args).finish(PROBE_LIMIT);
    let lines = run.json_lines();
    (run, lines)
}

/// Expects exactly `count` probe lines.
fn expect_probe_lines(v: &mut Verdict, lines: &[Value], count: usize) {
    v.check(lines.len() == count, || {
        format!("probe printed {} JSON lines, expected {count}", lines.len())
    });
}

/// SIPp answers two OPTIONS with 200: the trunk is up after each, and the
/// probe exits 0.
#[test]
fn probe_answered_200_is_up() {
    let work = Workdir::new("probe-200");
    let mut sipp = sipp::uas(&work, "uas-options-200.xml").calls(2).start();
    let (run, lines) = probe(
        &work,
        sipp.sip_port,
        &["--count", "2", "--interval-ms", "200"],
    );
    let sipp_ended = sipp.wait(SIPP_AFTER_DIAL);
    let mut v = Verdict::new(work.name());
    sipp.check_passed(sipp_ended, &mut v);
    run.check_exit(&mut v);
    expect_probe_lines(&mut v, &lines, 2);
    for (n, line) in lines.iter().enumerate() {
        let who = format!("probe {}", n + 1);
        let f = Fields::new(&who, line);
        f.expect(&mut v, "probe", n + 1);
        f.expect(&mut v, "code", 200);
        f.expect(&mut v, "state", "up");
        f.expect(&mut v, "backing_off_ms", Value::Null);
        v.check(line.get("rtt_ms").is_some_and(Value::is_number), || {
            format!(
                "{who}: rtt_ms is {:?}, expected a number",
                line.get("rtt_ms")
            )
        });
    }
    attach(&mut v, &work, &sipp, &[&run]);
    v.finish();
}

/// SIPp answers OPTIONS with 503 and Retry-After: 7: the trunk is up (it
/// answered) but backing off for the 7 s it asked for.
#[test]
fn probe_503_retry_after_backs_off_for_that_long() {
    let work = Workdir::new("probe-503");
    let mut sipp = sipp::uas(&work, "uas-options-503-retry-after-7.xml").start();
    let (run, lines) = probe(&work, sipp.sip_port, &["--count", "1"]);
    let sipp_ended = sipp.wait(SIPP_AFTER_DIAL);
    let mut v = Verdict::new(work.name());
    sipp.check_passed(sipp_ended, &mut v);
    run.check_exit(&mut v);
    expect_probe_lines(&mut v, &lines, 1);
    let line = lines.first().cloned().unwrap_or(Value::Null);
    let f = Fields::new("probe 1", &line);
    f.expect(&mut v, "code", 503);
    f.expect(&mut v, "state", "up");
    f.number_in(&mut v, "backing_off_ms", 6000..=7000);
    attach(&mut v, &work, &sipp, &[&run]);
    v.finish();
}

/// Nothing listens on the port: three unanswered probes (300 ms timeout,
/// 100 ms apart) leave the trunk down, and the probe exits non-zero.
#[test]
fn probe_to_silent_port_is_down() {
    let work = Workdir::new("probe-down");
    let port = ports::one();
    let extra = [
        "--count",
        "3",
        "--interval-ms",
        "100",
        "--timeout-ms",
        "300",
    ];
    let (run, lines) = probe(&work, port, &extra);
    let mut v = Verdict::new(work.name());
    v.check(
        matches!(run.ended, common::Ended::Exited(Some(code)) if code != 0),
        || format!("probe ended {:?}, expected a non-zero exit code", run.ended),
    );
    expect_probe_lines(&mut v, &lines, 3);
    for (n, line) in lines.iter().enumerate() {
        let f = Fields::new("probe", line);
        f.expect(&mut v, "probe", n + 1);
        f.expect(&mut v, "code", Value::Null);
    }
    if let Some(last) = lines.last() {
        Fields::new("last probe", last).expect(&mut v, "state", "down");
    }
    run.attach_logs(&mut v);
    v.log("work dir (kept)", work.path().display().to_string());
    v.finish();
}

// ---------------------------------------------------------------------------
// Inbound: several calls to one dialcast listen

/// `dialcast listen --calls 3` called three times by SIPp (`-m 3`, started
/// 100 ms apart at SIPp's default rate, so they overlap): three JSON lines,
/// each call answered, its own RTP and digits "42" received, and hung up by
/// us after the 3 s prompt.
#[test]
fn listen_answers_three_calls_and_prints_three_outcomes() {
    const CALLS: u32 = 3;
    let work = Workdir::new("listen-3-calls");
    media::write_pcmu_pcap(&work.file("caller-audio.pcap"), 1000);
    let prompt = work.file("prompt-3000ms.wav");
    media::write_prompt_wav(&prompt, 3000);
    let port = ports::one();
    let rtp = ports::block(RTP_PORTS);
    let args = strings(&[
        "listen",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--rtp-ports",
        &format!("{rtp}-{}", rtp + RTP_PORTS - 1),
        "--prompt",
        &prompt.display().to_string(),
        "--calls",
        &CALLS.to_string(),
        "--json",
    ]);
    let mut listen = dialcast::spawn(&work, "listen", &args);
    let mut v = Verdict::new(work.name());
    if !listen.await_bound(port, Proto::Udp, Duration::from_secs(10)) {
        let run = listen.finish(Duration::ZERO);
        v.fail(format!("dialcast listen did not bind UDP port {port}"));
        run.attach_logs(&mut v);
        v.finish();
        unreachable!("the verdict failed");
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut sipp = sipp::uac(&work, "uac-invite-rtp-dtmf-expect-bye.xml", addr)
        .calls(CALLS)
        .start();
    let sipp_ended = sipp.wait(Duration::from_secs(40));
    let run = listen.finish(Duration::from_secs(10));
    sipp.check_passed(sipp_ended, &mut v);
    run.check_exit(&mut v);
    let outcomes = run.json_lines();
    v.check(outcomes.len() == CALLS as usize, || {
        format!(
            "listen printed {} JSON outcomes, expected {CALLS}",
            outcomes.len()
        )
    });
    let mut call_ids = Vec::new();
    for (n, json) in outcomes.iter().enumerate() {
        let who = format!("listen call {}", n + 1);
        let f = Fields::new(&who, json);
        f.expect(&mut v, "status", "answered");
        f.expect(&mut v, "answered", true);
        f.expect(&mut v, "hangup_by", "us");
        f.expect(&mut v, "dtmf", "42");
        f.number_in(&mut v, "rtp_received", 45..=200);
        call_ids.push(json.get("call_id").cloned().unwrap_or(Value::Null));
    }
    call_ids.sort_by_key(Value::to_string);
    call_ids.dedup();
    v.check(call_ids.len() == outcomes.len(), || {
        format!("the outcomes share call ids: {call_ids:?}")
    });
    attach(&mut v, &work, &sipp, &[&run]);
    v.finish();
}
