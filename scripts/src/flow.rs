//! A loaded script's structure as plain, serialisable data ([`Flow`]): its
//! header, its steps and named blocks with block references by name, and
//! what the steps use (prompts, SMS templates, whether there is a point of
//! success). For front ends that show a script (the portal); the
//! interpreter never reads it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::script::{Block, BlockId, Script, Step, Test, MAIN};
use crate::speak::Amount;

/// A script's structure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub name: String,
    pub description: Option<String>,
    pub default_language: String,
    pub languages: Vec<String>,
    pub custom_fields: Vec<String>,
    /// The main step list.
    pub steps: Vec<FlowStep>,
    /// The named blocks, by name.
    pub blocks: BTreeMap<String, Vec<FlowStep>>,
    /// Every prompt a step names (played, asked or announced), sorted;
    /// each exists in every language of the script.
    pub prompts: Vec<String>,
    /// Every SMS template an `sms` step names, sorted.
    pub sms_templates: Vec<String>,
    /// The template e-mailed to records with `SERVICES_EMAIL=Y`.
    pub email_template: Option<String>,
    /// Whether any step (main or block) is a `success_point`.
    pub has_success_point: bool,
}

/// One step, tagged by its kind as in the script file (`"step": "play"`).
/// Blocks are named; absent options are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FlowStep {
    Play {
        prompt: String,
    },
    Say {
        field: String,
        /// `amount`, `number`, `digits`, `date` or `time`.
        #[serde(rename = "as")]
        kind: String,
        with_year: bool,
        currency_field: Option<String>,
    },
    Pause {
        ms: u32,
    },
    SuccessPoint,
    Branch {
        field: String,
        /// `equals`, `present`, `empty`, `above` or `below`.
        test: String,
        /// The text of `equals`, the amount of `above`/`below`
        /// (`"500.00"`); `null` for `present` and `empty`.
        value: Option<String>,
        then: Option<String>,
        #[serde(rename = "else")]
        otherwise: Option<String>,
    },
    Menu {
        prompt: String,
        /// Key (`0`-`9`, `*`, `#`) to block.
        options: BTreeMap<String, String>,
        timeout_ms: u32,
        retries: u32,
        no_input_prompt: Option<String>,
        invalid_prompt: Option<String>,
        no_input: Option<String>,
        invalid: Option<String>,
    },
    Output {
        key: String,
        value: String,
    },
    Hangup,
    Gather {
        prompt: String,
        key: String,
        min_digits: u32,
        max_digits: u32,
        terminator: Option<String>,
        first_digit_timeout_ms: u32,
        inter_digit_timeout_ms: u32,
        retries: u32,
        no_input_prompt: Option<String>,
        invalid_prompt: Option<String>,
        then: Option<String>,
        no_input: Option<String>,
    },
    Forward {
        prompt: Option<String>,
        failed: Option<String>,
        closed: Option<String>,
    },
    Sms {
        template: String,
    },
}

fn amount(a: Amount) -> String {
    format!("{}.{:02}", a.whole(), a.cents())
}

impl Script {
    /// The script's structure as plain data.
    pub fn flow(&self) -> Flow {
        let name_of = |id: Option<BlockId>| -> Option<String> {
            id.and_then(|id| self.blocks.get(id))
                .map(|b| b.name.clone())
        };
        let mut prompts = BTreeSet::new();
        let mut templates = BTreeSet::new();
        let mut success = false;
        let mut steps_of = |block: &Block| -> Vec<FlowStep> {
            block
                .steps
                .iter()
                .map(|step| {
                    let flow = step_flow(step, &name_of);
                    match &flow {
                        FlowStep::Play { prompt } => {
                            prompts.insert(prompt.clone());
                        }
                        FlowStep::Menu {
                            prompt,
                            no_input_prompt,
                            invalid_prompt,
                            ..
                        }
                        | FlowStep::Gather {
                            prompt,
                            no_input_prompt,
                            invalid_prompt,
                            ..
                        } => {
                            prompts.insert(prompt.clone());
                            prompts.extend(no_input_prompt.iter().cloned());
                            prompts.extend(invalid_prompt.iter().cloned());
                        }
                        FlowStep::Forward {
                            prompt: Some(p), ..
                        } => {
                            prompts.insert(p.clone());
                        }
                        FlowStep::Sms { template } => {
                            templates.insert(template.clone());
                        }
                        FlowStep::SuccessPoint => success = true,
                        _ => {}
                    }
                    flow
                })
                .collect()
        };
        let steps = self.blocks.get(MAIN).map(&mut steps_of).unwrap_or_default();
        let blocks = self
            .blocks
            .iter()
            .skip(1)
            .map(|b| (b.name.clone(), steps_of(b)))
            .collect();
        Flow {
            name: self.name.clone(),
            description: self.description.clone(),
            default_language: self.default_language.clone(),
            languages: self.languages.clone(),
            custom_fields: self.custom_fields.clone(),
            steps,
            blocks,
            prompts: prompts.into_iter().collect(),
            sms_templates: templates.into_iter().collect(),
            email_template: self.email_template.clone(),
            has_success_point: success,
        }
    }
}

fn step_flow(step: &Step, name_of: &dyn Fn(Option<BlockId>) -> Option<String>) -> FlowStep {
    match step {
        Step::Play { prompt } => FlowStep::Play {
            prompt: prompt.clone(),
        },
        Step::Say {
            field,
            kind,
            currency_field,
            with_year,
        } => FlowStep::Say {
            field: field.clone(),
            kind: kind.name().to_owned(),
            with_year: *with_year,
            currency_field: currency_field.clone(),
        },
        Step::Pause { ms } => FlowStep::Pause { ms: *ms },
        Step::SuccessPoint => FlowStep::SuccessPoint,
        Step::Branch {
            condition,
            then,
            otherwise,
        } => {
            let (test, value) = match &condition.test {
                Test::Equals(text) => ("equals", Some(text.clone())),
                Test::Present => ("present", None),
                Test::Empty => ("empty", None),
                Test::Above(a) => ("above", Some(amount(*a))),
                Test::Below(a) => ("below", Some(amount(*a))),
            };
            FlowStep::Branch {
                field: condition.field.clone(),
                test: test.to_owned(),
                value,
                then: name_of(*then),
                otherwise: name_of(*otherwise),
            }
        }
        Step::Menu(m) => FlowStep::Menu {
            prompt: m.prompt.clone(),
            options: m
                .options
                .iter()
                .filter_map(|(key, block)| Some((key.to_string(), name_of(Some(*block))?)))
                .collect(),
            timeout_ms: m.timeout_ms,
            retries: m.retries,
            no_input_prompt: m.no_input_prompt.clone(),
            invalid_prompt: m.invalid_prompt.clone(),
            no_input: name_of(m.no_input),
            invalid: name_of(m.invalid),
        },
        Step::Output { key, value } => FlowStep::Output {
            key: key.clone(),
            value: value.clone(),
        },
        Step::Hangup => FlowStep::Hangup,
        Step::Gather(g) => FlowStep::Gather {
            prompt: g.prompt.clone(),
            key: g.key.clone(),
            min_digits: g.min_digits,
            max_digits: g.max_digits,
            terminator: g.terminator.map(|c| c.to_string()),
            first_digit_timeout_ms: g.first_digit_timeout_ms,
            inter_digit_timeout_ms: g.inter_digit_timeout_ms,
            retries: g.retries,
            no_input_prompt: g.no_input_prompt.clone(),
            invalid_prompt: g.invalid_prompt.clone(),
            then: name_of(g.then),
            no_input: name_of(g.no_input),
        },
        Step::Forward {
            prompt,
            failed,
            closed,
        } => FlowStep::Forward {
            prompt: prompt.clone(),
            failed: name_of(*failed),
            closed: name_of(*closed),
        },
        Step::Sms { template } => FlowStep::Sms {
            template: template.clone(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use crate::{default_audio_root, AudioCatalog, Script};

    fn example(name: &str) -> Script {
        let catalog = AudioCatalog::from_roots(&[default_audio_root()]).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        Script::load(&path, &catalog).unwrap()
    }

    #[test]
    fn the_agent_example_names_its_blocks_prompts_and_template() {
        let flow = example("notice_with_agent.toml").flow();
        assert_eq!(flow.name, "notice_with_agent");
        assert!(flow.has_success_point);
        assert_eq!(flow.sms_templates, ["payment_check_confirmation"]);
        assert!(flow.blocks.contains_key("voicemail"));
        assert!(!flow.prompts.is_empty());
        let json = serde_json::to_value(&flow).unwrap();
        let menu = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "menu")
            .expect("a menu step");
        for block in menu["options"].as_object().unwrap().values() {
            assert!(flow.blocks.contains_key(block.as_str().unwrap()));
        }
    }

    #[test]
    fn amounts_and_tests_are_written_as_in_the_file() {
        let flow = example("payment_reminder.toml").flow();
        let json = serde_json::to_value(&flow).unwrap();
        let branch = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "branch")
            .expect("a branch step");
        assert_eq!(branch["test"], "above");
        assert_eq!(branch["value"], "500.00");
        assert_eq!(flow.sms_templates, Vec::<String>::new());
    }
}
