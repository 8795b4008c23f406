//! Voice scripts: the file format, validation against the available audio and
//! record fields, a pure interpreter (events in, actions out) and speaking
//! values (amounts, numbers, dates, times, digits) from recorded segments.
//!
//! This page is the user documentation of the script format. The examples
//! it refers to are in `scripts/examples/`; the recordings shipped with the
//! crate are in `scripts/audio/`.
//!
//! # Contents
//! - [Using the crate](#using-the-crate)
//! - [Why TOML](#why-toml)
//! - [A script at a glance](#a-script-at-a-glance)
//! - [Reference: the header](#reference-the-header)
//! - [Reference: steps](#reference-steps)
//! - [Reference: blocks](#reference-blocks)
//! - [Message templates](#message-templates)
//! - [Speaking values](#speaking-values)
//! - [Languages](#languages)
//! - [Audio: prompts, segments and your own recordings](#audio-prompts-segments-and-your-own-recordings)
//! - [Errors](#errors)
//! - [Running a script](#running-a-script)
//! - [Answering machines](#answering-machines)
//!
//! # Using the crate
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use dialcast_scripts::{default_audio_root, Action, AudioCatalog, Event, Run, Script};
//!
//! // Once, at start-up: the shipped recordings, then the organisation's own.
//! let catalog = AudioCatalog::from_roots(&[default_audio_root()])?;
//! # let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/payment_reminder.toml");
//! // path: e.g. "scripts/examples/payment_reminder.toml"
//! let script = Arc::new(Script::load(&path, &catalog)?);
//!
//! // Per call.
//! let record: HashMap<String, String> = [
//!     ("INVOICE_AMOUNT_OPEN", "49.95"),
//!     ("INVOICE_DUE_DATE", "2026-03-21"),
//!     ("PERSON_LANGUAGE", "nl"),
//! ]
//! .into_iter()
//! .map(|(k, v)| (k.to_string(), v.to_string()))
//! .collect();
//! let mut run = Run::start(script, &record);
//! run.handle(Event::Answered);
//! while let Some(action) = run.poll_action() {
//!     match action {
//!         Action::Play(clips) => {
//!             // Queue catalog.path(clip) for each clip; when the last one
//!             // has been sent: run.handle(Event::PlaybackFinished)
//!             # let _ = clips;
//!         }
//!         Action::Finished => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(run.language(), "nl");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why TOML
//!
//! Scripts are written by people at the organisation, not only by developers,
//! and they are read by the engine without a human checking every call. The
//! format has to be plain, strict and able to point at mistakes. TOML fits:
//!
//! - **No implicit typing surprises.** In YAML, `no`, `on`, `off` become
//!   booleans in some versions, `1.10` becomes a float and leading zeros turn
//!   numbers octal, so a menu option `0` or a language `no` (Norwegian) can
//!   silently change meaning. In TOML a string is always quoted and a number
//!   is always a number.
//! - **Errors that point at the line.** The TOML parser keeps the position of
//!   every value (`toml::Spanned`), so every error here names file, line and
//!   column, down to the misspelt key.
//! - **Comments**, which JSON lacks, so a script can explain itself.
//! - **One obvious way.** No anchors, no merge keys, no multi-document
//!   streams, no indentation rules: a script is a header and a list of
//!   `[[steps]]` tables, each a flat set of keys.
//!
//! # A script at a glance
//!
//! ```toml
//! name = "payment_reminder"
//! default_language = "en"
//! languages = ["en", "nl"]
//!
//! [[steps]]
//! step = "play"
//! prompt = "payment_intro"      # "This is a payment reminder for"
//!
//! [[steps]]
//! step = "say"
//! field = "INVOICE_AMOUNT_OPEN"
//! as = "amount"                 # "forty-nine euros and ninety-five cents"
//!
//! [[steps]]
//! step = "success_point"
//!
//! [[steps]]
//! step = "branch"
//! field = "INVOICE_AMOUNT_OPEN"
//! above = 500
//! then = "offer_plan"
//!
//! [[steps]]
//! step = "hangup"
//!
//! [[blocks.offer_plan]]
//! step = "play"
//! prompt = "payment_arrangement"
//! ```
//!
//! The header keys come first: in TOML, keys written after a `[[steps]]`
//! line belong to that step. Steps run from top to bottom. A `branch` or
//! `menu` step runs a named block and then carries on with the next step.
//! When the steps run out the call is hung up.
//!
//! The examples: `payment_reminder.toml` (amount and due date; the demo
//! script), `appointment_reminder.toml` (date, time, custom fields, a
//! number spoken as digits), `notice_with_menu.toml` (a DTMF menu whose
//! choice is reported in the results), `notice_with_agent.toml` (a menu
//! that forwards to the call centre or queues a confirmation SMS, and a
//! voicemail message for answering machines).
//!
//! # Reference: the header
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `name` | string | yes | The script's name, as used in results and the portal. Not empty. |
//! | `description` | string | no | Free text for people. |
//! | `default_language` | string | yes | ISO 639-1 code (two lowercase letters) used when the record's `PERSON_LANGUAGE` is missing or not in `languages`. |
//! | `languages` | array of strings | no | Every language the script can be spoken in; must include `default_language`. Default: just `default_language`. Every prompt must exist in every one of them. |
//! | `custom_fields` | array of strings | no | Record fields the script reads that are not standard fields: capitals, digits and `_`, e.g. `APPOINTMENT_DATE`. |
//! | `steps` | array of step tables | yes | The script, written as `[[steps]]` tables. At least one. |
//! | `blocks` | table of step arrays | no | Named step lists, written as `[[blocks.<name>]]` tables. |
//! | `templates` | table of tables | no | The messages the script sends, written as `[templates.<name>]` tables; see [Message templates](#message-templates). |
//! | `email_template` | string | no | The `email` template sent to every record imported with `SERVICES_EMAIL=Y`, on the day of the import. |
//!
//! Fields are named as in the import layout, `SECTION_FIELD` (see
//! [`STANDARD_FIELDS`]): `INVOICE_AMOUNT_OPEN`, `PERSON_LANGUAGE`,
//! `INVOICELINES_2_AMOUNT`, ... The engine adds [`CALL_FIELDS`] for each
//! call, e.g. `CALL_FORWARDING_OPEN` (`Y`/`N`) to choose the "outside
//! opening hours" branch while forwarding is paused. Names are matched
//! exactly. A field that is neither standard, a call field, nor listed in
//! `custom_fields` is an error at load time.
//!
//! # Reference: steps
//!
//! Every step is a table with a `step` key naming its kind ([`STEP_NAMES`])
//! and the keys of that kind. Unknown keys are errors.
//!
//! ## `play`: play a prompt
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `prompt` | string | yes | Clip name: the file `<lang>/<prompt>.wav` under an audio root, without `.wav`. May contain `/` for subfolders. Must exist in every language of the script. |
//!
//! ## `say`: speak a value from the record
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `field` | string | yes | The record field to speak. |
//! | `as` | string | yes | `amount`, `number`, `digits`, `date` or `time`; see [Speaking values](#speaking-values). |
//! | `with_year` | boolean | no | Dates only: also speak the year. Default `false`. |
//! | `currency_field` | string | no | Amounts only: the field holding the ISO 4217 currency. Default `INVOICE_CURRENCY`; blank or missing means EUR. |
//!
//! If the field is empty or cannot be read as the kind (say `"12,34,56"` as
//! an amount), the step is skipped and the run emits an
//! [`Action::Warning`] saying which step, which field and why. It never
//! stops the call.
//!
//! ## `pause`: silence
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `ms` | integer | yes | Milliseconds, 1 to 60000. |
//!
//! ## `success_point`: the message has been heard
//!
//! No keys. Marks the moment the core of the message has been heard: a call
//! that passes it counts as `success` in the results, one that ends before
//! it as `answered_no_success`. Put it right after the essential part (for a
//! payment reminder: after the amount and the due date). Only the first one
//! passed counts; a script may have one in several blocks.
//!
//! ## `branch`: choose a block by a record field
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `field` | string | yes | The field to test. |
//! | `equals` | string | one test | True when the field equals this text, ignoring surrounding spaces and ASCII case. |
//! | `present` | `true` | one test | True when the field is present and not blank. |
//! | `empty` | `true` | one test | True when the field is missing or blank. |
//! | `above` | string or integer | one test | True when the field, read as an amount, is above this amount (`above = 500`, `above = "99.95"`). |
//! | `below` | string or integer | one test | As `above`, for below. |
//! | `then` | string | `then` and/or `else` | Block to run when the test is true. |
//! | `else` | string | `then` and/or `else` | Block to run when it is false. |
//!
//! Exactly one test per branch (write `empty = true`, not `present = false`;
//! amounts with decimals as strings, because TOML floats are not exact).
//! After the block, the script continues with the step after the branch.
//! When an amount test meets a field that is not an amount, the test is
//! false and the run emits a warning; a missing field is simply false.
//!
//! ## `menu`: ask for a key
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `prompt` | string | yes | The question; a key pressed while it plays interrupts it. |
//! | `options` | table | yes | Key to block: `options = { 1 = "paid", 2 = "plan", "#" = "repeat_later" }`. Keys `0`–`9`, `*`, `#`. |
//! | `timeout_ms` | integer | no | How long to wait for a key after the prompt: 1000 to 60000, default 5000. |
//! | `retries` | integer | no | How many times the prompt is repeated after no input or an invalid key: 0 to 5, default 2 (so at most three prompts). Both failures count towards the same total. |
//! | `no_input_prompt` | string | no | Played before the repeated prompt when no key came. |
//! | `invalid_prompt` | string | no | Played before the repeated prompt after a key that is not an option. |
//! | `no_input` | string | no | Block to run when the retries are used up and the last failure was no input. |
//! | `invalid` | string | no | Block to run when the retries are used up and the last failure was an invalid key. |
//!
//! A valid key runs its block, then the script continues after the menu. So
//! does giving up (with the `no_input`/`invalid` block, if any). Report the
//! choice with an `output` step in the option's block.
//!
//! ## `output`: report a result
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `key` | string | yes | Letters, digits, `_`, `-`, `.`. |
//! | `value` | string | yes | Any text. |
//!
//! Emits [`Action::Output`]; the engine writes it to the results as
//! `CUSTOMRESULTS_CUSTOM_n_KEY` / `_VALUE`.
//!
//! ## `gather`: collect digits
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `prompt` | string | yes | The question; a key pressed while it plays interrupts it. |
//! | `key` | string | yes | The result key the digits are reported under (`CUSTOMRESULTS`), as for `output`. |
//! | `max_digits` | integer | no | The entry ends when this many keys are in: 1 to 32, default 1. |
//! | `min_digits` | integer | no | Fewer keys count as an invalid entry: 1 to `max_digits`, default 1. |
//! | `terminator` | string | no | `"#"` or `"*"`: ends the entry early (not part of it). |
//! | `first_digit_timeout_ms` | integer | no | Wait for the first key after the prompt: 1000 to 60000, default 5000. |
//! | `inter_digit_timeout_ms` | integer | no | Wait for each further key; when it passes the entry ends: 500 to 30000, default 3000. |
//! | `retries` | integer | no | Repeats of the prompt after no input or too few keys: 0 to 5, default 2. |
//! | `no_input_prompt`, `invalid_prompt` | string | no | Played before the repeated prompt. |
//! | `then` | string | no | Block to run after a valid entry. |
//! | `no_input` | string | no | Block to run when the retries are used up. |
//!
//! A valid entry emits [`Action::Output`] with `key` and the keys pressed.
//! Keys come as RFC 4733 events or, from peers that send none, are heard in
//! the audio (the engine listens for tones while a menu or gather waits).
//!
//! ## `forward`: connect to the call centre
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `prompt` | string | no | Played first ("connecting you now"). |
//! | `failed` | string | no | Block to run when the call centre does not answer, is busy or fails. |
//! | `closed` | string | no | Block to run outside the organisation's opening hours or while forwarding is paused for the script. |
//!
//! Emits [`Action::Forward`]; the engine calls the call centre and bridges
//! the two calls (or, configured so, asks the trunk to transfer the call
//! with REFER), or answers with [`ForwardOutcome::Failed`] or
//! [`ForwardOutcome::Closed`], after which the block runs and the script goes
//! on after the step. A connected call ends when either side hangs up and
//! counts as `forwarded` (a success).
//!
//! ## `sms`: queue a text message
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `template` | string | yes | The name of a `channel = "sms"` template of the script. |
//!
//! Emits [`Action::QueueSms`] with the template filled in for the record in
//! the call's language; the engine stores the message in its outbox for the
//! record (or, when a field the text needs is blank, a failed message saying
//! which) and the script goes on at once.
//!
//! ## `hangup`: end the call
//!
//! No keys. Hangs up; later steps do not run. A script that runs out of
//! steps hangs up too.
//!
//! # Reference: blocks
//!
//! ```toml
//! [[blocks.paid]]
//! step = "output"
//! key = "choice"
//! value = "already_paid"
//!
//! [[blocks.paid]]
//! step = "play"
//! prompt = "notice_thanks_paid"
//! ```
//!
//! Each `[[blocks.<name>]]` table adds a step to the block `<name>`. Blocks
//! are run by `branch`, `menu`, `gather` and `forward` steps; when a block ends, the step that
//! ran it is done and the script goes on after it. A block may run other
//! blocks but never, directly or through others, itself: scripts have no
//! loops, so every call ends (menus repeat only up to `retries`). Any step
//! may appear in a block, including `hangup` and `success_point`. An empty
//! block is written `blocks.<name> = []` in the header.
//!
//! A block named `inbound` ([`INBOUND_BLOCK`]) is what a person who calls
//! back after a missed call hears (the engine matches their number to the
//! record, so the record's fields are there); without it, they hear the
//! main steps.
//!
//! # Message templates
//!
//! ```toml
//! email_template = "overdue_notice"
//!
//! [templates.payment_check_confirmation]
//! channel = "sms"
//! text.en = "Thank you. We will check the payment of invoice {INVOICE_NUMBER}."
//! text.nl = "Dank u. Wij controleren de betaling van factuur {INVOICE_NUMBER}."
//!
//! [templates.overdue_notice]
//! channel = "email"
//! subject.en = "Invoice {INVOICE_NUMBER} is overdue"
//! subject.nl = "Factuur {INVOICE_NUMBER} is niet betaald"
//! text.en = """
//! Dear {PERSON_FIRST_NAME|customer},
//! ...
//! """
//! text.nl = "..."
//! ```
//!
//! | key | type | required | meaning |
//! | --- | --- | --- | --- |
//! | `channel` | string | yes | `sms` or `email`. |
//! | `text` | table of strings | yes | The message per language: one for every language of the script, no others. |
//! | `subject` | table of strings | e-mail only | The subject per language, as `text`. An SMS has none. |
//!
//! Template names hold letters, digits, `_` and `-`. In a text or subject,
//! `{FIELD}` is the record's field, trimmed (any field a script may read;
//! checked at load like the fields of steps, with the line and column of
//! the placeholder); `{FIELD|text}` gives `text` when the field is blank;
//! `{{` and `}}` are literal braces. A placeholder without a default whose
//! field is blank makes that message fail (the engine records it as failed,
//! naming the field) rather than go out with a hole in it. A message is
//! written in the call's language (an SMS step) or the record's
//! `PERSON_LANGUAGE` chosen as for calls ([`Script::language_for`], the
//! e-mail). [`MessageTemplate::render`] fills a template in.
//!
//! # Speaking values
//!
//! A `say` step turns the field's text into a list of recorded segments.
//! The rules for reading the text are in [`speak::value`]; in short:
//!
//! | `as` | accepts | English | Dutch |
//! | --- | --- | --- | --- |
//! | `amount` | `1250.5`, `1.250,50`, `1,250.50`; at most 999,999,999.99 | one thousand two hundred and fifty euros and fifty cents | duizend tweehonderdvijftig euro en vijftig cent |
//! | `number` | digits, 0 to 999,999,999 | one hundred and five | honderdvijf |
//! | `digits` | digits; spaces and `- . / + ( )` are skipped | zero six one two | nul zes één twee |
//! | `date` | `YYYY-MM-DD`, `DD-MM-YYYY` | the twenty-first of March (twenty twenty-six) | eenentwintig maart (tweeduizend zesentwintig) |
//! | `time` | `HH:MM` (24-hour) | two thirty p.m. | veertien uur dertig |
//!
//! Amounts: with both `.` and `,` present, the last one is the decimal mark;
//! a single mark occurring once is the decimal mark (`1.250` is 1.25, as the
//! import layout defines amounts with `.` or `,` as decimal mark); one kind
//! of mark occurring several times groups thousands (`1.250.000`). More
//! than two decimals are refused unless they are zeros; negative amounts are
//! refused. One unit is singular ("one euro", "one cent"); zero whole units
//! gives cents only ("ten cents"). The currency comes from
//! `INVOICE_CURRENCY` (or `currency_field`): EUR (default), USD or GBP;
//! another code makes the step warn and skip.
//!
//! # Languages
//!
//! A run speaks the record's `PERSON_LANGUAGE` (ISO 639-1; the part before
//! `-` or `_`, any case, so `NL` and `nl-BE` mean `nl`) when it is one of
//! the script's `languages`, and otherwise the script's `default_language`
//! (with a warning when the record asked for another language). Values can
//! be spoken in English (`en`) and Dutch (`nl`); a script with `say` steps
//! cannot list other languages.
//!
//! The steps run in the same order in every language, so write prompts that
//! fit around the spoken values in each language: "This is a payment
//! reminder for ⟨amount⟩ due on ⟨date⟩" works as "Dit is een
//! betalingsherinnering voor ⟨bedrag⟩ met vervaldatum ⟨datum⟩", whereas a
//! Dutch sentence with the verb after the amount would need a prompt after
//! it that English does not.
//!
//! # Audio: prompts, segments and your own recordings
//!
//! Recordings are found through an [`AudioCatalog`], built from an ordered
//! list of root folders. In each root, `<lang>/<name>.wav` is the clip
//! `name` in language `lang`, and subfolders become part of the name:
//! `en/say/25.wav` is the clip `say/25`. A later root overrides an earlier
//! one clip by clip. List the shipped recordings ([`default_audio_root`])
//! first and your own folder after it to replace any prompt or segment with
//! your own voice, or to add prompts for your scripts.
//!
//! Prompts are the clips a script names. Segments are the clips below
//! `say/` that values are spoken from; the full list, with what each says,
//! is in the [`speak`] module. Loading a script checks that every prompt
//! exists in every language of the script and that every segment needed for
//! each kind of value it speaks exists too, so a call never meets a missing
//! file. [`Script::required_clips`] lists them all, for decoding at load.
//!
//! Shipped recordings: 8000 Hz mono 16-bit PCM WAV, synthesised with
//! espeak-ng by `scripts/audio/generate.sh`; see `scripts/audio/LICENSE.md`.
//!
//! # Errors
//!
//! [`Script::load`] and [`Script::parse`] return [`ScriptError`]. Every
//! problem is a [`Diagnostic`] naming the file, line and column and what was
//! expected, for example:
//!
//! ```text
//! payment_reminder.toml:17:8: unknown step "paly" (did you mean "play"?); expected one of play, say, pause, success_point, branch, menu, output, hangup
//! payment_reminder.toml:27:10: prompt "payment_due" has no recording for language "nl"; expected a file nl/payment_due.wav under one of the audio roots
//! payment_reminder.toml:31:9: unknown field "INVOICE_DUEDATE" (did you mean "INVOICE_DUE_DATE"?); expected a standard field (SECTION_FIELD, see formats/README.md) or one listed in custom_fields
//! payment_reminder.toml:40:1: step "pause": unknown field `length`, expected `ms`
//! ```
//!
//! Problems of form (TOML syntax, unknown or missing keys, wrong types) are
//! reported first, all of them; when there are none, every problem of
//! meaning (missing prompts, unknown fields and blocks, ranges, loops).
//!
//! # Running a script
//!
//! [`Run`] is a state machine with no I/O and no clock. The engine starts
//! one per answered call, feeds it [`Event`]s and carries out the
//! [`Action`]s it polls. The protocol is described on [`Run`]; the
//! essentials:
//!
//! - Nothing happens before [`Event::Answered`].
//! - [`Action::Play`] holds a list of clips; the engine plays them in order
//!   and sends one [`Event::PlaybackFinished`] after the last.
//! - A key during a menu prompt gives [`Action::StopPlayback`]; the engine
//!   sends no `PlaybackFinished` for the stopped playback.
//! - Timers are [`Action::StartTimer`] / [`Event::TimerFired`] with an id; a
//!   stale id is ignored.
//! - [`Action::SuccessPoint`] comes at most once. [`Event::RemoteHangup`]
//!   ends the run with [`Action::Finished`] and no later success point.
//! - At the end of the steps, or at a `hangup` step: [`Action::Hangup`],
//!   then [`Action::Finished`].
//!
//! # Answering machines
//!
//! When the engine's answering-machine detection hears a machine, it waits
//! for the voicemail beep to end (or for the machine to go quiet) and then
//! sends [`Event::MachineAnswered`] instead of [`Event::Answered`]: the run
//! speaks the block named `voicemail` ([`VOICEMAIL_BLOCK`]) and hangs up. A
//! script without that block leaves no message: the engine hangs up on
//! machines. The results show `VOICEMAIL_LEFT` = `Y` when the block was
//! spoken to its end.

mod catalog;
mod error;
mod fields;
mod flow;
mod format;
mod interpreter;
mod script;
pub mod speak;
mod suggest;
mod template;
mod validate;

pub use catalog::{default_audio_root, AudioCatalog, ClipRef};
pub use error::{CatalogError, Diagnostic, Problem, ScriptError, SpeakError};
pub use fields::{
    is_standard_field, RecordFields, CALL_FIELDS, CURRENCY_FIELD, FORWARDING_OPEN_FIELD,
    LANGUAGE_FIELD, STANDARD_FIELDS,
};
pub use flow::{Flow, FlowStep};
pub use format::STEP_NAMES;
pub use interpreter::{Action, Event, ForwardOutcome, Run, INBOUND_BLOCK, VOICEMAIL_BLOCK};
pub use script::Script;
pub use template::{Channel, MessageTemplate, RenderError, RenderedMessage};
