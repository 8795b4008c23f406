//! Checking a script as written against what exists: prompts and segments
//! in the audio catalogue for every language of the script, record fields
//! that are standard or declared, block names, value ranges, and that blocks
//! never run themselves (so every run ends).

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use crate::fields::{is_standard_field, CURRENCY_FIELD, LANGUAGE_FIELD, STANDARD_FIELDS};
use crate::format::{
    BranchStep, Found, GatherStep, MenuStep, RawScript, RawStep, SayStep, Span, StepBody,
    TemplateDef,
};
use crate::script::{Block, BlockId, Condition, Gather, Menu, Step, Test, MAIN};
use crate::speak::{self, Amount, ValueKind, SPEAKING_LANGUAGES};
use crate::suggest::closest;
use crate::template::{content_start, parse_text, Channel, MessageTemplate, Text};
use crate::{AudioCatalog, ClipRef, Problem, Script};

/// Pause length, milliseconds.
pub(crate) const PAUSE_MS: (u32, u32) = (1, 60_000);
/// Menu wait after the prompt, milliseconds.
pub(crate) const MENU_TIMEOUT_MS: (u32, u32) = (1_000, 60_000);
/// Default menu wait.
pub(crate) const DEFAULT_MENU_TIMEOUT_MS: u32 = 5_000;
/// Menu retries after the first prompt.
pub(crate) const MENU_RETRIES: (u32, u32) = (0, 5);
/// Default menu retries.
pub(crate) const DEFAULT_MENU_RETRIES: u32 = 2;

/// Digits a gather step collects at most.
pub(crate) const GATHER_DIGITS: (u32, u32) = (1, 32);
/// Wait for the first digit after the prompt, milliseconds.
pub(crate) const GATHER_FIRST_MS: (u32, u32) = (1_000, 60_000);
/// Default wait for the first digit.
pub(crate) const DEFAULT_GATHER_FIRST_MS: u32 = 5_000;
/// Wait between digits, milliseconds.
pub(crate) const GATHER_INTER_MS: (u32, u32) = (500, 30_000);
/// Default wait between digits.
pub(crate) const DEFAULT_GATHER_INTER_MS: u32 = 3_000;

/// Turns a raw script into a checked [`Script`], or lists every problem.
pub(crate) fn validate(
    raw: RawScript,
    source: &str,
    catalog: &AudioCatalog,
) -> Result<Script, Vec<Found>> {
    let mut checker = Checker {
        catalog,
        source,
        templates: BTreeMap::new(),
        template_channels: BTreeMap::new(),
        problems: Vec::new(),
        languages: Vec::new(),
        custom_fields: Vec::new(),
        block_ids: BTreeMap::new(),
        block_names: Vec::new(),
        fields: BTreeSet::new(),
        clips: BTreeSet::new(),
        spoken: BTreeSet::new(),
        edges: Vec::new(),
    };
    let header = &raw.header;

    let name = header.name.get_ref().trim().to_string();
    if name.is_empty() {
        checker.problem(header.name.span(), Problem::Empty { key: "name" });
    }
    checker.check_languages(
        raw.header.default_language.clone(),
        raw.header.languages.clone(),
    );
    checker.check_custom_fields(&raw.header.custom_fields);
    checker.fields.insert(LANGUAGE_FIELD.to_string());
    checker.templates(&raw.header.templates);
    let email_template = raw.header.email_template.as_ref().map(|name| {
        checker.template_ref(name, Channel::Email, "email_template");
        name.get_ref().clone()
    });

    checker.block_names.push("steps".to_string());
    for (i, block) in raw.blocks.iter().enumerate() {
        checker.block_ids.insert(block.name.clone(), i + 1);
        checker.block_names.push(block.name.clone());
    }

    let mut blocks = vec![Block {
        name: "steps".to_string(),
        steps: checker.steps(MAIN, &raw.steps),
    }];
    for (i, block) in raw.blocks.iter().enumerate() {
        blocks.push(Block {
            name: block.name.clone(),
            steps: checker.steps(i + 1, &block.steps),
        });
    }
    checker.check_cycles();

    if !checker.problems.is_empty() {
        let mut problems = checker.problems;
        problems.sort_by_key(|(span, _)| span.start);
        return Err(problems);
    }
    Ok(Script {
        name,
        description: raw.header.description.clone(),
        default_language: raw.header.default_language.into_inner(),
        languages: checker.languages,
        custom_fields: checker.custom_fields,
        blocks,
        fields: checker.fields,
        clips: checker.clips,
        templates: checker.templates,
        email_template,
    })
}

struct Checker<'a> {
    catalog: &'a AudioCatalog,
    /// The script text, to point into template texts.
    source: &'a str,
    /// The templates that passed their checks.
    templates: BTreeMap<String, MessageTemplate>,
    /// Every template defined, checked or not, with its channel.
    template_channels: BTreeMap<String, Channel>,
    problems: Vec<Found>,
    languages: Vec<String>,
    custom_fields: Vec<String>,
    block_ids: BTreeMap<String, BlockId>,
    block_names: Vec<String>,
    fields: BTreeSet<String>,
    clips: BTreeSet<ClipRef>,
    /// Value kinds already checked (once per script is enough).
    spoken: BTreeSet<&'static str>,
    /// Block references: from, to, where.
    edges: Vec<(BlockId, BlockId, Span)>,
}

fn is_language_code(s: &str) -> bool {
    s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase())
}

impl Checker<'_> {
    fn problem(&mut self, span: Span, problem: Problem) {
        self.problems.push((span, problem));
    }

    fn check_languages(
        &mut self,
        default: Spanned<String>,
        languages: Option<Vec<Spanned<String>>>,
    ) {
        const NOT_A_CODE: &str =
            "is not an ISO 639-1 code; expected two lowercase letters, e.g. en";
        let default_code = default.get_ref().clone();
        if !is_language_code(&default_code) {
            self.problem(
                default.span(),
                Problem::BadLanguage {
                    language: default_code.clone(),
                    reason: NOT_A_CODE,
                },
            );
        }
        let Some(list) = languages else {
            self.languages = vec![default_code];
            return;
        };
        for language in list {
            let code = language.get_ref().clone();
            if !is_language_code(&code) {
                self.problem(
                    language.span(),
                    Problem::BadLanguage {
                        language: code,
                        reason: NOT_A_CODE,
                    },
                );
            } else if self.languages.contains(&code) {
                self.problem(
                    language.span(),
                    Problem::BadLanguage {
                        language: code,
                        reason: "is listed twice",
                    },
                );
            } else {
                self.languages.push(code);
            }
        }
        if is_language_code(&default_code) && !self.languages.contains(&default_code) {
            self.problem(
                default.span(),
                Problem::BadLanguage {
                    language: default_code,
                    reason: "(default_language) is not listed in languages; expected it there too",
                },
            );
        }
    }

    fn check_custom_fields(&mut self, fields: &[Spanned<String>]) {
        for field in fields {
            let name = field.get_ref();
            let well_formed = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let reason = if !well_formed {
                Some(
                    "is not a field name; expected capitals, digits and '_', e.g. APPOINTMENT_DATE",
                )
            } else if is_standard_field(name) {
                Some("is already a standard field; remove it from custom_fields")
            } else if self.custom_fields.contains(name) {
                Some("is listed twice")
            } else {
                None
            };
            match reason {
                Some(reason) => self.problem(
                    field.span(),
                    Problem::BadCustomField {
                        field: name.clone(),
                        reason,
                    },
                ),
                None => self.custom_fields.push(name.clone()),
            }
        }
    }

    fn field(&mut self, field: &Spanned<String>) -> String {
        let name = field.get_ref();
        if is_standard_field(name) || self.custom_fields.contains(name) {
            self.fields.insert(name.clone());
        } else {
            let candidates: Vec<&str> = STANDARD_FIELDS
                .iter()
                .copied()
                .chain(self.custom_fields.iter().map(String::as_str))
                .collect();
            let suggestion = closest(name, candidates);
            self.problem(
                field.span(),
                Problem::UnknownField {
                    field: name.clone(),
                    suggestion,
                },
            );
        }
        name.clone()
    }

    fn prompt(&mut self, prompt: &Spanned<String>) -> String {
        let name = prompt.get_ref().clone();
        if name.is_empty() {
            self.problem(prompt.span(), Problem::Empty { key: "prompt" });
            return name;
        }
        for language in self.languages.clone() {
            let clip = ClipRef::new(language.as_str(), name.as_str());
            if self.catalog.contains(&clip) {
                self.clips.insert(clip);
            } else {
                self.problem(
                    prompt.span(),
                    Problem::MissingPrompt {
                        prompt: name.clone(),
                        language,
                    },
                );
            }
        }
        name
    }

    /// Checks the `[templates.<name>]` tables: names, texts (and e-mail
    /// subjects) in exactly the script's languages, placeholders that read
    /// and name known fields.
    fn templates(&mut self, defs: &BTreeMap<Spanned<String>, Spanned<TemplateDef>>) {
        for (name, def) in defs {
            let template = name.get_ref().clone();
            let well_formed = !template.is_empty()
                && template
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !well_formed {
                self.problem(
                    name.span(),
                    Problem::BadTemplateName {
                        name: template.clone(),
                    },
                );
            }
            let def = def.get_ref();
            let channel = *def.channel.get_ref();
            self.template_channels.insert(template.clone(), channel);
            let before = self.problems.len();
            let texts = self.template_texts(&template, "text", &def.text);
            let subjects = match (&def.subject, channel) {
                (Some(subject), Channel::Sms) => {
                    self.problem(
                        subject.span(),
                        Problem::SubjectOnSms {
                            template: template.clone(),
                        },
                    );
                    BTreeMap::new()
                }
                (Some(subject), Channel::Email) => {
                    self.template_texts(&template, "subject", subject)
                }
                (None, Channel::Email) => {
                    for language in self.languages.clone() {
                        self.problem(
                            name.span(),
                            Problem::MissingTemplateText {
                                template: template.clone(),
                                key: "subject",
                                language,
                            },
                        );
                    }
                    BTreeMap::new()
                }
                (None, Channel::Sms) => BTreeMap::new(),
            };
            if self.problems.len() == before && well_formed {
                self.templates.insert(
                    template.clone(),
                    MessageTemplate {
                        name: template,
                        channel,
                        texts,
                        subjects,
                    },
                );
            }
        }
    }

    /// One template's `text` or `subject` table, by language.
    fn template_texts(
        &mut self,
        template: &str,
        key: &'static str,
        table: &Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    ) -> BTreeMap<String, Text> {
        let mut read = BTreeMap::new();
        for (language, text) in table.get_ref() {
            if !self.languages.contains(language.get_ref()) {
                self.problem(
                    language.span(),
                    Problem::TemplateLanguage {
                        template: template.to_string(),
                        key,
                        language: language.get_ref().clone(),
                        languages: self.languages.clone(),
                    },
                );
                continue;
            }
            if text.get_ref().trim().is_empty() {
                self.problem(text.span(), Problem::Empty { key });
                continue;
            }
            match parse_text(text.get_ref()) {
                Err(e) => {
                    let at = self.offset_in(text, e.offset);
                    self.problem(at..at + 1, Problem::BadPlaceholder { reason: e.reason });
                }
                Ok((parsed, fields)) => {
                    for field in fields {
                        let at = self.offset_in(text, field.offset);
                        self.field(&Spanned::new(at..at + field.name.len(), field.name));
                    }
                    read.insert(language.get_ref().clone(), parsed);
                }
            }
        }
        for language in self.languages.clone() {
            if !table.get_ref().keys().any(|l| *l.get_ref() == language) {
                self.problem(
                    table.span(),
                    Problem::MissingTemplateText {
                        template: template.to_string(),
                        key,
                        language,
                    },
                );
            }
        }
        read
    }

    /// Where byte `offset` of a template text is in the script, or the
    /// start of the string when it is written with escapes.
    fn offset_in(&self, text: &Spanned<String>, offset: usize) -> usize {
        content_start(self.source, &text.span(), text.get_ref())
            .map_or(text.span().start, |start| start + offset)
    }

    /// A reference to a template that must exist and be of `channel`.
    fn template_ref(&mut self, name: &Spanned<String>, channel: Channel, used_by: &'static str) {
        let template = name.get_ref().trim();
        match self.template_channels.get(template) {
            Some(found) if *found == channel => {}
            Some(found) => {
                let found = found.as_str();
                self.problem(
                    name.span(),
                    Problem::TemplateChannel {
                        name: template.to_string(),
                        found,
                        expected: channel.as_str(),
                        used_by,
                    },
                )
            }
            None => {
                let known: Vec<String> = self
                    .template_channels
                    .iter()
                    .filter(|(_, c)| **c == channel)
                    .map(|(n, _)| n.clone())
                    .collect();
                let suggestion = closest(template, known.iter().map(String::as_str));
                self.problem(
                    name.span(),
                    Problem::UnknownTemplate {
                        name: template.to_string(),
                        suggestion,
                        known,
                    },
                );
            }
        }
    }

    fn block_ref(&mut self, from: BlockId, name: &Spanned<String>) -> Option<BlockId> {
        match self.block_ids.get(name.get_ref()) {
            Some(id) => {
                self.edges.push((from, *id, name.span()));
                Some(*id)
            }
            None => {
                let known = self.block_names[1..].to_vec();
                self.problem(
                    name.span(),
                    Problem::UnknownBlock {
                        name: name.get_ref().clone(),
                        known,
                    },
                );
                None
            }
        }
    }

    fn range(&mut self, key: &'static str, value: &Spanned<u32>, (min, max): (u32, u32)) -> u32 {
        let v = *value.get_ref();
        if !(min..=max).contains(&v) {
            self.problem(
                value.span(),
                Problem::OutOfRange {
                    key,
                    found: u64::from(v),
                    min: u64::from(min),
                    max: u64::from(max),
                },
            );
        }
        v.clamp(min, max)
    }

    fn steps(&mut self, block: BlockId, raw: &[RawStep]) -> Vec<Step> {
        raw.iter().filter_map(|s| self.step(block, s)).collect()
    }

    fn step(&mut self, block: BlockId, raw: &RawStep) -> Option<Step> {
        Some(match &raw.body {
            StepBody::Play(p) => Step::Play {
                prompt: self.prompt(&p.prompt),
            },
            StepBody::Say(s) => self.say(raw.span.clone(), s),
            StepBody::Pause(p) => Step::Pause {
                ms: self.range("ms", &p.ms, PAUSE_MS),
            },
            StepBody::SuccessPoint => Step::SuccessPoint,
            StepBody::Branch(b) => self.branch(block, raw.span.clone(), b)?,
            StepBody::Menu(m) => self.menu(block, m),
            StepBody::Output(o) => Step::Output {
                key: self.output_key(&o.key),
                value: o.value.get_ref().clone(),
            },
            StepBody::Hangup => Step::Hangup,
            StepBody::Gather(g) => self.gather(block, g),
            StepBody::Forward(f) => Step::Forward {
                prompt: f.prompt.as_ref().map(|p| self.prompt(p)),
                failed: f.failed.as_ref().and_then(|n| self.block_ref(block, n)),
                closed: f.closed.as_ref().and_then(|n| self.block_ref(block, n)),
            },
            StepBody::Sms(m) => {
                let template = m.template.get_ref().trim().to_string();
                if template.is_empty() {
                    self.problem(m.template.span(), Problem::Empty { key: "template" });
                } else {
                    self.template_ref(&m.template, Channel::Sms, "an sms step");
                }
                Step::Sms { template }
            }
        })
    }

    /// A result key: letters, digits, `_`, `-`, `.`.
    fn output_key(&mut self, key: &Spanned<String>) -> String {
        let name = key.get_ref().clone();
        if name.is_empty() {
            self.problem(key.span(), Problem::Empty { key: "key" });
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            self.problem(key.span(), Problem::BadOutputKey { key: name.clone() });
        }
        name
    }

    fn gather(&mut self, block: BlockId, g: &GatherStep) -> Step {
        let prompt = self.prompt(&g.prompt);
        let key = self.output_key(&g.key);
        let max_digits = g
            .max_digits
            .as_ref()
            .map_or(1, |m| self.range("max_digits", m, GATHER_DIGITS));
        let min_digits = g.min_digits.as_ref().map_or(1, |m| {
            self.range("min_digits", m, (GATHER_DIGITS.0, max_digits))
        });
        let terminator = g.terminator.as_ref().and_then(|t| {
            let mut chars = t.get_ref().chars();
            match (chars.next(), chars.next()) {
                (Some(c @ ('#' | '*')), None) => Some(c),
                _ => {
                    self.problem(
                        t.span(),
                        Problem::BadTerminator {
                            key: t.get_ref().clone(),
                        },
                    );
                    None
                }
            }
        });
        let first_digit_timeout_ms = g
            .first_digit_timeout_ms
            .as_ref()
            .map_or(DEFAULT_GATHER_FIRST_MS, |t| {
                self.range("first_digit_timeout_ms", t, GATHER_FIRST_MS)
            });
        let inter_digit_timeout_ms = g
            .inter_digit_timeout_ms
            .as_ref()
            .map_or(DEFAULT_GATHER_INTER_MS, |t| {
                self.range("inter_digit_timeout_ms", t, GATHER_INTER_MS)
            });
        let retries = g.retries.as_ref().map_or(DEFAULT_MENU_RETRIES, |r| {
            self.range("retries", r, MENU_RETRIES)
        });
        let no_input_prompt = g.no_input_prompt.as_ref().map(|p| self.prompt(p));
        let invalid_prompt = g.invalid_prompt.as_ref().map(|p| self.prompt(p));
        let then = g.then.as_ref().and_then(|n| self.block_ref(block, n));
        let no_input = g.no_input.as_ref().and_then(|n| self.block_ref(block, n));
        Step::Gather(Box::new(Gather {
            prompt,
            key,
            min_digits,
            max_digits,
            terminator,
            first_digit_timeout_ms,
            inter_digit_timeout_ms,
            retries,
            no_input_prompt,
            invalid_prompt,
            then,
            no_input,
        }))
    }

    fn say(&mut self, span: Span, s: &SayStep) -> Step {
        let field = self.field(&s.field);
        let kind = *s.kind.get_ref();
        if let Some(y) = &s.with_year {
            if kind != ValueKind::Date {
                self.problem(
                    y.span(),
                    Problem::KeyNotForKind {
                        key: "with_year",
                        applies_to: "date",
                    },
                );
            }
        }
        let currency_field = match (&s.currency_field, kind) {
            (Some(c), ValueKind::Amount) => Some(self.field(c)),
            (Some(c), _) => {
                self.problem(
                    c.span(),
                    Problem::KeyNotForKind {
                        key: "currency_field",
                        applies_to: "amount",
                    },
                );
                None
            }
            (None, ValueKind::Amount) => {
                self.fields.insert(CURRENCY_FIELD.to_string());
                Some(CURRENCY_FIELD.to_string())
            }
            (None, _) => None,
        };
        self.check_segments(span, kind);
        Step::Say {
            field,
            kind,
            currency_field,
            with_year: s.with_year.as_ref().is_some_and(|y| *y.get_ref()),
        }
    }

    /// Every language of the script can speak `kind` from the catalogue.
    fn check_segments(&mut self, span: Span, kind: ValueKind) {
        if !self.spoken.insert(kind.name()) {
            return;
        }
        for language in self.languages.clone() {
            let Ok(inventory) = speak::inventory(&language, kind) else {
                self.problem(
                    span.clone(),
                    Problem::UnsupportedLanguage {
                        language,
                        supported: SPEAKING_LANGUAGES,
                    },
                );
                continue;
            };
            let mut missing = None;
            for segment in inventory {
                let clip = ClipRef::new(language.as_str(), segment);
                if self.catalog.contains(&clip) {
                    self.clips.insert(clip);
                } else if missing.is_none() {
                    missing = Some(clip.name);
                }
            }
            if let Some(segment) = missing {
                self.problem(
                    span.clone(),
                    Problem::MissingSegment {
                        kind: kind.name(),
                        language,
                        segment,
                    },
                );
            }
        }
    }

    fn branch(&mut self, block: BlockId, span: Span, b: &BranchStep) -> Option<Step> {
        let field = self.field(&b.field);
        let tests = [
            b.equals.is_some(),
            b.present.is_some(),
            b.empty.is_some(),
            b.above.is_some(),
            b.below.is_some(),
        ]
        .iter()
        .filter(|t| **t)
        .count();
        if tests != 1 {
            self.problem(span.clone(), Problem::BranchTest { found: tests });
        }
        let mut amount =
            |key: &'static str, lit: &Spanned<crate::format::AmountLiteral>| match Amount::parse(
                &lit.get_ref().0,
            ) {
                Ok(a) => Some(a),
                Err(source) => {
                    self.problem(lit.span(), Problem::BadAmount { key, source });
                    None
                }
            };
        let test = if let Some(v) = &b.equals {
            let v = v.get_ref().trim().to_string();
            if v.is_empty() {
                self.problem(
                    b.equals.as_ref().map_or(span.clone(), |e| e.span()),
                    Problem::FalseTest {
                        key: "equals = \"\"",
                        instead: "empty",
                    },
                );
            }
            Some(Test::Equals(v))
        } else if let Some(a) = &b.above {
            amount("above", a).map(Test::Above)
        } else if let Some(a) = &b.below {
            amount("below", a).map(Test::Below)
        } else if let Some(p) = &b.present {
            if !p.get_ref() {
                self.problem(
                    p.span(),
                    Problem::FalseTest {
                        key: "present",
                        instead: "empty",
                    },
                );
            }
            Some(Test::Present)
        } else if let Some(e) = &b.empty {
            if !e.get_ref() {
                self.problem(
                    e.span(),
                    Problem::FalseTest {
                        key: "empty",
                        instead: "present",
                    },
                );
            }
            Some(Test::Empty)
        } else {
            None
        };
        if b.then.is_none() && b.otherwise.is_none() {
            self.problem(span, Problem::BranchWithoutBlock);
        }
        let then = b.then.as_ref().and_then(|n| self.block_ref(block, n));
        let otherwise = b.otherwise.as_ref().and_then(|n| self.block_ref(block, n));
        Some(Step::Branch {
            condition: Condition { field, test: test? },
            then,
            otherwise,
        })
    }

    fn menu(&mut self, block: BlockId, m: &MenuStep) -> Step {
        let prompt = self.prompt(&m.prompt);
        let mut options = BTreeMap::new();
        if m.options.get_ref().is_empty() {
            self.problem(m.options.span(), Problem::NoMenuOptions);
        }
        for (key, target) in m.options.get_ref() {
            let mut chars = key.get_ref().chars();
            let key_char = match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
                _ => {
                    self.problem(
                        key.span(),
                        Problem::BadMenuKey {
                            key: key.get_ref().clone(),
                        },
                    );
                    None
                }
            };
            let target = self.block_ref(block, target);
            if let (Some(k), Some(t)) = (key_char, target) {
                options.insert(k, t);
            }
        }
        let timeout_ms = m.timeout_ms.as_ref().map_or(DEFAULT_MENU_TIMEOUT_MS, |t| {
            self.range("timeout_ms", t, MENU_TIMEOUT_MS)
        });
        let retries = m.retries.as_ref().map_or(DEFAULT_MENU_RETRIES, |r| {
            self.range("retries", r, MENU_RETRIES)
        });
        let no_input_prompt = m.no_input_prompt.as_ref().map(|p| self.prompt(p));
        let invalid_prompt = m.invalid_prompt.as_ref().map(|p| self.prompt(p));
        let no_input = m.no_input.as_ref().and_then(|n| self.block_ref(block, n));
        let invalid = m.invalid.as_ref().and_then(|n| self.block_ref(block, n));
        Step::Menu(Box::new(Menu {
            prompt,
            options,
            timeout_ms,
            retries,
            no_input_prompt,
            invalid_prompt,
            no_input,
            invalid,
        }))
    }

    /// Reports each reference that closes a loop of blocks.
    fn check_cycles(&mut self) {
        let n = self.block_names.len();
        let mut out: Vec<Vec<(BlockId, Span)>> = vec![Vec::new(); n];
        for (from, to, span) in &self.edges {
            out[*from].push((*to, span.clone()));
        }
        // 0 = unseen, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            // Iterative depth-first search: (block, next edge index).
            let mut path: Vec<(BlockId, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (node, ref mut next)) = path.last_mut() {
                if let Some((to, span)) = out[node].get(*next).cloned() {
                    *next += 1;
                    match state[to] {
                        0 => {
                            state[to] = 1;
                            path.push((to, 0));
                        }
                        1 => {
                            let from = path.iter().position(|(b, _)| *b == to).unwrap_or(0);
                            let mut cycle: Vec<String> = path[from..]
                                .iter()
                                .map(|(b, _)| self.block_names[*b].clone())
                                .collect();
                            cycle.push(self.block_names[to].clone());
                            self.problem(span, Problem::BlockCycle { cycle });
                        }
                        _ => {}
                    }
                } else {
                    state[node] = 2;
                    path.pop();
                }
            }
        }
    }
}
