//! The error types of this crate: what went wrong loading a script (with the
//! file, line and column of each problem), building the audio catalogue, and
//! speaking a record value.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {}: {source}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid script. Holds every problem found, in source
    /// order; there is at least one.
    #[error("{}", DiagnosticList(diagnostics))]
    Invalid {
        /// The problems, each with its place in the file.
        diagnostics: Vec<Diagnostic>,
    },
}

impl ScriptError {
    /// The problems found in the script text; empty for [`ScriptError::Read`].
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScriptError::Read { .. } => &[],
            ScriptError::Invalid { diagnostics } => diagnostics,
        }
    }
}

struct DiagnosticList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagnosticList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

/// One problem in a script, with its place: `file:line:column: problem`.
/// Lines and columns count from 1; columns count characters, not bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name given to [`crate::Script::parse`] (or the path given to
    /// [`crate::Script::load`]).
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// What is wrong and what was expected.
    pub problem: Problem,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.problem
        )
    }
}

/// What is wrong with a script. Every message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The text is not valid TOML (message from the TOML parser).
    #[error("{message}")]
    Syntax {
        /// The parser's description.
        message: String,
    },
    /// A key is unknown, missing or of the wrong type (message from the
    /// TOML deserializer, which names what it expected).
    #[error("{context}: {message}")]
    Shape {
        /// Where: `script header` or `step "menu"`.
        context: String,
        /// The deserializer's description.
        message: String,
    },
    /// `steps` is missing or empty.
    #[error("a script needs at least one step; expected [[steps]] tables")]
    NoSteps,
    /// `steps`, or a block, is not an array of tables.
    #[error("{what} must be an array of step tables ([[{what}]]); found {found}")]
    NotAStepList {
        /// `steps` or `blocks.<name>`.
        what: String,
        /// The TOML type found.
        found: &'static str,
    },
    /// `blocks` is not a table of step lists.
    #[error("blocks must be a table of named step lists ([[blocks.<name>]]); found {found}")]
    BlocksNotATable {
        /// The TOML type found.
        found: &'static str,
    },
    /// A step is not a table.
    #[error("a step must be a table; found {found}")]
    NotAStep {
        /// The TOML type found.
        found: &'static str,
    },
    /// A step table has no `step` key.
    #[error("this step has no \"step\" key; expected step = one of {}", expected.join(", "))]
    MissingStepKind {
        /// The step names.
        expected: &'static [&'static str],
    },
    /// The `step` key names no known step.
    #[error("unknown step \"{found}\"{}; expected one of {}", suggest(suggestion), expected.join(", "))]
    UnknownStep {
        /// What the script says.
        found: String,
        /// The closest step name, when one is close.
        suggestion: Option<String>,
        /// The step names.
        expected: &'static [&'static str],
    },
    /// A prompt has no recording in one of the script's languages.
    #[error("prompt \"{prompt}\" has no recording for language \"{language}\"; expected a file {language}/{prompt}.wav under one of the audio roots")]
    MissingPrompt {
        /// The prompt name.
        prompt: String,
        /// The language that lacks it.
        language: String,
    },
    /// A segment needed to speak a value is missing in one of the script's
    /// languages.
    #[error("cannot speak {kind} in language \"{language}\": segment \"{segment}\" is missing; expected a file {language}/{segment}.wav under one of the audio roots")]
    MissingSegment {
        /// The value kind (`amount`, `date`, ...).
        kind: &'static str,
        /// The language that lacks it.
        language: String,
        /// The first missing segment.
        segment: String,
    },
    /// A say step in a script whose languages include one we cannot speak.
    #[error("cannot speak values in language \"{language}\"; expected one of {}", supported.join(", "))]
    UnsupportedLanguage {
        /// The language.
        language: String,
        /// The languages values can be spoken in.
        supported: &'static [&'static str],
    },
    /// A record field that is neither standard nor declared.
    #[error("unknown field \"{field}\"{}; expected a standard field (SECTION_FIELD, see formats/README.md) or one listed in custom_fields", suggest(suggestion))]
    UnknownField {
        /// The field name.
        field: String,
        /// The closest known field, when one is close.
        suggestion: Option<String>,
    },
    /// A custom field name that is badly formed or repeats a known one.
    #[error("custom field \"{field}\" {reason}")]
    BadCustomField {
        /// The field name.
        field: String,
        /// Why it is rejected, phrased after the name.
        reason: &'static str,
    },
    /// A language code that is not two lowercase letters, or is repeated.
    #[error("language \"{language}\" {reason}")]
    BadLanguage {
        /// The code.
        language: String,
        /// Why it is rejected, phrased after the code.
        reason: &'static str,
    },
    /// A reference to a block that does not exist.
    #[error("no block named \"{name}\"; expected one of: {}", if known.is_empty() { "(none; define one with [[blocks.<name>]])".to_string() } else { known.join(", ") })]
    UnknownBlock {
        /// The name used.
        name: String,
        /// The blocks the script defines.
        known: Vec<String>,
    },
    /// Blocks that run each other in a loop.
    #[error("blocks may not run themselves: {}", cycle.join(" -> "))]
    BlockCycle {
        /// The loop, first block repeated at the end.
        cycle: Vec<String>,
    },
    /// A number outside its allowed range.
    #[error("{key} = {found} is out of range; expected {min} to {max}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value found.
        found: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A string that must not be empty.
    #[error("{key} must not be empty")]
    Empty {
        /// The key.
        key: &'static str,
    },
    /// A branch step without exactly one test.
    #[error("a branch needs exactly one test; expected one of equals, present, empty, above, below (found {found})")]
    BranchTest {
        /// How many tests were given.
        found: usize,
    },
    /// `present = false` or `empty = false`.
    #[error("{key} = false is not allowed; write {instead} = true instead")]
    FalseTest {
        /// The key written.
        key: &'static str,
        /// The key to use instead.
        instead: &'static str,
    },
    /// A branch step with neither `then` nor `else`.
    #[error(
        "a branch needs a block to run; expected then = \"<block>\" and/or else = \"<block>\""
    )]
    BranchWithoutBlock,
    /// An amount literal in a condition that does not parse.
    #[error("{key}: {source}")]
    BadAmount {
        /// The key.
        key: &'static str,
        /// Why it does not parse.
        source: crate::SpeakError,
    },
    /// A key that only applies to another value kind.
    #[error("{key} only applies to say steps with as = \"{applies_to}\"")]
    KeyNotForKind {
        /// The key.
        key: &'static str,
        /// The kind it belongs to.
        applies_to: &'static str,
    },
    /// A menu option that is not a single DTMF key.
    #[error("menu option \"{key}\" is not a key; expected one of 0-9, *, #")]
    BadMenuKey {
        /// The key as written.
        key: String,
    },
    /// A gather terminator that is not `#` or `*`.
    #[error("terminator \"{key}\" is not allowed; expected \"#\" or \"*\"")]
    BadTerminator {
        /// The key as written.
        key: String,
    },
    /// A menu without options.
    #[error("a menu needs at least one option; expected options = {{ 1 = \"<block>\", ... }}")]
    NoMenuOptions,
    /// An `sms` step or `email_template` names a template the script does
    /// not define.
    #[error("no message template named \"{name}\"{}; expected {}", suggest(suggestion), if known.is_empty() { format!("a [templates.{name}] table") } else { format!("one of: {}", known.join(", ")) })]
    UnknownTemplate {
        /// The name used.
        name: String,
        /// The closest template name, when one is close.
        suggestion: Option<String>,
        /// The templates the script defines.
        known: Vec<String>,
    },
    /// A template used for the other channel.
    #[error(
        "template \"{name}\" has channel = \"{found}\"; {used_by} needs channel = \"{expected}\""
    )]
    TemplateChannel {
        /// The template.
        name: String,
        /// Its channel.
        found: &'static str,
        /// The channel needed.
        expected: &'static str,
        /// What uses it: `an sms step`, `email_template`.
        used_by: &'static str,
    },
    /// A language of the script without a text (or an e-mail's subject) in
    /// a template.
    #[error("template \"{template}\" has no {key} for language \"{language}\"; expected {key}.{language} = \"...\"")]
    MissingTemplateText {
        /// The template.
        template: String,
        /// `text` or `subject`.
        key: &'static str,
        /// The language that lacks it.
        language: String,
    },
    /// A template text in a language the script does not list.
    #[error("template \"{template}\" has a {key} for language \"{language}\", which is not one of the script's languages ({})", languages.join(", "))]
    TemplateLanguage {
        /// The template.
        template: String,
        /// `text` or `subject`.
        key: &'static str,
        /// The language written.
        language: String,
        /// The script's languages.
        languages: Vec<String>,
    },
    /// A subject on an SMS template.
    #[error("an SMS has no subject; remove subject from template \"{template}\" or make it channel = \"email\"")]
    SubjectOnSms {
        /// The template.
        template: String,
    },
    /// A placeholder in a template text that does not read.
    #[error("{reason}")]
    BadPlaceholder {
        /// What is wrong and what was expected.
        reason: &'static str,
    },
    /// A template name with characters outside `A-Z a-z 0-9 _ -`.
    #[error("template name \"{name}\" may only hold letters, digits, '_' and '-'")]
    BadTemplateName {
        /// The name as written.
        name: String,
    },
    /// An output key with characters outside `A-Z a-z 0-9 _ - .`.
    #[error("output key \"{key}\" may only hold letters, digits, '_', '-' and '.'")]
    BadOutputKey {
        /// The key as written.
        key: String,
    },
}

fn suggest(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => String::new(),
    }
}

/// Turns byte offsets into lines and columns for one source text.
pub(crate) struct SourceMap<'a> {
    file: &'a str,
    source: &'a str,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(file: &'a str, source: &'a str) -> Self {
        SourceMap { file, source }
    }

    /// A diagnostic at the start of `span`.
    pub(crate) fn diagnostic(&self, span: &Range<usize>, problem: Problem) -> Diagnostic {
        let offset = span.start.min(self.source.len());
        // Step back to a character boundary so slicing cannot fail.
        let mut offset = offset;
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            problem,
        }
    }
}

/// The audio catalogue could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A root is missing or is not a directory.
    #[error("audio root {} is not a directory", path.display())]
    NotADirectory {
        /// The root.
        path: PathBuf,
    },
    /// A directory could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// Why listing failed.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder name that is not UTF-8 (clip names are text).
    #[error("audio file name {} is not valid UTF-8", path.display())]
    NonUtf8Name {
        /// The offending path.
        path: PathBuf,
    },
    /// Folders nested deeper than we follow (also stops symlink loops).
    #[error("audio folder {} is nested deeper than {max} levels", path.display())]
    TooDeep {
        /// The folder.
        path: PathBuf,
        /// The depth limit.
        max: usize,
    },
}

/// A record value that cannot be spoken. The interpreter reports these as
/// [`crate::Action::Warning`] and skips the step; they are also used for
/// amounts written in a script.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpeakError {
    /// The field is missing or blank.
    #[error("the field is empty")]
    Empty,
    /// Not an amount: only digits, one decimal mark and grouping marks are allowed.
    #[error("\"{value}\" is not an amount; expected digits with an optional decimal mark, e.g. 1250.50 or 1.250,50")]
    NotAnAmount {
        /// The text.
        value: String,
    },
    /// Grouping marks that do not split the whole part into groups of three.
    #[error("\"{value}\" has misplaced thousands separators; expected groups of three digits, e.g. 1.250.000,00")]
    BadGrouping {
        /// The text.
        value: String,
    },
    /// More than two decimals that are not zero.
    #[error("\"{value}\" has more than two decimals; expected at most cents")]
    TooManyDecimals {
        /// The text.
        value: String,
    },
    /// A negative amount or number.
    #[error("\"{value}\" is negative; only zero and positive values can be spoken")]
    Negative {
        /// The text.
        value: String,
    },
    /// A value above what we speak.
    #[error("\"{value}\" is too large; expected at most {max}")]
    TooLarge {
        /// The text.
        value: String,
        /// The largest value spoken.
        max: u64,
    },
    /// Not a whole number.
    #[error("\"{value}\" is not a whole number; expected digits only")]
    NotANumber {
        /// The text.
        value: String,
    },
    /// Not a date in a format we read.
    #[error("\"{value}\" is not a date; expected YYYY-MM-DD or DD-MM-YYYY")]
    NotADate {
        /// The text.
        value: String,
    },
    /// Not a time in a format we read.
    #[error("\"{value}\" is not a time; expected HH:MM (24-hour)")]
    NotATime {
        /// The text.
        value: String,
    },
    /// Digits mode met a character it cannot say. The value itself is not
    /// repeated (it is often a phone number).
    #[error(
        "the value holds {character:?}, which is not a digit or a separator (space - . / + ( ))"
    )]
    NotDigits {
        /// The first offending character.
        character: char,
    },
    /// Digits mode found no digits at all.
    #[error("the value holds no digits")]
    NoDigits,
    /// A currency we have no words for.
    #[error("currency \"{code}\" is not supported; expected EUR, USD or GBP")]
    UnsupportedCurrency {
        /// The code found.
        code: String,
    },
    /// A language we have no speaker for.
    #[error("cannot speak values in language \"{language}\"")]
    UnsupportedLanguage {
        /// The language.
        language: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let source = "a = 1\nb = \"é\" x\n";
        let map = SourceMap::new("f.toml", source);
        let offset = source.find('x').unwrap_or(0);
        let d = map.diagnostic(&(offset..offset + 1), Problem::NoSteps);
        assert_eq!((d.line, d.column), (2, 9));
        assert!(d.to_string().starts_with("f.toml:2:9: "));
    }

    #[test]
    fn offset_past_the_end_is_clamped() {
        let map = SourceMap::new("f.toml", "ab");
        let d = map.diagnostic(&(10..12), Problem::NoSteps);
        assert_eq!((d.line, d.column), (1, 3));
    }
}
