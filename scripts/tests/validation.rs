//! Loading scripts: every error names the file, line and column and says
//! what was expected.
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};

use dialcast_scripts::speak::{inventory, ValueKind};
use dialcast_scripts::{AudioCatalog, ClipRef, Problem, Script, ScriptError};

/// en and nl prompts `hello` and `menu`; `only_en` in English only; every
/// segment in both languages except Dutch `say/25`.
fn catalog() -> AudioCatalog {
    let mut c = AudioCatalog::new();
    for lang in ["en", "nl"] {
        for p in ["hello", "menu"] {
            c.insert(ClipRef::new(lang, p), PathBuf::from("x.wav"));
        }
        for kind in ValueKind::ALL {
            for s in inventory(lang, kind).unwrap() {
                if !(lang == "nl" && s == "say/25") {
                    c.insert(ClipRef::new(lang, s), PathBuf::from("x.wav"));
                }
            }
        }
    }
    c.insert(ClipRef::new("en", "only_en"), PathBuf::from("x.wav"));
    c
}

fn errors(source: &str) -> Vec<String> {
    match Script::parse(source, "test.toml", &catalog()) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

fn one_error(source: &str) -> String {
    let e = errors(source);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap_or_default()
}

const HEAD: &str = r#"name = "t"
default_language = "en"
"#;

#[test]
fn a_valid_script_loads() {
    let source = format!(
        r#"{HEAD}description = "d"
[[steps]]
step = "play"
prompt = "hello"
"#
    );
    let script = Script::parse(&source, "test.toml", &catalog()).unwrap();
    assert_eq!(script.name(), "t");
    assert_eq!(script.description(), Some("d"));
    assert_eq!(script.languages(), ["en"]);
    assert_eq!(script.default_language(), "en");
    let clips: Vec<String> = script.required_clips().map(ToString::to_string).collect();
    assert_eq!(clips, ["en/hello"]);
}

#[test]
fn unknown_step_names_the_place_and_the_choices() {
    let e = one_error(&format!(
        r#"{HEAD}
[[steps]]
step = "paly"
prompt = "hello"
"#
    ));
    assert_eq!(
        e,
        "test.toml:5:8: unknown step \"paly\" (did you mean \"play\"?); expected one of play, say, pause, success_point, branch, menu, output, hangup, gather, forward, sms"
    );
}

#[test]
fn unknown_and_missing_keys() {
    let e = errors(&format!(
        r#"{HEAD}
[[steps]]
step = "play"
promt = "hello"

[[steps]]
step = "say"
field = "INVOICE_AMOUNT_OPEN"
as = "amout"
"#
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("test.toml:6:1: step \"play\": unknown field `promt`, expected `prompt`"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(
            "test.toml:11:6: step \"say\": unknown variant `amout`, expected one of `amount`"
        ),
        "{}",
        e[1]
    );
}

#[test]
fn syntax_errors_have_a_place() {
    let e = one_error("name = \"t\"\ndefault_language = \"en\"\n[[steps]\n");
    assert!(e.starts_with("test.toml:3:"), "{e}");
}

#[test]
fn missing_prompt_in_one_language() {
    let e = one_error(
        r#"name = "t"
default_language = "en"
languages = ["en", "nl"]

[[steps]]
step = "play"
prompt = "only_en"
"#,
    );
    assert_eq!(
        e,
        "test.toml:7:10: prompt \"only_en\" has no recording for language \"nl\"; expected a file nl/only_en.wav under one of the audio roots"
    );
}

#[test]
fn missing_menu_prompts_are_found_too() {
    let e = errors(&format!(
        r#"{HEAD}[[steps]]
step = "menu"
prompt = "nope"
options = {{ 1 = "b" }}
no_input_prompt = "nope2"

[[blocks.b]]
step = "hangup"
"#
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("test.toml:5:10: prompt \"nope\""),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with("test.toml:7:19: prompt \"nope2\""),
        "{}",
        e[1]
    );
}

#[test]
fn unknown_field_unless_declared() {
    let body = r#"
[[steps]]
step = "say"
field = "APPOINTMENT_DATE"
as = "date"
"#;
    let e = one_error(&format!("{HEAD}{body}"));
    assert!(
        e.starts_with("test.toml:6:9: unknown field \"APPOINTMENT_DATE\""),
        "{e}"
    );
    assert!(e.contains("custom_fields"), "{e}");
    let declared = format!("{HEAD}custom_fields = [\"APPOINTMENT_DATE\"]\n{body}");
    assert_eq!(errors(&declared), Vec::<String>::new());
}

#[test]
fn unknown_field_suggests_the_standard_one() {
    let e = one_error(&format!(
        r#"{HEAD}[[steps]]
step = "branch"
field = "INVOICE_AMOUNT_OPN"
present = true
then = "b"
[[blocks.b]]
step = "hangup"
"#
    ));
    assert!(e.contains("(did you mean \"INVOICE_AMOUNT_OPEN\"?)"), "{e}");
    assert!(e.starts_with("test.toml:5:9:"), "{e}");
}

#[test]
fn bad_custom_fields() {
    let e = errors(&format!(
        "{HEAD}custom_fields = [\"lower\", \"INVOICE_NUMBER\", \"X\", \"X\"]\n[[steps]]\nstep = \"hangup\"\n"
    ));
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].contains("\"lower\" is not a field name"));
    assert!(e[1].contains("already a standard field"));
    assert!(e[2].contains("listed twice"));
}

#[test]
fn languages_are_checked() {
    let e = errors(
        "name = \"t\"\ndefault_language = \"de\"\nlanguages = [\"en\", \"EN\", \"en\"]\n[[steps]]\nstep = \"hangup\"\n",
    );
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with("test.toml:2:20: language \"de\" (default_language) is not listed"),
        "{}",
        e[0]
    );
    assert!(e[1].contains("\"EN\" is not an ISO 639-1 code"), "{}", e[1]);
    assert!(e[2].contains("listed twice"), "{}", e[2]);
}

#[test]
fn say_needs_a_speaker_and_its_segments() {
    let e = one_error(
        "name = \"t\"\ndefault_language = \"en\"\nlanguages = [\"en\", \"fr\"]\n\n[[steps]]\nstep = \"say\"\nfield = \"INVOICE_NUMBER\"\nas = \"digits\"\n",
    );
    assert!(
        e.starts_with(
            "test.toml:5:1: cannot speak values in language \"fr\"; expected one of en, nl"
        ),
        "{e}"
    );
    let e = one_error(
        "name = \"t\"\ndefault_language = \"en\"\nlanguages = [\"en\", \"nl\"]\n\n[[steps]]\nstep = \"say\"\nfield = \"INVOICE_AMOUNT_OPEN\"\nas = \"amount\"\n",
    );
    assert!(
        e.starts_with(
            "test.toml:5:1: cannot speak amount in language \"nl\": segment \"say/25\" is missing"
        ),
        "{e}"
    );
    // Digits do not need say/25.
    let ok = "name = \"t\"\ndefault_language = \"en\"\nlanguages = [\"en\", \"nl\"]\n\n[[steps]]\nstep = \"say\"\nfield = \"INVOICE_NUMBER\"\nas = \"digits\"\n";
    assert_eq!(errors(ok), Vec::<String>::new());
}

#[test]
fn say_options_belong_to_their_kind() {
    let e = errors(&format!(
        "{HEAD}[[steps]]\nstep = \"say\"\nfield = \"INVOICE_NUMBER\"\nas = \"number\"\nwith_year = true\ncurrency_field = \"INVOICE_CURRENCY\"\n"
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("test.toml:7:13: with_year only applies to say steps with as = \"date\""),
        "{}",
        e[0]
    );
    assert!(e[1].contains("currency_field only applies"), "{}", e[1]);
}

#[test]
fn blocks_must_exist_and_not_loop() {
    let e = errors(&format!(
        r#"{HEAD}[[steps]]
step = "branch"
field = "PERSON_LANGUAGE"
present = true
then = "a"
else = "nowhere"

[[blocks.a]]
step = "branch"
field = "PERSON_LANGUAGE"
present = true
then = "b"

[[blocks.b]]
step = "branch"
field = "PERSON_LANGUAGE"
present = true
then = "a"
"#
    ));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(
        e[0],
        "test.toml:8:8: no block named \"nowhere\"; expected one of: a, b"
    );
    assert_eq!(
        e[1],
        "test.toml:20:8: blocks may not run themselves: a -> b -> a"
    );
}

#[test]
fn branch_tests_are_checked() {
    let e = errors(&format!(
        r#"{HEAD}[[steps]]
step = "branch"
field = "PERSON_LANGUAGE"
present = true
empty = true
then = "b"

[[steps]]
step = "branch"
field = "PERSON_LANGUAGE"
present = false
then = "b"

[[steps]]
step = "branch"
field = "INVOICE_AMOUNT_OPEN"
above = "1,2,3"
then = "b"

[[steps]]
step = "branch"
field = "INVOICE_AMOUNT_OPEN"
below = 3

[[blocks.b]]
step = "hangup"
"#
    ));
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(
        e[0].starts_with("test.toml:3:1: a branch needs exactly one test"),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(
            "test.toml:13:11: present = false is not allowed; write empty = true instead"
        ),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with("test.toml:19:9: above: \"1,2,3\" has misplaced thousands separators"),
        "{}",
        e[2]
    );
    assert!(
        e[3].starts_with("test.toml:22:1: a branch needs a block to run"),
        "{}",
        e[3]
    );
}

#[test]
fn menu_keys_and_ranges() {
    let e = errors(&format!(
        r#"{HEAD}[[steps]]
step = "menu"
prompt = "menu"
options = {{ 1 = "b", 10 = "b", "*" = "b" }}
timeout_ms = 100
retries = 9

[[steps]]
step = "pause"
ms = 0

[[steps]]
step = "menu"
prompt = "menu"
options = {{}}

[[blocks.b]]
step = "hangup"
"#
    ));
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(
        e[0].starts_with(
            "test.toml:6:22: menu option \"10\" is not a key; expected one of 0-9, *, #"
        ),
        "{}",
        e[0]
    );
    assert!(
        e[1].starts_with(
            "test.toml:7:14: timeout_ms = 100 is out of range; expected 1000 to 60000"
        ),
        "{}",
        e[1]
    );
    assert!(
        e[2].starts_with("test.toml:8:11: retries = 9 is out of range; expected 0 to 5"),
        "{}",
        e[2]
    );
    assert!(
        e[3].starts_with("test.toml:12:6: ms = 0 is out of range"),
        "{}",
        e[3]
    );
    assert!(
        e[4].starts_with("test.toml:17:11: a menu needs at least one option"),
        "{}",
        e[4]
    );
}

#[test]
fn output_keys_are_checked() {
    let e = one_error(&format!(
        "{HEAD}[[steps]]\nstep = \"output\"\nkey = \"my key\"\nvalue = \"v\"\n"
    ));
    assert!(e.starts_with("test.toml:5:7: output key \"my key\""), "{e}");
}

#[test]
fn header_problems() {
    let e = one_error("default_language = \"en\"\n[[steps]]\nstep = \"hangup\"\n");
    assert!(e.contains("missing field `name`"), "{e}");
    let e = one_error("name = \"t\"\ndefault_language = \"en\"\n");
    assert_eq!(
        e,
        "test.toml:1:1: a script needs at least one step; expected [[steps]] tables"
    );
    let e = one_error("name = \" \"\ndefault_language = \"en\"\n[[steps]]\nstep = \"hangup\"\n");
    assert_eq!(e, "test.toml:1:8: name must not be empty");
    let e = one_error(&format!("{HEAD}[[steps]]\nstep = 5\n"));
    assert!(
        e.starts_with("test.toml:4:8: step: expected the step name as a string"),
        "{e}"
    );
    let e = one_error(&format!("{HEAD}blocks = 1\n[[steps]]\nstep = \"hangup\"\n"));
    assert!(
        e.starts_with("test.toml:3:10: blocks must be a table"),
        "{e}"
    );
}

#[test]
fn every_problem_is_reported_in_source_order() {
    let e = errors(&format!(
        r#"{HEAD}[[steps]]
step = "play"
prompt = "nope"

[[steps]]
step = "say"
field = "NOPE"
as = "number"

[[steps]]
step = "pause"
ms = 100000
"#
    ));
    let lines: Vec<&str> = e
        .iter()
        .map(|s| s.split(':').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(lines, ["5", "9", "14"], "{e:#?}");
}

#[test]
fn load_names_the_path() {
    let path = Path::new("/nonexistent/script.toml");
    let err = Script::load(path, &catalog()).unwrap_err();
    assert!(matches!(err, ScriptError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/script.toml"));

    let dir = std::env::temp_dir().join(format!("dialcast-scripts-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, format!("{HEAD}[[steps]]\nstep = \"paly\"\n")).unwrap();
    let err = Script::load(&file, &catalog()).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (4, 8));
    assert!(d.file.ends_with("bad.toml"));
    assert!(matches!(d.problem, Problem::UnknownStep { .. }));
}

#[test]
fn gather_forward_and_sms_steps_are_checked() {
    let ok = format!(
        r##"{HEAD}
[[steps]]
step = "gather"
prompt = "menu"
key = "account"
min_digits = 4
max_digits = 8
terminator = "#"
then = "thanks"
no_input = "thanks"

[[steps]]
step = "forward"
prompt = "hello"
failed = "thanks"
closed = "thanks"

[[steps]]
step = "sms"
template = "confirmation"

[[blocks.thanks]]
step = "play"
prompt = "hello"

[templates.confirmation]
channel = "sms"
text.en = "Thanks"
"##
    );
    assert_eq!(errors(&ok), Vec::<String>::new());

    let bad = errors(&format!(
        r#"{HEAD}
[[steps]]
step = "gather"
prompt = "menu"
key = "a b"
min_digits = 5
max_digits = 4
terminator = "0"
first_digit_timeout_ms = 10

[[steps]]
step = "forward"
failed = "nowhere"

[[steps]]
step = "sms"
template = " "
"#
    ));
    assert_eq!(bad.len(), 6, "{bad:#?}");
    assert!(bad[0].contains("output key \"a b\""), "{}", bad[0]);
    assert!(
        bad[1].contains("min_digits = 5 is out of range; expected 1 to 4"),
        "{}",
        bad[1]
    );
    assert!(bad[2].contains("terminator \"0\""), "{}", bad[2]);
    assert!(bad[3].contains("first_digit_timeout_ms = 10"), "{}", bad[3]);
    assert!(bad[4].contains("no block named \"nowhere\""), "{}", bad[4]);
    assert!(bad[5].contains("template must not be empty"), "{}", bad[5]);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = include_str!("../examples/notice_with_menu.toml");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Arbitrary text is refused with diagnostics, never a panic.
        #[test]
        fn on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = Script::parse(&text, "fuzz.toml", &catalog());
        }

        /// Damaged versions of a real script: a slice replaced by random text.
        #[test]
        fn on_damaged_scripts(start in 0usize..EXAMPLE.len(), len in 0usize..40, junk in "[\\PC\\n]{0,12}") {
            let mut start = start;
            while !EXAMPLE.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(EXAMPLE.len());
            while !EXAMPLE.is_char_boundary(end) {
                end -= 1;
            }
            let damaged = format!("{}{}{}", &EXAMPLE[..start], junk, &EXAMPLE[end..]);
            if let Err(e) = Script::parse(&damaged, "fuzz.toml", &catalog()) {
                for d in e.diagnostics() {
                    prop_assert!(d.line >= 1 && d.column >= 1);
                    prop_assert!(d.line <= damaged.lines().count() + 1, "{}", d);
                }
            }
        }
    }
}

#[test]
fn message_templates_are_checked_and_point_at_the_line() {
    let head = "name = \"t\"\ndefault_language = \"en\"\nlanguages = [\"en\", \"nl\"]\n";
    let e = errors(
        &(head.to_string()
            + r#"email_template = "confirmaton"

[[steps]]
step = "sms"
template = "letter"

[[steps]]
step = "sms"
template = "confirmaton"

[templates.confirmation]
channel = "sms"
text.en = "Paid {INVOICE_AMOUNT_OPN}, thanks {{really}}"
text.nl = "Betaald {{INVOICE_AMOUNT_OPEN}"
subject.en = "no"

[templates.letter]
channel = "email"
subject.en = "Invoice {INVOICE_NUMBER}"
subject.nl = "Factuur {INVOICE_NUMBER}"
text.en = """
Dear {PERSON_FIRST_NAME|customer,
"""
text.de = "Hallo"
"#),
    );
    let at = |line: usize| {
        e.iter()
            .filter(|d| d.split(':').nth(1) == Some(&line.to_string()))
            .cloned()
            .collect::<Vec<_>>()
    };
    // email_template names a template that is not there (or not e-mail).
    assert!(
        at(4)[0].contains("no message template named \"confirmaton\"; expected one of: letter"),
        "{e:#?}"
    );
    // The sms step names an e-mail template; the other a misspelt one.
    assert!(
        at(8)[0].contains(
            "template \"letter\" has channel = \"email\"; an sms step needs channel = \"sms\""
        ),
        "{e:#?}"
    );
    assert!(
        at(12)[0].contains("(did you mean \"confirmation\"?)"),
        "{e:#?}"
    );
    // An unknown field inside a text: its own column.
    let field = &at(16)[0];
    assert!(
        field.contains(
            "unknown field \"INVOICE_AMOUNT_OPN\" (did you mean \"INVOICE_AMOUNT_OPEN\"?)"
        ),
        "{field}"
    );
    assert!(field.starts_with("test.toml:16:18:"), "{field}");
    assert!(at(17)[0].contains("a '}' closes no placeholder"), "{e:#?}");
    assert!(at(18)[0].contains("an SMS has no subject"), "{e:#?}");
    // Inside a multi-line string, the line of the mistake.
    assert!(at(25)[0].contains("is not closed"), "{e:#?}");
    assert!(
        at(27)[0].contains("language \"de\", which is not one of the script's languages (en, nl)"),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|d| d
                .contains("template \"letter\" has no text for language \"nl\"; expected text.nl")),
        "{e:#?}"
    );
    assert_eq!(e.len(), 9, "{e:#?}");

    let e = one_error(&format!(
        "{HEAD}[[steps]]\nstep = \"hangup\"\n[templates.x]\nchannel = \"fax\"\ntext.en = \"a\"\n"
    ));
    assert!(
        e.contains("unknown variant `fax`, expected `sms` or `email`"),
        "{e}"
    );
    let e = one_error(&format!(
        "{HEAD}[[steps]]\nstep = \"hangup\"\n[templates.x]\nchannel = \"email\"\ntext.en = \"a\"\n"
    ));
    assert!(
        e.contains("template \"x\" has no subject for language \"en\""),
        "{e}"
    );
}
