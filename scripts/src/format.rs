//! The script file format: TOML text to raw steps that keep their source
//! positions. This module checks shape only (known keys, right types); what
//! the names refer to is checked in [`crate::validate`].
//!
//! A step is an internally tagged table: the `step` key names the kind and
//! the other keys belong to that kind. We read the tag ourselves and then let
//! serde deserialize the kind's own struct, instead of deriving
//! `#[serde(tag = "step")]` on one enum: serde buffers internally tagged
//! content, which loses the TOML positions (`toml::Spanned`) that our error
//! messages need. Adding a step kind means one [`StepKind`] variant, one
//! entry in [`STEP_NAMES`], one payload struct and one match arm in
//! `parse_step`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::speak::ValueKind;
use crate::suggest::closest;
use crate::template::Channel;
use crate::Problem;

/// A byte range in the script text.
pub(crate) type Span = Range<usize>;

/// A problem found while reading, with where it is.
pub(crate) type Found = (Span, Problem);

/// The step kinds, as written after `step =`.
pub const STEP_NAMES: &[&str] = &[
    "play",
    "say",
    "pause",
    "success_point",
    "branch",
    "menu",
    "output",
    "hangup",
    "gather",
    "forward",
    "sms",
];

/// Which step a table is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    Play,
    Say,
    Pause,
    SuccessPoint,
    Branch,
    Menu,
    Output,
    Hangup,
    Gather,
    Forward,
    Sms,
}

impl StepKind {
    fn from_name(name: &str) -> Option<StepKind> {
        Some(match name {
            "play" => StepKind::Play,
            "say" => StepKind::Say,
            "pause" => StepKind::Pause,
            "success_point" => StepKind::SuccessPoint,
            "branch" => StepKind::Branch,
            "menu" => StepKind::Menu,
            "output" => StepKind::Output,
            "hangup" => StepKind::Hangup,
            "gather" => StepKind::Gather,
            "forward" => StepKind::Forward,
            "sms" => StepKind::Sms,
            _ => return None,
        })
    }
}

/// The keys before the first table: what the script is and what it reads.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub default_language: Spanned<String>,
    #[serde(default)]
    pub languages: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub custom_fields: Vec<Spanned<String>>,
    /// `[templates.<name>]` tables: the messages the script can send.
    #[serde(default)]
    pub templates: BTreeMap<Spanned<String>, Spanned<TemplateDef>>,
    /// The template of the e-mail sent to records with `SERVICES_EMAIL=Y`.
    #[serde(default)]
    pub email_template: Option<Spanned<String>>,
    // Read separately, listed so that a typo in them is reported helpfully.
    #[serde(default)]
    #[allow(dead_code)]
    steps: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)]
    blocks: Option<IgnoredAny>,
}

/// A `[templates.<name>]` table: the message's channel and, per language,
/// its text (and an e-mail's subject).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateDef {
    pub channel: Spanned<Channel>,
    pub text: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    #[serde(default)]
    pub subject: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
}

/// `step = "play"`: play one prompt.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlayStep {
    pub prompt: Spanned<String>,
}

/// `step = "say"`: speak a record field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SayStep {
    pub field: Spanned<String>,
    #[serde(rename = "as")]
    pub kind: Spanned<ValueKind>,
    #[serde(default)]
    pub with_year: Option<Spanned<bool>>,
    #[serde(default)]
    pub currency_field: Option<Spanned<String>>,
}

/// `step = "pause"`: silence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PauseStep {
    pub ms: Spanned<u32>,
}

/// `step = "branch"`: run a block depending on a record field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BranchStep {
    pub field: Spanned<String>,
    #[serde(default)]
    pub equals: Option<Spanned<String>>,
    #[serde(default)]
    pub present: Option<Spanned<bool>>,
    #[serde(default)]
    pub empty: Option<Spanned<bool>>,
    #[serde(default)]
    pub above: Option<Spanned<AmountLiteral>>,
    #[serde(default)]
    pub below: Option<Spanned<AmountLiteral>>,
    #[serde(default)]
    pub then: Option<Spanned<String>>,
    #[serde(default, rename = "else")]
    pub otherwise: Option<Spanned<String>>,
}

/// `step = "menu"`: a DTMF menu.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MenuStep {
    pub prompt: Spanned<String>,
    pub options: Spanned<BTreeMap<Spanned<String>, Spanned<String>>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub no_input_prompt: Option<Spanned<String>>,
    #[serde(default)]
    pub invalid_prompt: Option<Spanned<String>>,
    #[serde(default)]
    pub no_input: Option<Spanned<String>>,
    #[serde(default)]
    pub invalid: Option<Spanned<String>>,
}

/// `step = "output"`: a key/value for the results.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutputStep {
    pub key: Spanned<String>,
    pub value: Spanned<String>,
}

/// `step = "gather"`: collect digits into a result.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatherStep {
    pub prompt: Spanned<String>,
    pub key: Spanned<String>,
    #[serde(default)]
    pub min_digits: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_digits: Option<Spanned<u32>>,
    #[serde(default)]
    pub terminator: Option<Spanned<String>>,
    #[serde(default)]
    pub first_digit_timeout_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub inter_digit_timeout_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub no_input_prompt: Option<Spanned<String>>,
    #[serde(default)]
    pub invalid_prompt: Option<Spanned<String>>,
    #[serde(default)]
    pub then: Option<Spanned<String>>,
    #[serde(default)]
    pub no_input: Option<Spanned<String>>,
}

/// `step = "forward"`: connect the callee to the call centre.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForwardStep {
    #[serde(default)]
    pub prompt: Option<Spanned<String>>,
    #[serde(default)]
    pub failed: Option<Spanned<String>>,
    #[serde(default)]
    pub closed: Option<Spanned<String>>,
}

/// `step = "sms"`: queue a text message for the record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmsStep {
    pub template: Spanned<String>,
}

/// Steps without keys of their own (`success_point`, `hangup`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoKeys {}

/// An amount written in a script: a string (`"99.95"`) or a whole number.
#[derive(Debug)]
pub(crate) struct AmountLiteral(pub String);

impl<'de> Deserialize<'de> for AmountLiteral {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AmountVisitor;
        impl Visitor<'_> for AmountVisitor {
            type Value = AmountLiteral;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an amount as a string (\"99.95\") or a whole number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AmountLiteral, E> {
                Ok(AmountLiteral(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AmountLiteral, E> {
                Ok(AmountLiteral(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AmountLiteral, E> {
                Ok(AmountLiteral(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AmountLiteral, E> {
                Err(E::custom(
                    "write an amount with decimals as a string, e.g. \"99.95\" (TOML floats are not exact)",
                ))
            }
        }
        deserializer.deserialize_any(AmountVisitor)
    }
}

/// One step as written, with the span of its table.
#[derive(Debug)]
pub(crate) struct RawStep {
    pub span: Span,
    pub body: StepBody,
}

/// The payload of each step kind.
#[derive(Debug)]
pub(crate) enum StepBody {
    Play(PlayStep),
    Say(SayStep),
    Pause(PauseStep),
    SuccessPoint,
    Branch(BranchStep),
    Menu(MenuStep),
    Output(OutputStep),
    Hangup,
    Gather(GatherStep),
    Forward(ForwardStep),
    Sms(SmsStep),
}

/// A named block: `[[blocks.<name>]]` tables.
#[derive(Debug)]
pub(crate) struct RawBlock {
    pub name: String,
    pub steps: Vec<RawStep>,
}

/// A whole script as written.
#[derive(Debug)]
pub(crate) struct RawScript {
    pub header: Header,
    pub steps: Vec<RawStep>,
    pub blocks: Vec<RawBlock>,
}

/// Reads the TOML text. Returns every shape problem found, or the raw
/// script if there were none.
pub(crate) fn parse(source: &str) -> Result<RawScript, Vec<Found>> {
    let document = match DeTable::parse(source) {
        Ok(d) => d,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            return Err(vec![(
                span,
                Problem::Syntax {
                    message: e.message().trim().to_string(),
                },
            )]);
        }
    };
    let mut problems = Vec::new();
    let doc_span = document.span();
    let table = document.into_inner();
    let steps_value = table.get("steps").cloned();
    let blocks_value = table.get("blocks").cloned();

    let header = Header::deserialize(ValueDeserializer::from(Spanned::new(
        doc_span.clone(),
        DeValue::Table(table),
    )))
    .map_err(|e| {
        problems.push((
            e.span().unwrap_or(0..0),
            Problem::Shape {
                context: "script header".to_string(),
                message: e.message().to_string(),
            },
        ))
    })
    .ok();

    let steps = match steps_value {
        None => {
            problems.push((0..0, Problem::NoSteps));
            Vec::new()
        }
        Some(value) => parse_step_list("steps", value, &mut problems),
    };
    if steps.is_empty() && problems.is_empty() {
        problems.push((0..0, Problem::NoSteps));
    }

    let mut blocks = Vec::new();
    if let Some(value) = blocks_value {
        let span = value.span();
        match value.into_inner() {
            DeValue::Table(table) => {
                for (name, list) in table {
                    let what = format!("blocks.{}", name.get_ref());
                    let steps = parse_step_list(&what, list, &mut problems);
                    blocks.push(RawBlock {
                        name: name.get_ref().to_string(),
                        steps,
                    });
                }
            }
            other => problems.push((
                span,
                Problem::BlocksNotATable {
                    found: other.type_str(),
                },
            )),
        }
    }

    match header {
        Some(header) if problems.is_empty() => Ok(RawScript {
            header,
            steps,
            blocks,
        }),
        _ => {
            problems.sort_by_key(|(span, _)| span.start);
            Err(problems)
        }
    }
}

fn parse_step_list(
    what: &str,
    value: Spanned<DeValue<'_>>,
    problems: &mut Vec<Found>,
) -> Vec<RawStep> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .iter()
            .filter_map(|item| parse_step(item.clone(), problems))
            .collect(),
        other => {
            problems.push((
                span,
                Problem::NotAStepList {
                    what: what.to_string(),
                    found: other.type_str(),
                },
            ));
            Vec::new()
        }
    }
}

fn parse_step(value: Spanned<DeValue<'_>>, problems: &mut Vec<Found>) -> Option<RawStep> {
    let span = value.span();
    let mut table = match value.into_inner() {
        DeValue::Table(t) => t,
        other => {
            problems.push((
                span,
                Problem::NotAStep {
                    found: other.type_str(),
                },
            ));
            return None;
        }
    };
    let Some(tag) = table.remove("step") else {
        problems.push((
            span,
            Problem::MissingStepKind {
                expected: STEP_NAMES,
            },
        ));
        return None;
    };
    let tag_span = tag.span();
    let name = match tag.get_ref() {
        DeValue::String(s) => s.to_string(),
        other => {
            problems.push((
                tag_span,
                Problem::Shape {
                    context: "step".to_string(),
                    message: format!(
                        "expected the step name as a string, found {}",
                        other.type_str()
                    ),
                },
            ));
            return None;
        }
    };
    let Some(kind) = StepKind::from_name(&name) else {
        problems.push((
            tag_span,
            Problem::UnknownStep {
                suggestion: closest(&name, STEP_NAMES.iter().copied()),
                found: name,
                expected: STEP_NAMES,
            },
        ));
        return None;
    };
    let rest = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table)));
    let body = match kind {
        StepKind::Play => PlayStep::deserialize(rest).map(StepBody::Play),
        StepKind::Say => SayStep::deserialize(rest).map(StepBody::Say),
        StepKind::Pause => PauseStep::deserialize(rest).map(StepBody::Pause),
        StepKind::SuccessPoint => NoKeys::deserialize(rest).map(|_| StepBody::SuccessPoint),
        StepKind::Branch => BranchStep::deserialize(rest).map(StepBody::Branch),
        StepKind::Menu => MenuStep::deserialize(rest).map(StepBody::Menu),
        StepKind::Output => OutputStep::deserialize(rest).map(StepBody::Output),
        StepKind::Hangup => NoKeys::deserialize(rest).map(|_| StepBody::Hangup),
        StepKind::Gather => GatherStep::deserialize(rest).map(StepBody::Gather),
        StepKind::Forward => ForwardStep::deserialize(rest).map(StepBody::Forward),
        StepKind::Sms => SmsStep::deserialize(rest).map(StepBody::Sms),
    };
    match body {
        Ok(body) => Some(RawStep { span, body }),
        Err(e) => {
            problems.push((
                e.span().unwrap_or(span),
                Problem::Shape {
                    context: format!("step \"{name}\""),
                    message: e.message().to_string(),
                },
            ));
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn problems(source: &str) -> Vec<(String, Problem)> {
        match parse(source) {
            Ok(_) => Vec::new(),
            Err(found) => found
                .into_iter()
                .map(|(span, p)| (source[span].to_string(), p))
                .collect(),
        }
    }

    const HEAD: &str = "name = \"t\"\ndefault_language = \"en\"\n";

    #[test]
    fn reads_steps_and_blocks() {
        let src = format!(
            "{HEAD}[[steps]]\nstep = \"play\"\nprompt = \"hi\"\n\n[[steps]]\nstep = \"hangup\"\n\n[[blocks.b]]\nstep = \"success_point\"\n"
        );
        let raw = parse(&src).unwrap();
        assert_eq!(raw.steps.len(), 2);
        assert!(matches!(raw.steps[0].body, StepBody::Play(_)));
        assert_eq!(raw.blocks.len(), 1);
        assert_eq!(raw.blocks[0].name, "b");
        assert_eq!(&src[raw.steps[1].span.clone()], "[[steps]]");
    }

    #[test]
    fn unknown_step_points_at_the_name() {
        let src = format!("{HEAD}[[steps]]\nstep = \"paly\"\nprompt = \"hi\"\n");
        let p = problems(&src);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "\"paly\"");
        assert!(matches!(&p[0].1, Problem::UnknownStep { suggestion: Some(s), .. } if s == "play"));
    }

    #[test]
    fn unknown_and_missing_keys() {
        let src = format!(
            "{HEAD}[[steps]]\nstep = \"play\"\npromt = \"hi\"\n[[steps]]\nstep = \"pause\"\n[[steps]]\nprompt = \"x\"\n"
        );
        let p = problems(&src);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(p[0].0, "promt");
        assert!(
            p[0].1.to_string().contains("expected `prompt`"),
            "{}",
            p[0].1
        );
        assert_eq!(p[1].0, "[[steps]]");
        assert!(p[1].1.to_string().contains("missing field `ms`"));
        assert!(matches!(p[2].1, Problem::MissingStepKind { .. }));
    }

    #[test]
    fn amount_literals() {
        let src = format!(
            "{HEAD}[[steps]]\nstep = \"branch\"\nfield = \"X\"\nabove = 99.5\nthen = \"b\"\n"
        );
        let p = problems(&src);
        assert_eq!(p[0].0, "99.5");
        assert!(p[0].1.to_string().contains("as a string"));
        let ok = format!("{HEAD}[[steps]]\nstep = \"branch\"\nfield = \"X\"\nabove = 100\n");
        assert!(problems(&ok).is_empty());
    }

    #[test]
    fn syntax_errors_and_bad_shapes() {
        let p = problems("name = \n");
        assert!(matches!(p[0].1, Problem::Syntax { .. }));
        let p = problems(&format!("{HEAD}steps = 3\n"));
        assert!(matches!(p[0].1, Problem::NotAStepList { .. }));
        let p = problems(&format!("{HEAD}stesp = 3\n[[steps]]\nstep = \"hangup\"\n"));
        assert!(
            p[0].1.to_string().contains("unknown field `stesp`"),
            "{p:?}"
        );
        let p = problems(HEAD);
        assert!(matches!(p[0].1, Problem::NoSteps));
    }
}
