//! The interpreter: one [`Run`] per call, a pure state machine. The engine
//! feeds it [`Event`]s and carries out the [`Action`]s it polls; the run
//! itself does no I/O and reads no clock (timers are actions and events).
//!
//! ```text
//!             Answered                      PlaybackFinished
//!  Ringing ─────────────► run steps ◄──────────────────────── Playing
//!                          │   ▲   ▲        TimerFired(id)
//!                          │   │   └───────────────────────── Pausing
//!                          │   │  option block / give up
//!                          │   └──────────────────────────┐
//!                          ├──► Playing, Pausing          │
//!                          ├──► Menu::Prompting ──Dtmf───►┤ (StopPlayback first)
//!                          │        │ PlaybackFinished    │
//!                          │        ▼ (StartTimer)        │
//!                          │    Menu::Waiting ──Dtmf─────►┤
//!                          │        │ TimerFired(id)      │
//!                          │        └── no input ────────►┘ retries left: back to
//!                          │                                Menu::Prompting
//!                          ├──► Gather::Prompting ──Dtmf──► Gather::Waiting (digits so far)
//!                          │        │ PlaybackFinished (first-digit timer)  │ Dtmf: inter-digit
//!                          │        ▼                                      │ timer, terminator or
//!                          │    Gather::Waiting ── max digits / timeout ───┘ max digits: Output,
//!                          │        └── none or too few: reprompt while      then block
//!                          │            retries last, else no_input block
//!                          ├──► [prompt] ──► Action::Forward ──► Forwarding
//!                          │        ForwardResult: Connected ──► Bridged (until RemoteHangup)
//!                          │                       Failed / Closed ──► failed / closed block
//!                          └──► end of steps or hangup: Hangup, Finished ─► Ended
//!  Ringing ── MachineAnswered ──► the `voicemail` block instead of the steps
//!  any state ── RemoteHangup ──► Finished ─► Ended
//! ```
//!
//! "Run steps" executes steps that need no waiting (success point, output,
//! branch, a say step whose value cannot be spoken) until one does. Blocks
//! never run themselves (checked at load), so this always ends.
//!
//! The protocol with the engine is documented on [`Run`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::fields::LANGUAGE_FIELD;
use crate::script::{BlockId, Gather, Menu, Step, Test, MAIN};
use crate::speak::{self, Amount, SayOptions};
use crate::template::{RenderError, RenderedMessage};
use crate::{ClipRef, RecordFields, Script, SpeakError};

/// The block a script runs for a person who calls back
/// ([`Run::start_inbound`]); without it, inbound calls run the main steps.
pub const INBOUND_BLOCK: &str = "inbound";

/// The block a script runs on an answering machine after its beep
/// ([`Event::MachineAnswered`]); without it, the engine hangs up on machines.
pub const VOICEMAIL_BLOCK: &str = "voicemail";

/// How a forward to the call centre went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The call centre answered; the two legs are bridged.
    Connected,
    /// The call centre did not answer, was busy or failed.
    Failed,
    /// Outside opening hours, or forwarding is paused for the script.
    Closed,
}

/// Something that happened on the call.
///
/// The enum is `#[non_exhaustive]` so events can be added without breaking
/// the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The callee answered; the run starts speaking.
    Answered,
    /// The clips of the last [`Action::Play`] have all been sent.
    PlaybackFinished,
    /// The timer started with this id has expired.
    TimerFired {
        /// The id from [`Action::StartTimer`].
        id: u32,
    },
    /// A DTMF key: `0`-`9`, `*`, `#` (others count as invalid in a menu).
    Dtmf(char),
    /// The callee hung up.
    RemoteHangup,
    /// Instead of [`Event::Answered`]: an answering machine answered and
    /// its beep has ended (or it went quiet); the run speaks the
    /// [`VOICEMAIL_BLOCK`] block instead of the steps (nothing if the script
    /// has none: it hangs up).
    MachineAnswered,
    /// The outcome of [`Action::Forward`].
    ForwardResult(ForwardOutcome),
}

/// Something the engine should do.
///
/// Match with a `_` arm: the enum is `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Play these clips in order, then send one [`Event::PlaybackFinished`].
    Play(Vec<ClipRef>),
    /// Stop the current playback (the caller pressed a key in a menu).
    StopPlayback,
    /// Send [`Event::TimerFired`] with `id` after `ms` milliseconds.
    StartTimer {
        /// Echoed in the event.
        id: u32,
        /// Delay in milliseconds.
        ms: u32,
    },
    /// The core of the message has been heard (emitted at most once).
    SuccessPoint,
    /// A result for the record (`CUSTOMRESULTS_CUSTOM_n`).
    Output {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Something the engine should log; the run carries on.
    Warning(String),
    /// Connect the callee to the call centre (if open); answer with one
    /// [`Event::ForwardResult`]. After `Connected` the run waits for the
    /// end of the call ([`Event::RemoteHangup`]).
    Forward,
    /// Queue a text message from this template for the record (carry on
    /// at once; sending is the messaging adapters' job).
    QueueSms {
        /// The template's name.
        template: String,
        /// The template filled in for the record in the run's language, or
        /// why it could not be (a field it needs is blank): the engine
        /// records such a message as failed, with the reason.
        message: Result<RenderedMessage, RenderError>,
    },
    /// Hang up the call.
    Hangup,
    /// The run is over; nothing more will come.
    Finished,
}

/// One call's progress through a script: a pure state machine driven by
/// [`Run::handle`] and drained with [`Run::poll_action`].
///
/// The protocol with the engine:
/// - Nothing is emitted before [`Event::Answered`].
/// - After [`Action::Play`] the engine plays the clips in order and sends
///   **one** [`Event::PlaybackFinished`] when the last one has been sent.
/// - After [`Action::StopPlayback`] the engine drops what is still queued and
///   sends **no** `PlaybackFinished` for the playback it stopped (if one was
///   already on its way, it discards it).
/// - [`Action::StartTimer`] asks for one [`Event::TimerFired`] with the same
///   id after `ms` milliseconds. Timers are never cancelled; a run ignores a
///   timer whose id it no longer waits for.
/// - DTMF outside a menu is ignored by the run (the engine still records
///   the keys for the results).
/// - Events after [`Action::Finished`] are ignored.
/// - A `RemoteHangup` ends the run with [`Action::Finished`] alone (no
///   `Hangup`); a success point not yet reached is not reached.
/// - At the end of the steps, or at a `hangup` step, the run emits
///   [`Action::Hangup`] then [`Action::Finished`].
#[derive(Debug)]
pub struct Run {
    script: Arc<Script>,
    /// The fields the script reads, trimmed; blank ones left out.
    values: BTreeMap<String, String>,
    language: String,
    language_warning: Option<String>,
    actions: VecDeque<Action>,
    stack: Vec<Frame>,
    state: State,
    last_timer: u32,
    success: bool,
    forwarded: bool,
}

/// Where a block is being run: the next step to take.
#[derive(Clone, Copy, Debug)]
struct Frame {
    block: BlockId,
    next: usize,
}

#[derive(Debug)]
enum State {
    /// Not answered yet.
    Ringing,
    /// Waiting for the playback of a play or say step.
    Playing,
    /// Waiting for the pause timer.
    Pausing { timer: u32 },
    /// In a menu.
    Menu(MenuState),
    /// Collecting digits.
    Gather(GatherState),
    /// Playing the prompt before a forward.
    ForwardPrompting,
    /// Waiting for [`Event::ForwardResult`].
    Forwarding { at: (BlockId, usize) },
    /// Connected to the call centre: waiting for the end of the call.
    Bridged,
    /// Finished has been emitted.
    Ended,
}

#[derive(Debug)]
struct MenuState {
    /// The menu step: block and index.
    at: (BlockId, usize),
    /// Invalid keys and time-outs so far.
    failures: u32,
    phase: MenuPhase,
}

#[derive(Debug)]
enum MenuPhase {
    /// The prompt (maybe after a reprompt) is playing; a key barges in.
    Prompting,
    /// The prompt has played; waiting for a key until the timer fires.
    Waiting { timer: u32 },
}

#[derive(Debug)]
struct GatherState {
    /// The gather step: block and index.
    at: (BlockId, usize),
    /// Failed entries so far.
    failures: u32,
    digits: String,
    phase: GatherPhase,
}

#[derive(Debug)]
enum GatherPhase {
    /// The prompt is playing; a key barges in.
    Prompting,
    /// Waiting for the next key until the timer fires.
    Waiting { timer: u32 },
}

#[derive(Clone, Copy, Debug)]
enum Failure {
    NoInput,
    Invalid,
}

impl Run {
    /// Prepares a run of `script` for `record`. Nothing is emitted until
    /// [`Event::Answered`]. The record's fields are copied; the language is
    /// `PERSON_LANGUAGE` (its primary subtag, any case) when the script has
    /// it, else the script's default language.
    pub fn start(script: Arc<Script>, record: &dyn RecordFields) -> Run {
        Self::start_at(script, record, MAIN)
    }

    /// Prepares a run for a person who called back: the block named
    /// [`INBOUND_BLOCK`] when the script has one, else the main steps.
    /// Otherwise as [`Run::start`].
    pub fn start_inbound(script: Arc<Script>, record: &dyn RecordFields) -> Run {
        let block = script
            .blocks
            .iter()
            .position(|b| b.name == INBOUND_BLOCK)
            .unwrap_or(MAIN);
        Self::start_at(script, record, block)
    }

    fn start_at(script: Arc<Script>, record: &dyn RecordFields, block: usize) -> Run {
        let values: BTreeMap<String, String> = script
            .fields
            .iter()
            .filter_map(|f| {
                let v = record.field(f)?.trim();
                (!v.is_empty()).then(|| (f.clone(), v.to_string()))
            })
            .collect();
        let (language, language_warning) = choose_language(&script, values.get(LANGUAGE_FIELD));
        Run {
            script,
            values,
            language,
            language_warning,
            actions: VecDeque::new(),
            stack: vec![Frame { block, next: 0 }],
            state: State::Ringing,
            last_timer: 0,
            success: false,
            forwarded: false,
        }
    }

    /// Feeds one event.
    pub fn handle(&mut self, event: Event) {
        let state = std::mem::replace(&mut self.state, State::Ended);
        match (state, event) {
            (State::Ended, _) => {}
            (_, Event::RemoteHangup) => self.end(),
            (State::Ringing, Event::Answered) => {
                if let Some(w) = self.language_warning.take() {
                    self.actions.push_back(Action::Warning(w));
                }
                self.advance();
            }
            (State::Ringing, Event::MachineAnswered) => {
                let voicemail = self
                    .script
                    .blocks
                    .iter()
                    .position(|b| b.name == VOICEMAIL_BLOCK);
                match voicemail {
                    Some(block) if block != MAIN => {
                        self.stack = vec![Frame { block, next: 0 }];
                        self.advance();
                    }
                    _ => self.hang_up(),
                }
            }
            (State::Playing, Event::PlaybackFinished) => self.advance(),
            (State::Gather(gather), event) => self.gather_event(gather, event),
            (State::ForwardPrompting, Event::PlaybackFinished) => {
                self.actions.push_back(Action::Forward);
                let at = self.current_step();
                self.state = State::Forwarding { at };
            }
            (State::Forwarding { at }, Event::ForwardResult(outcome)) => {
                self.forward_result(at, outcome)
            }
            (State::Pausing { timer }, Event::TimerFired { id }) if id == timer => self.advance(),
            (State::Menu(menu), event) => self.menu_event(menu, event),
            (state, _) => self.state = state,
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The language this run speaks.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// Whether a success point has been passed.
    pub fn success_reached(&self) -> bool {
        self.success
    }

    /// Whether the run is waiting for keys (in a menu or a gather step): the
    /// engine listens for in-band DTMF only then.
    pub fn wants_keys(&self) -> bool {
        matches!(self.state, State::Menu(_) | State::Gather(_))
    }

    /// Whether the call centre answered a forward.
    pub fn forwarded(&self) -> bool {
        self.forwarded
    }

    /// Whether the run has ended ([`Action::Finished`] has been queued).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    fn clip(&self, name: &str) -> ClipRef {
        ClipRef::new(self.language.as_str(), name)
    }

    fn timer(&mut self, ms: u32) -> u32 {
        self.last_timer = self.last_timer.wrapping_add(1).max(1);
        self.actions.push_back(Action::StartTimer {
            id: self.last_timer,
            ms,
        });
        self.last_timer
    }

    fn end(&mut self) {
        self.stack.clear();
        self.state = State::Ended;
        self.actions.push_back(Action::Finished);
    }

    fn hang_up(&mut self) {
        self.actions.push_back(Action::Hangup);
        self.end();
    }

    /// `steps[3]` or `blocks.paid[1]`, for warnings.
    fn place(&self, block: BlockId, index: usize) -> String {
        let name = self
            .script
            .blocks
            .get(block)
            .map_or("?", |b| b.name.as_str());
        if block == MAIN {
            format!("steps[{}]", index + 1)
        } else {
            format!("blocks.{name}[{}]", index + 1)
        }
    }

    /// Runs steps until one has to wait for an event, or the script ends.
    fn advance(&mut self) {
        let script = Arc::clone(&self.script);
        loop {
            let Some(frame) = self.stack.last_mut() else {
                self.hang_up();
                return;
            };
            let at = (frame.block, frame.next);
            let Some(step) = script.blocks.get(at.0).and_then(|b| b.steps.get(at.1)) else {
                self.stack.pop();
                continue;
            };
            frame.next += 1;
            match step {
                Step::Play { prompt } => {
                    self.actions
                        .push_back(Action::Play(vec![self.clip(prompt)]));
                    self.state = State::Playing;
                    return;
                }
                Step::Say {
                    field,
                    kind,
                    currency_field,
                    with_year,
                } => {
                    let options = SayOptions {
                        currency: currency_field
                            .as_ref()
                            .and_then(|c| self.values.get(c))
                            .map(String::as_str),
                        with_year: *with_year,
                    };
                    let spoken = match self.values.get(field) {
                        Some(text) => speak::speak(&self.language, *kind, text, options),
                        None => Err(SpeakError::Empty),
                    };
                    match spoken {
                        Ok(segments) if !segments.is_empty() => {
                            let clips = segments.iter().map(|s| self.clip(s)).collect();
                            self.actions.push_back(Action::Play(clips));
                            self.state = State::Playing;
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let place = self.place(at.0, at.1);
                            self.actions.push_back(Action::Warning(format!(
                                "{place}: cannot say {field} as {}: {e}; step skipped",
                                kind.name()
                            )));
                        }
                    }
                }
                Step::Pause { ms } => {
                    let timer = self.timer(*ms);
                    self.state = State::Pausing { timer };
                    return;
                }
                Step::SuccessPoint => {
                    if !self.success {
                        self.success = true;
                        self.actions.push_back(Action::SuccessPoint);
                    }
                }
                Step::Branch {
                    condition,
                    then,
                    otherwise,
                } => {
                    let holds = self.test(at, &condition.field, &condition.test);
                    if let Some(block) = if holds { *then } else { *otherwise } {
                        self.stack.push(Frame { block, next: 0 });
                    }
                }
                Step::Menu(menu) => {
                    self.actions
                        .push_back(Action::Play(vec![self.clip(&menu.prompt)]));
                    self.state = State::Menu(MenuState {
                        at,
                        failures: 0,
                        phase: MenuPhase::Prompting,
                    });
                    return;
                }
                Step::Output { key, value } => self.actions.push_back(Action::Output {
                    key: key.clone(),
                    value: value.clone(),
                }),
                Step::Hangup => {
                    self.hang_up();
                    return;
                }
                Step::Gather(gather) => {
                    self.actions
                        .push_back(Action::Play(vec![self.clip(&gather.prompt)]));
                    self.state = State::Gather(GatherState {
                        at,
                        failures: 0,
                        digits: String::new(),
                        phase: GatherPhase::Prompting,
                    });
                    return;
                }
                Step::Forward { prompt, .. } => {
                    match prompt {
                        Some(prompt) => {
                            self.actions
                                .push_back(Action::Play(vec![self.clip(prompt)]));
                            self.state = State::ForwardPrompting;
                        }
                        None => {
                            self.actions.push_back(Action::Forward);
                            self.state = State::Forwarding { at };
                        }
                    }
                    return;
                }
                Step::Sms { template } => {
                    let message = match self.script.templates.get(template) {
                        Some(t) => t.render(&self.language, &self.values),
                        // Validation makes every sms step name a template.
                        None => Err(RenderError::MissingFields {
                            template: template.clone(),
                            fields: Vec::new(),
                        }),
                    };
                    self.actions.push_back(Action::QueueSms {
                        template: template.clone(),
                        message,
                    })
                }
            }
        }
    }

    /// The step last taken (the one the run waits in).
    fn current_step(&self) -> (BlockId, usize) {
        self.stack
            .last()
            .map_or((MAIN, 0), |f| (f.block, f.next.saturating_sub(1)))
    }

    fn forward_result(&mut self, at: (BlockId, usize), outcome: ForwardOutcome) {
        let (failed, closed) = match self.script.blocks.get(at.0).and_then(|b| b.steps.get(at.1)) {
            Some(Step::Forward { failed, closed, .. }) => (*failed, *closed),
            _ => (None, None),
        };
        let block = match outcome {
            ForwardOutcome::Connected => {
                self.forwarded = true;
                self.state = State::Bridged;
                return;
            }
            ForwardOutcome::Failed => failed,
            ForwardOutcome::Closed => closed,
        };
        if let Some(block) = block {
            self.stack.push(Frame { block, next: 0 });
        }
        self.advance();
    }

    fn gather_def(&self, at: (BlockId, usize)) -> Option<&Gather> {
        match self.script.blocks.get(at.0)?.steps.get(at.1)? {
            Step::Gather(gather) => Some(gather),
            _ => None,
        }
    }

    fn gather_event(&mut self, mut gather: GatherState, event: Event) {
        let script = Arc::clone(&self.script);
        let Some(def) = script
            .blocks
            .get(gather.at.0)
            .and_then(|b| b.steps.get(gather.at.1))
            .and_then(|s| match s {
                Step::Gather(g) => Some(&**g),
                _ => None,
            })
        else {
            self.advance();
            return;
        };
        match (&gather.phase, event) {
            (GatherPhase::Prompting, Event::PlaybackFinished) => {
                let timer = self.timer(def.first_digit_timeout_ms);
                gather.phase = GatherPhase::Waiting { timer };
                self.state = State::Gather(gather);
            }
            (phase, Event::Dtmf(key)) => {
                if matches!(phase, GatherPhase::Prompting) {
                    self.actions.push_back(Action::StopPlayback);
                }
                if Some(key) == def.terminator {
                    self.gather_done(gather);
                    return;
                }
                if key.is_ascii_digit() || key == '*' || key == '#' {
                    gather.digits.push(key);
                }
                if gather.digits.len() >= def.max_digits as usize {
                    self.gather_done(gather);
                    return;
                }
                let wait = if gather.digits.is_empty() {
                    def.first_digit_timeout_ms
                } else {
                    def.inter_digit_timeout_ms
                };
                let timer = self.timer(wait);
                gather.phase = GatherPhase::Waiting { timer };
                self.state = State::Gather(gather);
            }
            (GatherPhase::Waiting { timer }, Event::TimerFired { id }) if id == *timer => {
                if gather.digits.is_empty() {
                    self.gather_failure(gather, Failure::NoInput);
                } else {
                    self.gather_done(gather);
                }
            }
            _ => self.state = State::Gather(gather),
        }
    }

    /// The entry is complete (terminator, max digits or the inter-digit
    /// timeout): report it, or count it as invalid when too short.
    fn gather_done(&mut self, gather: GatherState) {
        let Some((min, key, then)) = self
            .gather_def(gather.at)
            .map(|g| (g.min_digits, g.key.clone(), g.then))
        else {
            self.advance();
            return;
        };
        if gather.digits.len() < min as usize {
            let failure = if gather.digits.is_empty() {
                Failure::NoInput
            } else {
                Failure::Invalid
            };
            self.gather_failure(gather, failure);
            return;
        }
        self.actions.push_back(Action::Output {
            key,
            value: gather.digits,
        });
        if let Some(block) = then {
            self.stack.push(Frame { block, next: 0 });
        }
        self.advance();
    }

    fn gather_failure(&mut self, mut gather: GatherState, failure: Failure) {
        let script = Arc::clone(&self.script);
        let Some(def) = script
            .blocks
            .get(gather.at.0)
            .and_then(|b| b.steps.get(gather.at.1))
            .and_then(|s| match s {
                Step::Gather(g) => Some(&**g),
                _ => None,
            })
        else {
            self.advance();
            return;
        };
        gather.failures += 1;
        if gather.failures <= def.retries {
            let reprompt = match failure {
                Failure::NoInput => &def.no_input_prompt,
                Failure::Invalid => &def.invalid_prompt,
            };
            let mut clips: Vec<ClipRef> = reprompt.iter().map(|p| self.clip(p)).collect();
            clips.push(self.clip(&def.prompt));
            self.actions.push_back(Action::Play(clips));
            gather.digits.clear();
            gather.phase = GatherPhase::Prompting;
            self.state = State::Gather(gather);
            return;
        }
        if let Some(block) = def.no_input {
            self.stack.push(Frame { block, next: 0 });
        }
        self.advance();
    }

    fn test(&mut self, at: (BlockId, usize), field: &str, test: &Test) -> bool {
        let value = self.values.get(field);
        let compare = |limit: &Amount, above: bool| -> Result<bool, SpeakError> {
            let Some(text) = value else {
                return Ok(false);
            };
            let amount = Amount::parse(text)?;
            Ok(if above {
                amount > *limit
            } else {
                amount < *limit
            })
        };
        let result = match test {
            Test::Equals(expected) => Ok(value.is_some_and(|v| v.eq_ignore_ascii_case(expected))),
            Test::Present => Ok(value.is_some()),
            Test::Empty => Ok(value.is_none()),
            Test::Above(limit) => compare(limit, true),
            Test::Below(limit) => compare(limit, false),
        };
        result.unwrap_or_else(|e| {
            let place = self.place(at.0, at.1);
            self.actions.push_back(Action::Warning(format!(
                "{place}: cannot compare {field} as an amount: {e}; condition taken as false"
            )));
            false
        })
    }

    fn menu_event(&mut self, mut menu: MenuState, event: Event) {
        match (&menu.phase, event) {
            (MenuPhase::Prompting, Event::PlaybackFinished) => {
                let timeout = self.menu_def(menu.at).map_or(0, |m| m.timeout_ms);
                let timer = self.timer(timeout);
                menu.phase = MenuPhase::Waiting { timer };
                self.state = State::Menu(menu);
            }
            (MenuPhase::Prompting, Event::Dtmf(key)) => {
                self.actions.push_back(Action::StopPlayback);
                self.menu_key(menu, key);
            }
            (MenuPhase::Waiting { .. }, Event::Dtmf(key)) => self.menu_key(menu, key),
            (MenuPhase::Waiting { timer }, Event::TimerFired { id }) if id == *timer => {
                self.menu_failure(menu, Failure::NoInput);
            }
            _ => self.state = State::Menu(menu),
        }
    }

    fn menu_def(&self, at: (BlockId, usize)) -> Option<&Menu> {
        match self.script.blocks.get(at.0)?.steps.get(at.1)? {
            Step::Menu(menu) => Some(menu),
            _ => None,
        }
    }

    fn menu_key(&mut self, menu: MenuState, key: char) {
        let option = self
            .menu_def(menu.at)
            .and_then(|m| m.options.get(&key).copied());
        match option {
            Some(block) => {
                self.stack.push(Frame { block, next: 0 });
                self.advance();
            }
            None => self.menu_failure(menu, Failure::Invalid),
        }
    }

    fn menu_failure(&mut self, mut menu: MenuState, failure: Failure) {
        let script = Arc::clone(&self.script);
        let Some(def) = script
            .blocks
            .get(menu.at.0)
            .and_then(|b| b.steps.get(menu.at.1))
            .and_then(|s| match s {
                Step::Menu(m) => Some(m),
                _ => None,
            })
        else {
            self.advance();
            return;
        };
        menu.failures += 1;
        let (reprompt, give_up_block) = match failure {
            Failure::NoInput => (&def.no_input_prompt, def.no_input),
            Failure::Invalid => (&def.invalid_prompt, def.invalid),
        };
        if menu.failures <= def.retries {
            let mut clips: Vec<ClipRef> = reprompt.iter().map(|p| self.clip(p)).collect();
            clips.push(self.clip(&def.prompt));
            self.actions.push_back(Action::Play(clips));
            menu.phase = MenuPhase::Prompting;
            self.state = State::Menu(menu);
            return;
        }
        if let Some(block) = give_up_block {
            self.stack.push(Frame { block, next: 0 });
        }
        self.advance();
    }
}

/// The run's language and, when the record asked for one the script lacks,
/// a warning.
fn choose_language(script: &Script, requested: Option<&String>) -> (String, Option<String>) {
    let default = script.default_language.clone();
    let Some(raw) = requested else {
        return (default, None);
    };
    let primary = raw
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if script.languages.contains(&primary) {
        return (primary, None);
    }
    let warning = format!(
        "{LANGUAGE_FIELD} \"{raw}\" is not one of this script's languages ({}); speaking {default}",
        script.languages.join(", ")
    );
    (default, Some(warning))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::speak::{inventory, ValueKind, SPEAKING_LANGUAGES};
    use crate::template::Channel;
    use crate::AudioCatalog;
    use std::path::PathBuf;

    fn catalog() -> AudioCatalog {
        let mut c = AudioCatalog::new();
        for lang in SPEAKING_LANGUAGES {
            for p in ["a", "b", "c", "q", "noin", "inv"] {
                c.insert(ClipRef::new(*lang, p), PathBuf::from(format!("{p}.wav")));
            }
            for kind in ValueKind::ALL {
                for s in inventory(lang, kind).unwrap() {
                    c.insert(ClipRef::new(*lang, s), PathBuf::new());
                }
            }
        }
        c
    }

    const HEAD: &str = "name = \"t\"\ndefault_language = \"en\"\nlanguages = [\"en\", \"nl\"]\n";

    fn script(body: &str) -> Arc<Script> {
        let source = format!("{HEAD}{body}");
        Arc::new(Script::parse(&source, "t.toml", &catalog()).unwrap_or_else(|e| panic!("{e}")))
    }

    fn record(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn start(body: &str, pairs: &[(&str, &str)]) -> Run {
        Run::start(script(body), &record(pairs))
    }

    fn drain(run: &mut Run) -> Vec<Action> {
        std::iter::from_fn(|| run.poll_action()).collect()
    }

    fn play(names: &[&str]) -> Action {
        play_in("en", names)
    }

    fn play_in(language: &str, names: &[&str]) -> Action {
        Action::Play(names.iter().map(|n| ClipRef::new(language, *n)).collect())
    }

    /// `say("100 and 5")`: the English segments `say/100 say/and say/5`.
    fn say(words: &str) -> Action {
        Action::Play(
            words
                .split_whitespace()
                .map(|w| ClipRef::new("en", format!("say/{w}")))
                .collect(),
        )
    }

    fn output(key: &str, value: &str) -> Action {
        Action::Output {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    fn is_warning(a: &Action) -> bool {
        matches!(a, Action::Warning(_))
    }

    #[test]
    fn a_callback_runs_the_inbound_block_or_else_the_main_steps() {
        let body = r#"steps = [{ step = "play", prompt = "a" }]
            [[blocks.inbound]]
            step = "play"
            prompt = "b"
            [[blocks.inbound]]
            step = "branch"
            field = "CALL_FORWARDING_OPEN"
            equals = "Y"
            then = "open"
            else = "closed"
            [[blocks.open]]
            step = "play"
            prompt = "c"
            [[blocks.closed]]
            step = "play"
            prompt = "q"
            "#;
        let mut run = Run::start_inbound(script(body), &record(&[("CALL_FORWARDING_OPEN", "N")]));
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), vec![play(&["b"])]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), vec![play(&["q"])], "outside opening hours");
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), vec![Action::Hangup, Action::Finished]);

        let mut run = Run::start_inbound(
            script(r#"steps = [{ step = "play", prompt = "a" }]"#),
            &record(&[]),
        );
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), vec![play(&["a"])]);
    }

    #[test]
    fn runs_steps_in_order_and_hangs_up_at_the_end() {
        let mut run = start(
            r#"steps = [
                { step = "play", prompt = "a" },
                { step = "say", field = "INVOICE_AMOUNT_OPEN", as = "amount" },
                { step = "success_point" },
                { step = "output", key = "k", value = "v" },
                { step = "play", prompt = "b" },
            ]"#,
            &[("INVOICE_AMOUNT_OPEN", "105.10")],
        );
        assert_eq!(drain(&mut run), []);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [play(&["a"])]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [say("100 and 5 euros and 10 cents")]);
        assert!(!run.success_reached());
        run.handle(Event::PlaybackFinished);
        assert_eq!(
            drain(&mut run),
            [Action::SuccessPoint, output("k", "v"), play(&["b"])]
        );
        assert!(run.success_reached());
        assert!(!run.is_finished());
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
        assert!(run.is_finished());
        run.handle(Event::PlaybackFinished);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), []);
    }

    #[test]
    fn nothing_happens_before_the_answer() {
        let mut run = start(r#"steps = [{ step = "play", prompt = "a" }]"#, &[]);
        run.handle(Event::PlaybackFinished);
        run.handle(Event::Dtmf('1'));
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
        run.handle(Event::RemoteHangup);
        assert_eq!(drain(&mut run), [Action::Finished]);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), []);
    }

    #[test]
    fn remote_hangup_ends_before_the_success_point() {
        let mut run = start(
            r#"steps = [{ step = "play", prompt = "a" }, { step = "success_point" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::RemoteHangup);
        assert_eq!(drain(&mut run), [Action::Finished]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), []);
        assert!(!run.success_reached());
        assert!(run.is_finished());
    }

    #[test]
    fn hangup_step_stops_the_script() {
        let mut run = start(
            r#"steps = [{ step = "hangup" }, { step = "play", prompt = "a" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
    }

    #[test]
    fn pause_waits_for_its_own_timer() {
        let mut run = start(
            r#"steps = [{ step = "pause", ms = 300 }, { step = "pause", ms = 200 }, { step = "play", prompt = "a" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 300 }]);
        run.handle(Event::PlaybackFinished);
        run.handle(Event::TimerFired { id: 7 });
        assert_eq!(drain(&mut run), []);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 2, ms: 200 }]);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
        run.handle(Event::TimerFired { id: 2 });
        assert_eq!(drain(&mut run), [play(&["a"])]);
    }

    #[test]
    fn success_point_is_emitted_once() {
        let mut run = start(
            r#"steps = [
                { step = "success_point" },
                { step = "branch", field = "PERSON_LANGUAGE", empty = true, then = "again" },
            ]
            [blocks]
            again = [{ step = "success_point" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        assert_eq!(
            drain(&mut run),
            [Action::SuccessPoint, Action::Hangup, Action::Finished]
        );
    }

    #[test]
    fn unspeakable_values_warn_and_are_skipped() {
        let mut run = start(
            r#"steps = [
                { step = "say", field = "INVOICE_AMOUNT_OPEN", as = "amount" },
                { step = "say", field = "INVOICE_DUE_DATE", as = "date" },
                { step = "say", field = "INVOICE_AMOUNT_TOTAL", as = "amount" },
                { step = "play", prompt = "a" },
            ]"#,
            &[
                ("INVOICE_AMOUNT_OPEN", "12,34,56"),
                ("INVOICE_AMOUNT_TOTAL", "5"),
                ("INVOICE_CURRENCY", "CHF"),
            ],
        );
        run.handle(Event::Answered);
        let actions = drain(&mut run);
        assert_eq!(actions.len(), 4, "{actions:?}");
        assert!(actions[..3].iter().all(is_warning));
        let Action::Warning(first) = &actions[0] else {
            unreachable!()
        };
        assert!(
            first.contains("steps[1]") && first.contains("INVOICE_AMOUNT_OPEN"),
            "{first}"
        );
        let Action::Warning(second) = &actions[1] else {
            unreachable!()
        };
        assert!(second.contains("empty"), "{second}");
        let Action::Warning(third) = &actions[2] else {
            unreachable!()
        };
        assert!(third.contains("CHF"), "{third}");
        assert_eq!(actions[3], play(&["a"]));
    }

    #[test]
    fn say_uses_the_currency_and_year_options() {
        let mut run = start(
            r#"steps = [
                { step = "say", field = "INVOICE_AMOUNT_OPEN", as = "amount" },
                { step = "say", field = "INVOICE_DUE_DATE", as = "date", with_year = true },
                { step = "say", field = "CONTACT_PHONE_1", as = "digits" },
            ]"#,
            &[
                ("INVOICE_AMOUNT_OPEN", "1"),
                ("INVOICE_CURRENCY", "usd"),
                ("INVOICE_DUE_DATE", "21-03-2026"),
                ("CONTACT_PHONE_1", "+31 6"),
            ],
        );
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [say("1 dollar")]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [say("the ordinal_21 of month_3 20 26")]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [say("3 1 6")]);
    }

    fn branch_on(test: &str, pairs: &[(&str, &str)]) -> Vec<Action> {
        let mut run = start(
            &format!(
                r#"steps = [{{ step = "branch", field = "INVOICE_AMOUNT_OPEN", {test}, then = "yes", else = "no" }}]
                [blocks]
                yes = [{{ step = "output", key = "r", value = "yes" }}]
                no = [{{ step = "output", key = "r", value = "no" }}]"#
            ),
            pairs,
        );
        run.handle(Event::Answered);
        drain(&mut run)
    }

    #[test]
    fn branches_on_record_fields() {
        let yes = [output("r", "yes"), Action::Hangup, Action::Finished];
        let no = [output("r", "no"), Action::Hangup, Action::Finished];
        let amount = |v| [("INVOICE_AMOUNT_OPEN", v)];
        assert_eq!(branch_on(r#"equals = "ABC""#, &amount(" abc ")), yes);
        assert_eq!(branch_on(r#"equals = "ABC""#, &amount("abd")), no);
        assert_eq!(branch_on(r#"equals = "ABC""#, &[]), no);
        assert_eq!(branch_on("present = true", &amount("1")), yes);
        assert_eq!(branch_on("present = true", &amount("  ")), no);
        assert_eq!(branch_on("empty = true", &[]), yes);
        assert_eq!(branch_on("above = 500", &amount("500,01")), yes);
        assert_eq!(branch_on("above = 500", &amount("500")), no);
        assert_eq!(branch_on(r#"below = "10.5""#, &amount("10.49")), yes);
        assert_eq!(branch_on(r#"below = "10.5""#, &[]), no);
        let bad = branch_on("above = 500", &amount("lots"));
        assert!(is_warning(&bad[0]), "{bad:?}");
        assert_eq!(bad[1..], no);
    }

    #[test]
    fn a_block_continues_after_its_branch() {
        let mut run = start(
            r#"steps = [
                { step = "branch", field = "PERSON_LANGUAGE", empty = true, then = "outer" },
                { step = "play", prompt = "c" },
            ]
            [blocks]
            outer = [{ step = "play", prompt = "a" }, { step = "branch", field = "PERSON_LANGUAGE", empty = true, then = "inner" }]
            inner = [{ step = "play", prompt = "b" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        let mut heard = Vec::new();
        for _ in 0..5 {
            heard.extend(drain(&mut run));
            run.handle(Event::PlaybackFinished);
        }
        assert_eq!(
            heard,
            [
                play(&["a"]),
                play(&["b"]),
                play(&["c"]),
                Action::Hangup,
                Action::Finished
            ]
        );
    }

    const MENU: &str = r##"steps = [
        { step = "menu", prompt = "q", options = { 1 = "one", "#" = "hash" }, timeout_ms = 4000, retries = 1, no_input_prompt = "noin", invalid_prompt = "inv", no_input = "none", invalid = "wrong" },
        { step = "play", prompt = "c" },
    ]
    [blocks]
    one = [{ step = "output", key = "choice", value = "1" }]
    hash = [{ step = "output", key = "choice", value = "#" }]
    none = [{ step = "output", key = "choice", value = "none" }]
    wrong = [{ step = "output", key = "choice", value = "invalid" }]"##;

    #[test]
    fn menu_key_during_the_prompt_barges_in() {
        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [play(&["q"])]);
        run.handle(Event::Dtmf('1'));
        assert_eq!(
            drain(&mut run),
            [Action::StopPlayback, output("choice", "1"), play(&["c"])]
        );
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
    }

    #[test]
    fn menu_key_after_the_prompt() {
        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 4000 }]);
        run.handle(Event::Dtmf('#'));
        assert_eq!(drain(&mut run), [output("choice", "#"), play(&["c"])]);
        // The menu's timer is stale now.
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
    }

    #[test]
    fn menu_no_input_reprompts_then_gives_up() {
        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        drain(&mut run);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), [play(&["noin", "q"])]);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 2, ms: 4000 }]);
        run.handle(Event::TimerFired { id: 2 });
        assert_eq!(drain(&mut run), [output("choice", "none"), play(&["c"])]);
    }

    #[test]
    fn menu_invalid_key_reprompts_then_runs_the_invalid_block() {
        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::Dtmf('7'));
        assert_eq!(drain(&mut run), [Action::StopPlayback, play(&["inv", "q"])]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 4000 }]);
        run.handle(Event::Dtmf('x'));
        assert_eq!(drain(&mut run), [output("choice", "invalid"), play(&["c"])]);
    }

    #[test]
    fn menu_failures_share_one_retry_count_and_default_to_continuing() {
        let mut run = start(
            r#"steps = [
                { step = "menu", prompt = "q", options = { 1 = "one" }, retries = 0 },
                { step = "play", prompt = "c" },
            ]
            [blocks]
            one = []"#,
            &[],
        );
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 5000 }]);
        run.handle(Event::Dtmf('5'));
        assert_eq!(drain(&mut run), [play(&["c"])]);

        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::Dtmf('7'));
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        drain(&mut run);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), [output("choice", "none"), play(&["c"])]);
    }

    #[test]
    fn dtmf_outside_a_menu_is_ignored() {
        let mut run = start(r#"steps = [{ step = "play", prompt = "a" }]"#, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::Dtmf('1'));
        assert_eq!(drain(&mut run), []);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
    }

    #[test]
    fn remote_hangup_in_a_menu() {
        let mut run = start(MENU, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        drain(&mut run);
        run.handle(Event::RemoteHangup);
        assert_eq!(drain(&mut run), [Action::Finished]);
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
    }

    #[test]
    fn language_comes_from_the_record() {
        let body = r#"steps = [{ step = "play", prompt = "a" }]"#;
        for (field, expected, warns) in [
            (None, "en", false),
            (Some("nl"), "nl", false),
            (Some(" NL-be "), "nl", false),
            (Some("nl_NL"), "nl", false),
            (Some("fr"), "en", true),
            (Some(""), "en", false),
        ] {
            let pairs: Vec<(&str, &str)> =
                field.map(|f| ("PERSON_LANGUAGE", f)).into_iter().collect();
            let mut run = start(body, &pairs);
            assert_eq!(run.language(), expected, "{field:?}");
            run.handle(Event::Answered);
            let actions = drain(&mut run);
            assert_eq!(is_warning(&actions[0]), warns, "{field:?}: {actions:?}");
            assert_eq!(actions.last(), Some(&play_in(expected, &["a"])));
        }
    }

    #[test]
    fn dutch_values_use_dutch_segments() {
        let mut run = start(
            r#"steps = [{ step = "say", field = "INVOICE_AMOUNT_OPEN", as = "amount" }]"#,
            &[("PERSON_LANGUAGE", "nl"), ("INVOICE_AMOUNT_OPEN", "25,00")],
        );
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [play_in("nl", &["say/25", "say/euro"])]);
    }

    #[test]
    fn the_run_reads_only_what_the_script_needs() {
        let s =
            script(r#"steps = [{ step = "say", field = "INVOICE_AMOUNT_OPEN", as = "amount" }]"#);
        let fields: Vec<&str> = s.fields().collect();
        assert_eq!(
            fields,
            ["INVOICE_AMOUNT_OPEN", "INVOICE_CURRENCY", "PERSON_LANGUAGE"]
        );
    }
    const GATHER: &str = r##"steps = [
        { step = "gather", prompt = "q", key = "code", min_digits = 2, max_digits = 4, terminator = "#", first_digit_timeout_ms = 4000, inter_digit_timeout_ms = 2000, retries = 1, no_input_prompt = "noin", invalid_prompt = "inv", then = "got", no_input = "none" },
        { step = "play", prompt = "c" },
    ]
    [blocks]
    got = [{ step = "output", key = "choice", value = "entered" }]
    none = [{ step = "output", key = "choice", value = "none" }]"##;

    #[test]
    fn gather_collects_digits_until_the_terminator() {
        let mut run = start(GATHER, &[]);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [play(&["q"])]);
        run.handle(Event::Dtmf('4'));
        assert_eq!(
            drain(&mut run),
            [Action::StopPlayback, Action::StartTimer { id: 1, ms: 2000 }]
        );
        run.handle(Event::Dtmf('2'));
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 2, ms: 2000 }]);
        // The first timer is stale.
        run.handle(Event::TimerFired { id: 1 });
        assert_eq!(drain(&mut run), []);
        run.handle(Event::Dtmf('#'));
        assert_eq!(
            drain(&mut run),
            [
                output("code", "42"),
                output("choice", "entered"),
                play(&["c"])
            ]
        );
    }

    #[test]
    fn gather_ends_at_max_digits_and_at_the_inter_digit_timeout() {
        let mut run = start(GATHER, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 4000 }]);
        for d in ['1', '2', '3'] {
            run.handle(Event::Dtmf(d));
            drain(&mut run);
        }
        run.handle(Event::Dtmf('4'));
        assert_eq!(
            drain(&mut run),
            [
                output("code", "1234"),
                output("choice", "entered"),
                play(&["c"])
            ]
        );

        let mut run = start(GATHER, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        drain(&mut run);
        run.handle(Event::Dtmf('7'));
        run.handle(Event::Dtmf('*'));
        assert_eq!(
            drain(&mut run),
            [
                Action::StartTimer { id: 2, ms: 2000 },
                Action::StartTimer { id: 3, ms: 2000 }
            ]
        );
        run.handle(Event::TimerFired { id: 3 });
        assert_eq!(
            drain(&mut run),
            [
                output("code", "7*"),
                output("choice", "entered"),
                play(&["c"])
            ]
        );
    }

    #[test]
    fn gather_reprompts_on_too_few_digits_then_gives_up_on_no_input() {
        let mut run = start(GATHER, &[]);
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        drain(&mut run);
        run.handle(Event::Dtmf('5'));
        run.handle(Event::Dtmf('#'));
        assert_eq!(
            drain(&mut run),
            [Action::StartTimer { id: 2, ms: 2000 }, play(&["inv", "q"])]
        );
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 3, ms: 4000 }]);
        run.handle(Event::TimerFired { id: 3 });
        assert_eq!(drain(&mut run), [output("choice", "none"), play(&["c"])]);
    }

    #[test]
    fn gather_with_defaults_takes_one_key() {
        let mut run = start(
            r#"steps = [{ step = "gather", prompt = "q", key = "k" }]"#,
            &[],
        );
        run.handle(Event::Answered);
        drain(&mut run);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::StartTimer { id: 1, ms: 5000 }]);
        run.handle(Event::Dtmf('9'));
        assert_eq!(
            drain(&mut run),
            [output("k", "9"), Action::Hangup, Action::Finished]
        );
    }

    const FORWARD: &str = r#"steps = [
        { step = "forward", prompt = "a", failed = "busy", closed = "closed" },
        { step = "play", prompt = "c" },
    ]
    [blocks]
    busy = [{ step = "output", key = "fwd", value = "failed" }]
    closed = [{ step = "output", key = "fwd", value = "closed" }]"#;

    #[test]
    fn forward_plays_its_prompt_then_asks_the_engine() {
        let mut run = start(FORWARD, &[]);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [play(&["a"])]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::Forward]);
        run.handle(Event::ForwardResult(ForwardOutcome::Connected));
        assert_eq!(drain(&mut run), []);
        assert!(run.forwarded());
        run.handle(Event::PlaybackFinished);
        run.handle(Event::Dtmf('1'));
        assert_eq!(drain(&mut run), []);
        run.handle(Event::RemoteHangup);
        assert_eq!(drain(&mut run), [Action::Finished]);
    }

    #[test]
    fn forward_failure_and_closed_run_their_blocks() {
        for (outcome, value) in [
            (ForwardOutcome::Failed, "failed"),
            (ForwardOutcome::Closed, "closed"),
        ] {
            let mut run = start(FORWARD, &[]);
            run.handle(Event::Answered);
            drain(&mut run);
            run.handle(Event::PlaybackFinished);
            drain(&mut run);
            run.handle(Event::ForwardResult(outcome));
            assert_eq!(drain(&mut run), [output("fwd", value), play(&["c"])]);
            assert!(!run.forwarded());
        }
        let mut run = start(r#"steps = [{ step = "forward" }]"#, &[]);
        run.handle(Event::Answered);
        assert_eq!(drain(&mut run), [Action::Forward]);
        run.handle(Event::ForwardResult(ForwardOutcome::Closed));
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
    }

    #[test]
    fn sms_is_queued_filled_in_and_the_script_carries_on() {
        let body = r#"steps = [{ step = "sms", template = "confirmation" }, { step = "play", prompt = "a" }]
            [templates.confirmation]
            channel = "sms"
            text.en = "Thank you {PERSON_FIRST_NAME|}, we expect {INVOICE_AMOUNT_OPEN}."
            text.nl = "Dank u {PERSON_FIRST_NAME|}, wij verwachten {INVOICE_AMOUNT_OPEN}.""#;
        let mut run = start(body, &[("INVOICE_AMOUNT_OPEN", "49.95")]);
        run.handle(Event::Answered);
        let message = RenderedMessage {
            template: "confirmation".to_string(),
            channel: Channel::Sms,
            language: "en".to_string(),
            subject: None,
            text: "Thank you , we expect 49.95.".to_string(),
        };
        assert_eq!(
            drain(&mut run),
            [
                Action::QueueSms {
                    template: "confirmation".to_string(),
                    message: Ok(message),
                },
                play(&["a"])
            ]
        );
        // A field the text needs is blank: the step says why, the call
        // goes on.
        let mut run = start(body, &[]);
        run.handle(Event::Answered);
        assert_eq!(
            drain(&mut run),
            [
                Action::QueueSms {
                    template: "confirmation".to_string(),
                    message: Err(RenderError::MissingFields {
                        template: "confirmation".to_string(),
                        fields: vec!["INVOICE_AMOUNT_OPEN".to_string()],
                    }),
                },
                play(&["a"])
            ]
        );
    }

    #[test]
    fn a_machine_hears_the_voicemail_block_or_is_hung_up_on() {
        let body = r#"steps = [{ step = "play", prompt = "a" }]
            [blocks]
            voicemail = [{ step = "play", prompt = "b" }]"#;
        let mut run = start(body, &[]);
        run.handle(Event::MachineAnswered);
        assert_eq!(drain(&mut run), [play(&["b"])]);
        run.handle(Event::PlaybackFinished);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);

        let mut run = start(r#"steps = [{ step = "play", prompt = "a" }]"#, &[]);
        run.handle(Event::MachineAnswered);
        assert_eq!(drain(&mut run), [Action::Hangup, Action::Finished]);
    }
}
