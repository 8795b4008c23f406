//! The XML result file, nested like the import XML of the formats README
//! (`<records><record><SECTION><FIELD>`), with each repeating group as an
//! element inside its section:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <records>
//!   <record>
//!     <IDENTIFICATION>
//!       <RECORD_ID>1001</RECORD_ID>
//!       <CLIENT_REFERENCE>C-1</CLIENT_REFERENCE>
//!     </IDENTIFICATION>
//!     <CALLRESULTS>
//!       <CALL_1>
//!         <STARTED_AT>2024-03-17T09:30:05Z</STARTED_AT>
//!         …
//!       </CALL_1>
//!     </CALLRESULTS>
//!     <CUSTOMRESULTS>
//!       <CUSTOM_1>
//!         <KEY>choice</KEY>
//!         <VALUE>2</VALUE>
//!       </CUSTOM_1>
//!     </CUSTOMRESULTS>
//!   </record>
//! </records>
//! ```
//!
//! So `CALLRESULTS_CALL_2_STATUS` in CSV is `CALLRESULTS/CALL_2/STATUS` here.
//! An absent value leaves its element out; a row without calls or custom
//! results leaves out that section; an empty day is `<records>` with no
//! `<record>`. Text is escaped (`&`, `<`, `>`, `"`, `'`; a carriage return
//! as `&#13;` so it survives parsing); characters XML 1.0 cannot carry
//! (control characters other than tab, line feed and carriage return, and
//! U+FFFE/U+FFFF) become U+FFFD. Two-space indentation, `\n` line ends.

use std::io::{self, BufWriter, Write};

use super::{
    call_values, ResultRow, CALLRESULTS, CALL_FIELDS, CUSTOMRESULTS, CUSTOM_FIELDS, IDENTIFICATION,
    IDENTIFICATION_FIELDS,
};

/// Writes `rows` as an XML result file (see the module docs).
pub fn write_xml(rows: &[ResultRow], out: impl Write) -> io::Result<()> {
    let mut out = BufWriter::new(out);
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<records>\n")?;
    for row in rows {
        out.write_all(b"  <record>\n")?;
        open(&mut out, 2, IDENTIFICATION)?;
        let identification = [
            Some(row.record_id.as_str()),
            row.client_reference.as_deref(),
        ];
        for (field, value) in IDENTIFICATION_FIELDS.iter().zip(identification) {
            element(&mut out, 3, field, value)?;
        }
        close(&mut out, 2, IDENTIFICATION)?;
        if !row.calls.is_empty() {
            open(&mut out, 2, CALLRESULTS)?;
            for (n, call) in row.calls.iter().enumerate() {
                let group = format!("CALL_{}", n + 1);
                open(&mut out, 3, &group)?;
                for (field, value) in CALL_FIELDS.iter().zip(call_values(call)) {
                    element(&mut out, 4, field, value.as_deref())?;
                }
                close(&mut out, 3, &group)?;
            }
            close(&mut out, 2, CALLRESULTS)?;
        }
        if !row.custom.is_empty() {
            open(&mut out, 2, CUSTOMRESULTS)?;
            for (n, (key, value)) in row.custom.iter().enumerate() {
                let group = format!("CUSTOM_{}", n + 1);
                open(&mut out, 3, &group)?;
                let [key_field, value_field] = CUSTOM_FIELDS;
                element(&mut out, 4, key_field, Some(key.as_str()))?;
                element(&mut out, 4, value_field, Some(value.as_str()))?;
                close(&mut out, 3, &group)?;
            }
            close(&mut out, 2, CUSTOMRESULTS)?;
        }
        out.write_all(b"  </record>\n")?;
    }
    out.write_all(b"</records>\n")?;
    out.flush()
}

fn indent(out: &mut impl Write, depth: usize) -> io::Result<()> {
    for _ in 0..depth {
        out.write_all(b"  ")?;
    }
    Ok(())
}

fn open(out: &mut impl Write, depth: usize, name: &str) -> io::Result<()> {
    indent(out, depth)?;
    writeln!(out, "<{name}>")
}

fn close(out: &mut impl Write, depth: usize, name: &str) -> io::Result<()> {
    indent(out, depth)?;
    writeln!(out, "</{name}>")
}

/// `<name>value</name>` on its own line; nothing when `value` is `None`.
fn element(out: &mut impl Write, depth: usize, name: &str, value: Option<&str>) -> io::Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    indent(out, depth)?;
    writeln!(out, "<{name}>{}</{name}>", escape(value))
}

/// `text` escaped for XML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\r' => escaped.push_str("&#13;"),
            '\t' | '\n' => escaped.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, row};
    use super::*;

    fn written(rows: &[ResultRow]) -> String {
        let mut out = Vec::new();
        write_xml(rows, &mut out).expect("in memory");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn an_empty_day() {
        assert_eq!(
            written(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<records>\n</records>\n"
        );
    }

    #[test]
    fn one_record_with_a_call_and_a_custom_result() {
        let mut one = row("1001", vec![call(5, "success")]);
        one.client_reference = Some("C-1".to_owned());
        one.custom = vec![("choice".to_owned(), "2".to_owned())];
        assert_eq!(
            written(&[one]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<records>
  <record>
    <IDENTIFICATION>
      <RECORD_ID>1001</RECORD_ID>
      <CLIENT_REFERENCE>C-1</CLIENT_REFERENCE>
    </IDENTIFICATION>
    <CALLRESULTS>
      <CALL_1>
        <STARTED_AT>2024-03-17T09:30:05Z</STARTED_AT>
        <NUMBER>+31201234567</NUMBER>
        <DIRECTION>out</DIRECTION>
        <STATUS>success</STATUS>
        <SIP_CODE>200</SIP_CODE>
        <RING_S>4.3</RING_S>
        <TALK_S>31.0</TALK_S>
        <SUCCESS_POINT>Y</SUCCESS_POINT>
        <AMD>human</AMD>
        <VOICEMAIL_LEFT>N</VOICEMAIL_LEFT>
        <FORWARDED>N</FORWARDED>
        <DTMF>1#</DTMF>
      </CALL_1>
    </CALLRESULTS>
    <CUSTOMRESULTS>
      <CUSTOM_1>
        <KEY>choice</KEY>
        <VALUE>2</VALUE>
      </CUSTOM_1>
    </CUSTOMRESULTS>
  </record>
</records>
"
        );
    }

    #[test]
    fn calls_are_numbered_and_empty_sections_left_out() {
        let text = written(&[
            row("1", vec![call(0, "busy"), call(9, "no_answer")]),
            row("2", vec![]),
        ]);
        let second_call = text.find("<CALL_2>").expect("a second call");
        assert!(text[second_call..].contains("<STATUS>no_answer</STATUS>"));
        assert_eq!(text.matches("<record>").count(), 2);
        assert_eq!(text.matches("<CALLRESULTS>").count(), 1);
        assert!(!text.contains("<CUSTOMRESULTS>"));
        assert!(!text.contains("<CLIENT_REFERENCE>"));
    }

    #[test]
    fn text_is_escaped() {
        let mut tricky = row("<1> & \"2\"", vec![]);
        tricky.client_reference = Some("O'Brien\r\n\u{1}\ttab".to_owned());
        tricky.custom = vec![("</KEY><x>".to_owned(), "a&b".to_owned())];
        let text = written(&[tricky]);
        assert!(
            text.contains("<RECORD_ID>&lt;1&gt; &amp; &quot;2&quot;</RECORD_ID>"),
            "{text}"
        );
        assert!(
            text.contains("<CLIENT_REFERENCE>O&apos;Brien&#13;\n\u{FFFD}\ttab</CLIENT_REFERENCE>"),
            "{text}"
        );
        assert!(text.contains("<KEY>&lt;/KEY&gt;&lt;x&gt;</KEY>"));
        assert!(text.contains("<VALUE>a&amp;b</VALUE>"));
        assert_eq!(escape("gewoon tekst, é ✓"), "gewoon tekst, é ✓");
        assert_eq!(escape("\u{FFFF}\u{7f}"), "\u{FFFD}\u{7f}");
    }
}
