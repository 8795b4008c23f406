//! A loaded script: checked against the audio catalogue and the known record
//! fields, its block names resolved, ready for any number of [`crate::Run`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::SourceMap;
use crate::speak::{Amount, ValueKind};
use crate::template::MessageTemplate;
use crate::{format, validate, AudioCatalog, ClipRef, RecordFields, ScriptError};

/// Index of a block in [`Script::blocks`]; the main `steps` list is block 0.
pub(crate) type BlockId = usize;

/// The main step list.
pub(crate) const MAIN: BlockId = 0;

/// A voice script, loaded and checked. Share it between calls with an `Arc`.
#[derive(Debug)]
pub struct Script {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) default_language: String,
    pub(crate) languages: Vec<String>,
    pub(crate) custom_fields: Vec<String>,
    /// `blocks[MAIN]` is the `steps` list, named `steps`.
    pub(crate) blocks: Vec<Block>,
    /// Every record field the script reads, including `PERSON_LANGUAGE`.
    pub(crate) fields: BTreeSet<String>,
    /// Every clip the script may play, in all its languages.
    pub(crate) clips: BTreeSet<ClipRef>,
    /// The message templates, by name.
    pub(crate) templates: BTreeMap<String, MessageTemplate>,
    /// The template e-mailed to records with `SERVICES_EMAIL=Y`.
    pub(crate) email_template: Option<String>,
}

/// A list of steps: the main one or a named block.
#[derive(Debug)]
pub(crate) struct Block {
    pub name: String,
    pub steps: Vec<Step>,
}

/// A checked step.
#[derive(Debug)]
pub(crate) enum Step {
    Play {
        prompt: String,
    },
    Say {
        field: String,
        kind: ValueKind,
        /// Amounts only: the field naming the currency.
        currency_field: Option<String>,
        with_year: bool,
    },
    Pause {
        ms: u32,
    },
    SuccessPoint,
    Branch {
        condition: Condition,
        then: Option<BlockId>,
        otherwise: Option<BlockId>,
    },
    Menu(Box<Menu>),
    Output {
        key: String,
        value: String,
    },
    Hangup,
    Gather(Box<Gather>),
    Forward {
        prompt: Option<String>,
        failed: Option<BlockId>,
        closed: Option<BlockId>,
    },
    Sms {
        template: String,
    },
}

/// A digit-collecting step.
#[derive(Debug)]
pub(crate) struct Gather {
    pub prompt: String,
    /// The result key the digits are reported under.
    pub key: String,
    pub min_digits: u32,
    pub max_digits: u32,
    pub terminator: Option<char>,
    pub first_digit_timeout_ms: u32,
    pub inter_digit_timeout_ms: u32,
    pub retries: u32,
    pub no_input_prompt: Option<String>,
    pub invalid_prompt: Option<String>,
    pub then: Option<BlockId>,
    pub no_input: Option<BlockId>,
}

/// A test on one record field.
#[derive(Debug)]
pub(crate) struct Condition {
    pub field: String,
    pub test: Test,
}

#[derive(Debug)]
pub(crate) enum Test {
    /// Equal after trimming, ASCII case ignored.
    Equals(String),
    /// Present and not blank.
    Present,
    /// Missing or blank.
    Empty,
    /// An amount strictly above.
    Above(Amount),
    /// An amount strictly below.
    Below(Amount),
}

/// A DTMF menu.
#[derive(Debug)]
pub(crate) struct Menu {
    pub prompt: String,
    pub options: BTreeMap<char, BlockId>,
    pub timeout_ms: u32,
    pub retries: u32,
    pub no_input_prompt: Option<String>,
    pub invalid_prompt: Option<String>,
    pub no_input: Option<BlockId>,
    pub invalid: Option<BlockId>,
}

impl Script {
    /// Reads and checks the script at `path`. Problems name the path as
    /// given.
    pub fn load(path: &Path, catalog: &AudioCatalog) -> Result<Script, ScriptError> {
        let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Script::parse(&source, &path.display().to_string(), catalog)
    }

    /// Reads and checks script text; `file_name` is used in messages.
    pub fn parse(
        source: &str,
        file_name: &str,
        catalog: &AudioCatalog,
    ) -> Result<Script, ScriptError> {
        let map = SourceMap::new(file_name, source);
        let invalid = |found: Vec<format::Found>| ScriptError::Invalid {
            diagnostics: found
                .into_iter()
                .map(|(span, problem)| map.diagnostic(&span, problem))
                .collect(),
        };
        let raw = format::parse(source).map_err(invalid)?;
        validate::validate(raw, source, catalog).map_err(invalid)
    }

    /// The script's `name`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The script's `description`, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The language used when the record's `PERSON_LANGUAGE` is missing or
    /// not one of [`Script::languages`].
    pub fn default_language(&self) -> &str {
        &self.default_language
    }

    /// The languages the script can be spoken in (the default first when
    /// `languages` was not given).
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// The script's `custom_fields`.
    pub fn custom_fields(&self) -> &[String] {
        &self.custom_fields
    }

    /// Every record field a run of this script reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(String::as_str)
    }

    /// Whether the script defines a block with this name.
    pub fn has_block(&self, name: &str) -> bool {
        self.blocks.iter().skip(1).any(|b| b.name == name)
    }

    /// Every clip a run of this script may play, in all its languages: its
    /// prompts and the segments of every value kind it speaks. The engine can
    /// decode exactly these at load time.
    pub fn required_clips(&self) -> impl Iterator<Item = &ClipRef> {
        self.clips.iter()
    }

    /// The message templates (`[templates.<name>]`), by name.
    pub fn templates(&self) -> impl Iterator<Item = &MessageTemplate> {
        self.templates.values()
    }

    /// The template called `name`.
    pub fn template(&self, name: &str) -> Option<&MessageTemplate> {
        self.templates.get(name)
    }

    /// The template e-mailed to records with `SERVICES_EMAIL=Y`
    /// (`email_template`), if the script names one.
    pub fn email_template(&self) -> Option<&MessageTemplate> {
        self.email_template
            .as_deref()
            .and_then(|name| self.templates.get(name))
    }

    /// The language the script speaks and writes to `record`: its
    /// `PERSON_LANGUAGE` when that is one of the script's languages,
    /// otherwise the default language (as a [`crate::Run`] chooses).
    pub fn language_for(&self, record: &dyn RecordFields) -> &str {
        let requested = record
            .field(crate::LANGUAGE_FIELD)
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let primary = requested
            .and_then(|raw| raw.split(['-', '_']).next())
            .map(|p| p.trim().to_ascii_lowercase());
        match primary.and_then(|p| self.languages.iter().find(|l| **l == p)) {
            Some(language) => language,
            None => &self.default_language,
        }
    }
}
